"""Bulk enrollment from a CSV file: every row on its own, so a bad row never blocks good ones.

Rows go in CHUNK at a time, one transaction each, through `bulk_enroll.enroll_many` (a few
statements per chunk); re-running the same file is safe because enrolling is idempotent
(external_id, or patient + campaign + treated_at).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dripcare.config import Settings
from dripcare.db import get_engine, session_scope
from dripcare.errors import UserError
from dripcare.models import utcnow
from dripcare.outbox.bulk_enroll import Outcome, Schedules, check_emails, enroll_many
from dripcare.outbox.enrollment_input import EnrollRequest

CHUNK = 2000  # rows per transaction: large enough that a chunk costs a few statements per row
REQUIRED = ("email", "treated_at")
KNOWN = (
    "email",
    "first_name",
    "last_name",
    "treated_at",
    "timezone",
    "treatment",
    "external_id",
    "phone",
)
ATTRIBUTES = ("peel_depth",)  # treatment attributes a campaign may require (treatment_attributes)


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str


@dataclass
class ImportReport:
    created: int = 0
    existing: int = 0
    errors: list[RowError] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "existing": self.existing,
            "rejected": [{"line": e.line, "reason": e.reason} for e in self.errors],
        }


def import_file(
    path: Path, clinic_id: int, settings: Settings, progress: Callable[[int], Any] = lambda n: None
) -> ImportReport:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        _check_header(reader.fieldnames, path)
        rows = ((reader.line_num, _clean(row)) for row in reader)
        return import_rows(rows, clinic_id, settings, progress)


def _check_header(fieldnames: Any, path: Path) -> None:
    names = {(n or "").strip().lower() for n in fieldnames or []}
    missing = [n for n in REQUIRED if n not in names]
    if missing:
        raise UserError(
            f"{path}: the header row lacks {', '.join(missing)}; expected columns: "
            f"{', '.join(KNOWN + ATTRIBUTES)} (extra columns are ignored)"
        )


def _clean(row: dict[str | None, Any]) -> dict[str, str]:
    return {
        (k or "").strip().lower(): (v or "").strip() if isinstance(v, str) else ""
        for k, v in row.items()
        if k
    }


def import_rows(
    rows: Any, clinic_id: int, settings: Settings, progress: Callable[[int], Any]
) -> ImportReport:
    """Every row as of the moment the import started: one `now` for all chunks, so each
    schedule (campaign, zone, treatment time) is computed once for the whole file.

    On PostgreSQL two stages overlap: while one thread writes chunk N (mostly waiting on the
    server, which releases the GIL), this one reads and checks chunk N+1. Chunks are still
    written one at a time and in order, one transaction each, so the answers are those of a
    serial import. SQLite works in this process: a second thread only added GIL switching
    (bench/README.md, "Issue 14, part 3b"), so there each chunk is written before the next
    is read.
    """
    report = ImportReport()
    schedules = Schedules(utcnow())
    overlap = get_engine().dialect.name == "postgresql"
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="csv-import") as writer:
        pending: Future[_Written] | None = None
        for chunk in _chunks(rows):
            prepared = _prepare(chunk, clinic_id, report)
            if pending is not None:
                _tally(pending.result(), report, progress)
            if overlap:
                pending = writer.submit(_write, prepared, settings, schedules)
            else:
                pending = _done(_write(prepared, settings, schedules))
        if pending is not None:
            _tally(pending.result(), report, progress)
    report.errors.sort(key=lambda error: error.line)
    return report


def _done(written: _Written) -> Future[_Written]:
    """A chunk written in this thread, as the writer thread's would be answered."""
    future: Future[_Written] = Future()
    future.set_result(written)
    return future


Lines = list[tuple[int, dict[str, str]]]  # (line number, cleaned row) of a CSV file


def _chunks(rows: Iterable[tuple[int, dict[str, str]]]) -> Iterator[Lines]:
    chunk: Lines = []
    for item in rows:
        chunk.append(item)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@dataclass(frozen=True)
class _Prepared:
    """A chunk read and checked: its requests, their CSV lines, and its size for the bar."""

    size: int
    lines: list[int]
    requests: list[EnrollRequest]


@dataclass(frozen=True)
class _Written:
    prepared: _Prepared
    outcomes: list[Outcome]


def _prepare(chunk: Lines, clinic_id: int, report: ImportReport) -> _Prepared:
    """The chunk's requests; a row missing a field is reported here. Addresses are checked
    ahead (`check_emails`) so the writer thread finds them done."""
    lines, requests = [], []
    for line, row in chunk:
        try:
            requests.append(_request(row, clinic_id))
        except UserError as exc:
            report.errors.append(RowError(line, str(exc)))
            continue
        lines.append(line)
    check_emails(requests)
    return _Prepared(len(chunk), lines, requests)


def _write(prepared: _Prepared, settings: Settings, schedules: Schedules) -> _Written:
    """One transaction: the chunk's rows that pass go in together."""
    with session_scope() as session:
        outcomes = enroll_many(
            session, prepared.requests, settings, schedules.now, answer=False, schedules=schedules
        )
    return _Written(prepared, outcomes)


def _tally(written: _Written, report: ImportReport, progress: Callable[[int], Any]) -> None:
    """A written chunk's answers into the report (each bad row with its line), then the bar."""
    for line, outcome in zip(written.prepared.lines, written.outcomes, strict=True):
        if isinstance(outcome, UserError):
            report.errors.append(RowError(line, str(outcome)))
        elif outcome.created:
            report.created += 1
        else:
            report.existing += 1
    progress(written.prepared.size)


def _request(row: dict[str, str], clinic_id: int) -> EnrollRequest:
    if not row.get("email"):
        raise UserError("email is empty")
    if not row.get("treated_at"):
        raise UserError("treated_at is empty")
    return EnrollRequest(
        clinic_id=clinic_id,
        email=row["email"],
        treated_at=row["treated_at"],
        first_name=row.get("first_name", ""),
        last_name=row.get("last_name", ""),
        campaign=row.get("treatment") or None,  # None: the clinic's default campaign
        timezone=row.get("timezone") or None,
        external_id=row.get("external_id") or None,
        phone=row.get("phone", ""),
        attributes={name: row[name] for name in ATTRIBUTES if row.get(name)},
    )
