"""Enrolling many treatments at once (CSV import, `POST /enrollments:bulk`): a few statements
per chunk instead of five per row.

Each request gets the same answer `enroll` would give it, in order. What is checked and
computed per row is cached per distinct value (an address, a zone, a treatment time in a zone),
and the common cases are written in bulk: a new patient (one INSERT of all patients, one of all
enrollments, one of all outbox rows) and a repeat (its external id, or the same campaign and
treatment time of a known patient: nothing written). Anything else (a known patient's new
treatment, which may supersede an older one; one patient or external id twice in a chunk; a row
another writer inserted meanwhile) goes through `enroll` itself, after the bulk rows.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Integer, Table, any_, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from dripcare import pg_copy
from dripcare.config import Settings
from dripcare.content.campaigns import (
    CampaignPlan,
    PlannedStep,
    campaign_plan,
    slug_for_unnamed,
    unknown_campaign,
)
from dripcare.db import among
from dripcare.errors import UserError
from dripcare.models import Campaign, Clinic, Enrollment, EnrollmentStatus, Message, Patient, utcnow
from dripcare.outbox.enrollment_input import EnrollRequest, clean_external_id
from dripcare.outbox.enrollments import enroll
from dripcare.outbox.message_ids import sender_domain
from dripcare.outbox.outbox_rows import Placement, ScheduledMessage, placements
from dripcare.outbox.treatment_time import parse_treated_at
from dripcare.people.clinics import get_clinic
from dripcare.sending.send_rules import clinic_quiet_hours
from dripcare.validation import check_timezone, normalize_email

_PATIENTS, _ENROLLMENTS, _MESSAGES = (
    cast(Table, model.__table__) for model in (Patient, Enrollment, Message)
)


@dataclass(frozen=True)
class Enrolled:
    """One request's answer: its enrollment, and whether this call created it."""

    enrollment_id: int
    created: bool
    messages: list[ScheduledMessage] | None = None  # the new sequence, when created


Outcome = Enrolled | UserError
Placed = list[tuple[PlannedStep, Placement]]


_KEPT_SCHEDULES = 50_000  # an import's usual few hundred, with room; bounds its memory


