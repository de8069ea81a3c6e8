"""What PostgreSQL alone spends to store an imported patient: the floor under `import-csv`.

    .venv/bin/python bench/csv_ceiling.py [-n 10000] [--rounds 2] [--database NAME]

A fresh database (dropped and migrated to head) with one clinic; then, per variant and round,
one transaction COPYs N patients, their N enrollments and 7 N outbox rows, exactly the rows an
import writes but with no Python work in between (the lines are built before the clock starts),
and rolls back (then VACUUMs). It reads the CPU of the server backend (/proc: the server must
run on this machine) after each table, so the figures are PostgreSQL's own cost per patient:
- **schema**: the tables as migrated (every index, the remaining foreign keys);
- **no outbox pages' indexes**: the same, with the outbox's five non-unique indexes that an
  insert of a scheduled row touches dropped inside the transaction (what the pages and the
  claim would lose: a bound, not a proposal);
- **bare outbox**: also without the outbox's foreign key to enrollments: primary key and the
  two unique indexes only.
The first variant is the baseline: each other one prints its ratio to it, measured in the same
run; variants alternate within each round. 2 CPUs give at most 2 s of CPU a second: with P us
of PostgreSQL and Y us of Python a patient, the machine's ceiling is 2e6 / (P + Y) patients/s.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from csv_import import new_clinic, use_database

OUTBOX_PAGE_INDEXES = (
    "ix_messages_clinic_id_id",
    "ix_messages_due_scheduled",
    "ix_messages_clinic_due_scheduled",
    "ix_messages_clinic_id_updated_at",
    "ix_messages_clinic_upcoming",
)
VARIANTS: dict[str, list[str]] = {
    "schema": [],
    "no outbox pages' indexes": [f"DROP INDEX {name}" for name in OUTBOX_PAGE_INDEXES],
    "bare outbox": [
        *(f"DROP INDEX {name}" for name in OUTBOX_PAGE_INDEXES),
        "ALTER TABLE messages DROP CONSTRAINT fk_messages_enrollment_id_enrollments",
    ],
}
PATIENT_COLUMNS = "id, clinic_id, email, first_name, last_name, locale, link_epoch, created_at"
ENROLLMENT_COLUMNS = (
    "id, clinic_id, patient_id, campaign_id, treatment, treated_at, timezone, external_id,"
    " status, created_at"
)
MESSAGE_COLUMNS = (
    "clinic_id, enrollment_id, step_id, message_id, due_at, status, status_reason, attempts,"
    " last_error, created_at, updated_at"
)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("-n", "--patients", type=int, default=10_000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--database", default="dripcare_bench_csv_ceiling")
    return p.parse_args()


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def lines(n: int, clinic: int, campaign: int, steps: list[int]) -> dict[str, str]:
    """The COPY text of n patients as an import writes them (ids from 10,000,000 up)."""
    now = datetime.now(UTC)
    stamp = now.isoformat()
    patients, enrollments, messages = [], [], []
    digits = os.urandom(16 * n * len(steps)).hex()
    for i in range(n):
        pid = 10_000_000 + i
        treated = (now - timedelta(days=i % 20, hours=i % 4)).isoformat()
        external = f"x-{i}" if i % 2 else "\\N"  # half with an external id, as the import
        patients.append(f"{pid}\t{clinic}\tc{i}@example.com\tPat{i}\tBench\ten\t0\t{stamp}\n")
        enrollments.append(
            f"{pid}\t{clinic}\t{pid}\t{campaign}\tmicroneedling\t{treated}\tEurope/London"
            f"\t{external}\tactive\t{stamp}\n"
        )
        for k, step in enumerate(steps):
            due = (now + timedelta(days=k, hours=i % 4)).isoformat()
            at = 32 * (i * len(steps) + k)
            messages.append(
                f"{clinic}\t{pid}\t{step}\t<{digits[at : at + 32]}@bench.example>\t{due}"
                f"\tscheduled\t\t0\t\t{stamp}\t{stamp}\n"
            )
    return {
        "patients": "".join(patients),
        "enrollments": "".join(enrollments),
        "messages": "".join(messages),
    }


def one_variant(raw: Any, name: str, text: dict[str, str], n: int) -> dict[str, float]:
    """The variant's statements, then the three COPYs, timed by the backend's CPU; rolled back."""
    pid = raw.info.backend_pid
    columns = {
        "patients": PATIENT_COLUMNS,
        "enrollments": ENROLLMENT_COLUMNS,
        "messages": MESSAGE_COLUMNS,
    }
    with raw.cursor() as cursor:
        for statement in VARIANTS[name]:
            cursor.execute(statement)
        cpu: dict[str, float] = {}
        started = time.perf_counter()
        for table, body in text.items():
            before = backend_cpu(pid)
            with cursor.copy(f"COPY {table} ({columns[table]}) FROM STDIN") as copy:
                copy.write(body)
            cursor.execute("SELECT 1")  # the COPY is done on the server before the CPU is read
            cpu[table] = (backend_cpu(pid) - before) * 1e6 / n
        cpu["wall"] = (time.perf_counter() - started) * 1e6 / n
    raw.rollback()
    vacuum(raw)
    return cpu


def vacuum(raw: Any) -> None:
    """The rolled-back rows' dead index entries gone, so the next variant starts as clean."""
    raw.autocommit = True
    try:
        raw.execute("VACUUM patients, enrollments, messages")
    finally:
        raw.autocommit = False


def main() -> None:
    args = parse_args()
    print(f"{os.cpu_count()} CPUs, load {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="dripcare-bench-ceiling-") as tmp:
        use_database("pg", args.database, Path(tmp))
        clinic = new_clinic("Ceiling")
        from sqlalchemy import select

        from dripcare.db import get_engine, session_scope
        from dripcare.models import Campaign, Step

        with session_scope() as session:
            campaign_id = session.scalar(
                select(Campaign.id).where(
                    Campaign.clinic_id == clinic, Campaign.slug == "microneedling"
                )
            )
            steps = list(
                session.scalars(select(Step.id).where(Step.campaign_id == campaign_id, Step.active))
            )
        text = lines(args.patients, clinic, int(campaign_id or 0), steps)
        raw: Any = get_engine().raw_connection().driver_connection
        results: dict[str, list[dict[str, float]]] = {name: [] for name in VARIANTS}
        for round_ in range(args.rounds):
            order = list(VARIANTS) if round_ % 2 == 0 else list(reversed(VARIANTS))
            for name in order:
                results[name].append(one_variant(raw, name, text, args.patients))
        report(results, len(steps))
    print(f"load {os.getloadavg()}")


def report(results: dict[str, list[dict[str, float]]], steps: int) -> None:
    base = None
    for name, runs in results.items():
        best = min(runs, key=lambda r: r["patients"] + r["enrollments"] + r["messages"])
        total = best["patients"] + best["enrollments"] + best["messages"]
        base = base or total
        print(
            f"{name:<26} PostgreSQL CPU a patient (best of {len(runs)}): {total:6.0f} us ="
            f" patient {best['patients']:4.0f} + enrollment {best['enrollments']:4.0f}"
            f" + {steps} outbox rows {best['messages']:5.0f}; wall {best['wall']:6.0f} us;"
            f" ratio to schema {total / base:.2f}; 2 CPUs, this side alone:"
            f" {2e6 / total:,.0f} patients/s"
        )


if __name__ == "__main__":
    main()