@dataclass
class Schedules:
    """Sequences computed at one `now`, by (campaign, version, zone, treatment time): in an
    import most patients share them."""

    now: datetime
    placed: dict[tuple[Any, ...], Placed] = field(default_factory=dict)
    # each sequence's COPY text by id(placed), with the sequence so its id stays its own
    copy_text: dict[int, tuple[Placed, list[tuple[str, str]]]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Row:
    index: int
    req: EnrollRequest
    email: str
    zone_override: str | None
    external_id: str | None
    plan: CampaignPlan


@dataclass(frozen=True)
class _New:
    row: _Row
    zone: str
    treated_at: datetime


def enroll_many(
    session: Session,
    requests: Sequence[EnrollRequest],
    settings: Settings,
    now: datetime | None,
    answer: bool = True,
    schedules: Schedules | None = None,
) -> list[Outcome]:
    """Every request of one clinic enrolled as `enroll` would, in a few statements.

    `answer=False` leaves out the new sequences' messages (`Enrolled.messages` None) when
    only counts are wanted. `schedules` may be kept by a caller that enrolls several chunks
    with the same `now` (an import): a schedule is then computed once for all of them.
    Flushes, never commits: the caller's transaction is the unit (one per chunk).
    """
    now = now or utcnow()
    if schedules is None or schedules.now != now:
        schedules = Schedules(now)
    outcomes: list[Outcome | None] = [None] * len(requests)
    if not requests:
        return []
    clinic = get_clinic(session, requests[0].clinic_id)
    rows = _checked(session, requests, outcomes)
    new, slow = _sorted_rows(session, clinic, rows, outcomes, now)
    quiet = clinic_quiet_hours(clinic.quiet_hours, settings)
    domain = sender_domain(clinic.sender_email)
    slow += _create(
        session,
        clinic.id,
        domain,
        new,
        outcomes,
        settings=settings,
        schedules=schedules,
        quiet=quiet,
        answer=answer,
    )
    for row in sorted(slow, key=lambda r: r.index):
        outcomes[row.index] = _one(session, row.req, settings, now)
    session.flush()
    return [cast(Outcome, outcome) for outcome in outcomes]


def _sorted_rows(
    session: Session,
    clinic: Clinic,
    rows: list[_Row],
    outcomes: list[Outcome | None],
    now: datetime,
) -> tuple[list[_New], list[_Row]]:
    """A chunk's checked rows as new patients to write in bulk, and rows `enroll` must take
    one at a time; rows already answered (known external id, repeat, refusal) go in `outcomes`."""
    by_external = _existing_by_external_id(session, clinic.id, rows)
    known = _known_patients(session, clinic.id, rows)
    active = _active_of(session, [p["id"] for p in known.values()])
    emails = Counter(r.email for r in rows)
    externals = Counter(r.external_id for r in rows if r.external_id)
    new: list[_New] = []
    slow: list[_Row] = []
    when = _TreatedAt(now)
    plans: dict[int, bool] = {}  # _needs_enroll's answer per CampaignPlan of the chunk
    for row in rows:
        try:
            if row.external_id in by_external:
                outcomes[row.index] = Enrolled(by_external[row.external_id], created=False)
            elif _needs_enroll(row, plans):
                slow.append(row)
            elif emails[row.email] > 1 or (row.external_id and externals[row.external_id] > 1):
                slow.append(row)  # the rows see each other: one at a time, in order
            elif row.email in known:
                repeat = _repeat_of(row, known[row.email], active, clinic.timezone, when)
                if repeat is None:
                    slow.append(row)
                else:
                    outcomes[row.index] = Enrolled(repeat, created=False)
            else:
                zone = row.zone_override or clinic.timezone
                new.append(_New(row, zone, when(row.req.treated_at, zone)))
        except UserError as exc:
            outcomes[row.index] = exc
    return new, slow


def _one(session: Session, req: EnrollRequest, settings: Settings, now: datetime) -> Outcome:
    """`enroll` itself, in a savepoint: a refusal after a write leaves nothing behind."""
    savepoint = session.begin_nested()
    try:
        result = enroll(session, req, settings, now)
    except UserError as exc:
        savepoint.rollback()
        return exc
    savepoint.commit()
    return Enrolled(result.enrollment.id, result.created, result.messages)


# ---- checking ---------------------------------------------------------------------------------


@lru_cache(maxsize=65536)
def _email(text: str) -> str:
    return normalize_email(text)


def check_emails(requests: Sequence[EnrollRequest]) -> None:
    """Check the requests' addresses ahead of `enroll_many`, which then finds each answer
    cached: an import does this for the next chunk while the current one is being written."""
    for req in requests:
        try:
            _email(req.email)
        except UserError:
            continue  # lru_cache keeps no exception: enroll_many checks it again and says why


@lru_cache(maxsize=1024)
def _zone(name: str) -> str:
    return check_timezone(name)


def _checked(
    session: Session, requests: Sequence[EnrollRequest], outcomes: list[Outcome | None]
) -> list[_Row]:
    """The requests that pass the checks enroll makes before it reads anything."""
    plans: dict[str, CampaignPlan | UserError | str] = {}  # "" : the unnamed slug
    rows = []
    for index, req in enumerate(requests):
        try:
            email = _email(req.email)
            zone = _zone(req.timezone) if req.timezone else None
            slug = req.campaign or _unnamed(session, req.clinic_id, plans)
            if slug not in plans:
                plans[slug] = _plan(session, req.clinic_id, slug)
            plan = cast(CampaignPlan | UserError, plans[slug])
            if isinstance(plan, UserError):
                raise plan
        except UserError as exc:
            outcomes[index] = exc
            continue
        external_id = clean_external_id(req.external_id)
        rows.append(_Row(index, req, email, zone, external_id, plan))
    return rows


def _unnamed(session: Session, clinic_id: int, plans: dict[str, Any]) -> str:
    """The clinic's campaign for requests that name none, looked up once per chunk."""
    if _UNNAMED not in plans:
        try:
            plans[_UNNAMED] = slug_for_unnamed(session, clinic_id)
        except UserError as exc:
            plans[_UNNAMED] = exc
    found = plans[_UNNAMED]
    if isinstance(found, UserError):
        raise found
    return cast(str, found)


_UNNAMED = ""  # the plans cache's key for slug_for_unnamed's answer (no slug is empty)


class _TreatedAt:
    """`parse_treated_at` at one `now`, once per distinct (value, zone): an import's rows share
    a few dates and times."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.parsed: dict[tuple[str | datetime, str], datetime | UserError] = {}

    def __call__(self, value: str | datetime, zone: str) -> datetime:
        found = self.parsed.get((value, zone))
        if found is None:
            try:
                found = parse_treated_at(value, zone, self.now)
            except UserError as exc:
                found = exc
            self.parsed[value, zone] = found
        if isinstance(found, UserError):
            raise found
        return found


def _needs_enroll(row: _Row, plans: dict[int, bool]) -> bool:
    """What only `enroll` itself does: a phone to store, treatment attributes to check against
    the campaign's requirements, a late-booking email that depends on the other rows."""
    if row.req.phone or row.req.attributes:
        return True
    plan = row.plan
    needs = plans.get(id(plan))
    if needs is None:
        needs = plans[id(plan)] = bool(
            plan.requires or any(step.late_booking for step in plan.steps)
        )
    return needs


def _plan(session: Session, clinic_id: int, slug: str) -> CampaignPlan | UserError:
    """The campaign a request names, as `enroll` resolves it."""
    found = session.execute(
        select(Campaign.id, Campaign.version, Campaign.updated_at).where(
            Campaign.clinic_id == clinic_id, Campaign.slug == slug
        )
    ).first()
    if found is None:
        return unknown_campaign(session, clinic_id, slug)
    return campaign_plan(session, found.id, found.version, found.updated_at)


# ---- reading what exists ----------------------------------------------------------------------


def _existing_by_external_id(session: Session, clinic_id: int, rows: list[_Row]) -> dict[str, int]:
    wanted = list({r.external_id for r in rows if r.external_id})
    if not wanted:
        return {}
    query = select(Enrollment.external_id, Enrollment.id).where(
        Enrollment.clinic_id == clinic_id, among(session, Enrollment.external_id, wanted)
    )
    return {str(external): id for external, id in session.execute(query)}


def _known_patients(session: Session, clinic_id: int, rows: list[_Row]) -> dict[str, Any]:
    query = select(
        Patient.id, Patient.email, Patient.first_name, Patient.last_name, Patient.timezone
    ).where(
        Patient.clinic_id == clinic_id,
        among(session, Patient.email, list({r.email for r in rows})),
    )
    return {p.email: p._mapping for p in session.execute(query)}


def _emails(rows: list[_Row]) -> list[str]:
    return list({r.email for r in rows})


def _active_of(session: Session, patient_ids: list[int]) -> dict[int, list[Any]]:
    if not patient_ids:
        return {}
    query = select(
        Enrollment.id, Enrollment.patient_id, Enrollment.campaign_id, Enrollment.treated_at
    ).where(
        among(session, Enrollment.patient_id, patient_ids),
        Enrollment.status == EnrollmentStatus.ACTIVE,
    )
    found: dict[int, list[Any]] = {}
    for row in session.execute(query):
        found.setdefault(row.patient_id, []).append(row)
    return found


def _repeat_of(
    row: _Row, patient: Any, active: dict[int, list[Any]], clinic_zone: str, when: _TreatedAt
) -> int | None:
    """The active enrollment this row repeats, when enrolling it would change nothing."""
    given = {
        "first_name": row.req.first_name.strip(),
        "last_name": row.req.last_name.strip(),
        "timezone": row.zone_override,
    }
    if any(value and value != patient[name] for name, value in given.items()):
        return None  # enroll would update the patient first
    zone = row.zone_override or patient["timezone"] or clinic_zone
    treated_at = when(row.req.treated_at, zone)
    for same in active.get(patient["id"], []):
        if same.campaign_id == row.plan.id and same.treated_at == treated_at:
            return int(same.id)
    return None


# ---- writing the new ones ---------------------------------------------------------------------


def _create(
    session: Session,
    clinic_id: int,
    domain: str,
    new: list[_New],
    outcomes: list[Outcome | None],
    *,
    settings: Settings,
    schedules: Schedules,
    quiet: Any,
    answer: bool,
) -> list[_Row]:
    """New patients, their enrollments and outbox rows: three INSERTs. Returns the rows another
    writer got to first (left for `enroll`)."""
    if not new:
        return []
    connection = session.connection()
    created = utcnow()
    patients = [
        {
            "clinic_id": clinic_id,
            "email": n.row.email,
            "first_name": n.row.req.first_name.strip(),
            "last_name": n.row.req.last_name.strip(),
            "timezone": n.row.zone_override,
            "locale": n.row.req.locale,
            "link_epoch": 0,
            "created_at": created,
        }
        for n in new
    ]
    patient_ids = dict(
        _insert(connection, _PATIENTS, patients, ("email", "id"), ("clinic_id", "email"))
    )
    inserted = [n for n in new if n.row.email in patient_ids]
    enrollments = [
        {
            "clinic_id": clinic_id,
            "patient_id": patient_ids[n.row.email],
            "campaign_id": n.row.plan.id,
            "treatment": n.row.plan.treatment,
            "treated_at": n.treated_at,
            "timezone": n.zone,
            "external_id": n.row.external_id,
            "status": EnrollmentStatus.ACTIVE.value,
            "superseded_by_id": None,
            "created_at": created,
            "cancelled_at": None,
        }
        for n in inserted
    ]
    conflict = ("clinic_id", "external_id")
    enrollment_ids = dict(
        _insert(connection, _ENROLLMENTS, enrollments, ("patient_id", "id"), conflict)
    )
    placed_of = _schedules(
        [(n, enrollment_ids.get(patient_ids[n.row.email])) for n in inserted],
        settings,
        schedules,
        quiet,
    )
    ids = _insert_messages(connection, clinic_id, domain, placed_of, answer, schedules.copy_text)
    for n in inserted:
        enrollment_id = enrollment_ids.get(patient_ids[n.row.email])
        if enrollment_id is None:
            continue
        sequence = None
        if answer:
            sequence = [
                ScheduledMessage(
                    ids[enrollment_id, s.id], s.key, p.due_at, p.status, p.status_reason
                )
                for s, p in placed_of[enrollment_id]
            ]
        outcomes[n.row.index] = Enrolled(enrollment_id, created=True, messages=sequence)
    return [n.row for n in new if outcomes[n.row.index] is None]


def _insert(
    connection: Connection,
    table: Table,
    rows: list[dict[str, Any]],
    returning: tuple[str, str],
    conflict: tuple[str, ...],
) -> list[tuple[Any, Any]]:
    """Insert the rows, skipping any that meet a unique `conflict`; returns the `returning`
    pairs of the rows written."""
    if not rows:
        return []
    if connection.dialect.name == "postgresql":
        return _insert_json(connection, table, rows, returning, conflict)
    statement = (
        sqlite_insert(table)
        .on_conflict_do_nothing(index_elements=list(conflict))
        .returning(*(table.c[name] for name in returning))
    )
    return [tuple(r) for r in connection.execute(statement, rows)]


def _schedules(
    enrollments: list[tuple[_New, int | None]],
    settings: Settings,
    schedules: Schedules,
    quiet: Any,
) -> dict[int, Placed]:
    """Each new enrollment's sequence, computed once per (campaign version, zone, treatment
    time)."""
    computed, now = schedules.placed, schedules.now
    if len(computed) > _KEPT_SCHEDULES:
        computed.clear()  # a file of many distinct times: start over rather than grow
        schedules.copy_text.clear()
    placed_of: dict[int, Placed] = {}
    for n, enrollment_id in enrollments:
        if enrollment_id is None:
            continue
        key = (n.row.plan.id, n.row.plan.version, n.zone, n.treated_at, quiet)
        placed = computed.get(key)
        if placed is None:
            placed = placements(n.row.plan, n.treated_at, n.zone, settings, now, quiet)
            computed[key] = placed
        placed_of[enrollment_id] = placed
    return placed_of


def _insert_messages(
    connection: Connection,
    clinic_id: int,
    domain: str,
    placed_of: dict[int, Placed],
    answer: bool,
    copy_text: dict[int, tuple[Placed, list[tuple[str, str]]]],
) -> dict[tuple[int, int], int]:
    """Every outbox row of the new enrollments; with `answer`, their ids by (enrollment, step)."""
    if not placed_of:
        return {}
    if connection.dialect.name == "postgresql":
        _copy_messages(connection, clinic_id, domain, placed_of, copy_text)
        enrollments = _MESSAGES.c.enrollment_id == any_(
            bindparam(None, list(placed_of), ARRAY(Integer))
        )
    else:
        _insert_messages_sqlite(connection, clinic_id, domain, placed_of)
        enrollments = _MESSAGES.c.enrollment_id.between(min(placed_of), max(placed_of))
    if not answer:
        return {}
    query = select(_MESSAGES.c.enrollment_id, _MESSAGES.c.step_id, _MESSAGES.c.id)
    rows = connection.execute(query.where(enrollments))
    return {(e, s): id for e, s, id in rows if e in placed_of}


def _insert_messages_sqlite(
    connection: Connection, clinic_id: int, domain: str, placed_of: dict[int, Placed]
) -> None:
    """SQLite: one executemany of tuples on the driver's cursor.

    Each distinct sequence's values go through the columns' own bind processors once (the
    stored forms are those Core writes); Core would process every value of every row again.
    """
    defaults = _defaults(_MESSAGES, dict.fromkeys(_MESSAGE_GIVEN))
    names = _MESSAGE_GIVEN[4:] + tuple(defaults)
    processors = [_MESSAGES.c[name].type.bind_processor(connection.dialect) for name in names]
    tail = tuple(defaults.values())
    shared: dict[int, list[tuple[Any, ...]]] = {}
    for placed in placed_of.values():
        if id(placed) not in shared:
            shared[id(placed)] = [
                (
                    step.id,
                    *(
                        value if process is None else process(value)
                        for process, value in zip(
                            processors,
                            (place.due_at, place.status, place.status_reason, place.cause, *tail),
                            strict=True,
                        )
                    ),
                )
                for step, place in placed
            ]
    count = sum(len(placed) for placed in placed_of.values())
    digits = os.urandom(16 * count).hex()
    rows = (
        (clinic_id, enrollment, step, f"<{digits[32 * n : 32 * n + 32]}@{domain}>", *rest)
        for n, (enrollment, (step, *rest)) in enumerate(
            (enrollment_id, values)
            for enrollment_id, placed in placed_of.items()
            for values in shared[id(placed)]
        )
    )
    columns = (*_MESSAGE_GIVEN[:4], *names)
    statement = (
        f"INSERT INTO messages ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    )
    raw: Any = connection.connection.driver_connection
    raw.cursor().executemany(statement, rows)


_MESSAGE_GIVEN = (
    "clinic_id",
    "enrollment_id",
    "step_id",
    "message_id",
    "due_at",
    "status",
    "status_reason",
    "stop_cause",
)


def _copy_messages(
    connection: Connection,
    clinic_id: int,
    domain: str,
    placed_of: dict[int, Placed],
    copy_text: dict[int, tuple[Placed, list[tuple[str, str]]]],
) -> None:
    """PostgreSQL: every outbox row of the new enrollments in one COPY.

    A distinct sequence's lines are formatted once per import (`copy_text`, kept with the
    schedules) and shared by the enrollments that follow it; the columns' defaults (the
    chunk's created_at) once per chunk; the Message-IDs are 32 random hex digits each (as
    uuid4().hex), drawn in one call.
    """
    defaults = _defaults(_MESSAGES, dict.fromkeys(_MESSAGE_GIVEN))
    for placed in placed_of.values():
        if id(placed) not in copy_text:
            copy_text[id(placed)] = (placed, _sequence_text(placed))
    count = sum(len(placed) for placed in placed_of.values())
    digits = os.urandom(16 * count).hex()
    head = f"{clinic_id}\t"
    tail = f"@{pg_copy.field(domain)}>\t"
    end = f"\t{pg_copy.line(defaults.values())}\n"
    lines = (
        f"{head}{enrollment}\t{step}\t<{digits[32 * n : 32 * n + 32]}{tail}{rest}{end}"
        for n, (enrollment, (step, rest)) in enumerate(
            (enrollment_id, values)
            for enrollment_id, placed in placed_of.items()
            for values in copy_text[id(placed)][1]
        )
    )
    pg_copy.copy_lines(connection, "messages", (*_MESSAGE_GIVEN, *defaults), lines)


def _sequence_text(placed: Placed) -> list[tuple[str, str]]:
    """A sequence's step ids and the COPY text of what its rows share (due time, status)."""
    return [
        (
            pg_copy.field(step.id),
            pg_copy.line((place.due_at, place.status, place.status_reason, place.cause)),
        )
        for step, place in placed
    ]


def _insert_json(
    connection: Connection,
    table: Table,
    rows: list[dict[str, Any]],
    returning: tuple[str, ...],
    conflict: tuple[str, ...] | None,
) -> list[tuple[Any, ...]]:
    """PostgreSQL: every row in one JSON parameter, typed by the table's own row type.

    One statement, parsed once, whatever the chunk's size: json.dumps and PostgreSQL's JSON
    reader cost far less than binding thousands of parameters.
    """
    defaults = _defaults(table, rows[0])
    if defaults:
        rows = [row | defaults for row in rows]
    names = ", ".join(rows[0])
    on_conflict = f" ON CONFLICT ({', '.join(conflict)}) DO NOTHING" if conflict else ""
    statement = text(
        f"INSERT INTO {table.name} ({names}) SELECT {names} "
        f"FROM json_populate_recordset(NULL::{table.name}, CAST(:rows AS json))"
        f"{on_conflict} RETURNING {', '.join(returning)}"
    )
    payload = json.dumps(rows, default=datetime.isoformat)
    return [tuple(r) for r in connection.execute(statement, {"rows": payload})]


def _defaults(table: Table, given: dict[str, Any]) -> dict[str, Any]:
    """The columns' Python-side defaults (created_at, attempts, ...), as Core's INSERT adds
    them: a statement of our own SQL gets none, and most columns have no server default."""
    values = {}
    for column in table.columns:
        default = column.default
        if column.name in given or default is None:
            continue
        if default.is_scalar:
            values[column.name] = default.arg  # type: ignore[attr-defined]
        elif default.is_callable:
            values[column.name] = default.arg(None)  # type: ignore[attr-defined]
    return values
