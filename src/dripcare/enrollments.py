"""Enrolling a treatment, and everything that later changes its sequence.

Enrolling writes every message of the sequence at once (the outbox): cancel, reschedule and
supersede are then updates of unsent rows, which the send path re-checks under its claim.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import (
    JSON,
    DateTime,
    Integer,
    String,
    Table,
    bindparam,
    column,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.engine import Connection, Result
from sqlalchemy.orm import Session, joinedload, make_transient_to_detached
from sqlalchemy.types import TypeEngine

from dripcare import pre_care
from dripcare.campaigns import (
    CampaignPlan,
    PlannedStep,
    campaign_plan,
    slug_for_unnamed,
    timing_of,
    unknown_campaign,
)
from dripcare.clinics import get_clinic, no_clinic
from dripcare.config import Settings
from dripcare.errors import NotFound, UserError
from dripcare.message_lifecycle import REASONS, restore, stop_unsent
from dripcare.models import (
    RESCHEDULABLE,
    Campaign,
    Clinic,
    Enrollment,
    EnrollmentStatus,
    Message,
    MessageStatus,
    Patient,
    Step,
    StopCause,
    utcnow,
)
from dripcare.scheduling import QuietHours, StepTiming, compute_due_at
from dripcare.send_rules import (
    clinic_quiet_hours,
    late_window,
    pre_care_too_late,
    quiet_hours_of,
    too_late,
)
from dripcare.treatment_attributes import check_attributes
from dripcare.treatment_time import parse_treated_at
from dripcare.validation import check_timezone, normalize_email, normalize_phone

REASON_LATE = REASONS[StopCause.LATE]


@dataclass
class EnrollRequest:
    clinic_id: int
    email: str
    treated_at: str | datetime
    first_name: str = ""
    last_name: str = ""
    campaign: str | None = None  # None: the clinic's default (campaigns.slug_for_unnamed)
    timezone: str | None = None
    external_id: str | None = None
    locale: str = "en"
    phone: str = ""  # any form normalize_phone takes; "" leaves a known patient's as it is
    # what the clinic says about the treatment, e.g. {"peel_depth": "superficial"}
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ScheduledMessage:
    """An outbox row as enrolling wrote it: enough to answer without reading it back."""

    id: int
    step_key: str
    due_at: datetime
    status: MessageStatus
    status_reason: str
    attempts: int = 0
    sent_at: datetime | None = None


@dataclass
class EnrollResult:
    enrollment: Enrollment
    created: bool
    superseded: list[int] = field(default_factory=list)
    messages: list[ScheduledMessage] | None = None  # the new sequence, when created


@dataclass(frozen=True)
class _KnownPatient:
    id: int
    first_name: str
    last_name: str
    timezone: str | None
    phone: str


@dataclass(frozen=True)
class _Found:
    """What enrolling needs to know before it writes anything."""

    clinic_id: int
    clinic_timezone: str
    sender_email: str
    plan: CampaignPlan
    existing_id: int | None
    patient: _KnownPatient | None
    quiet_hours: str | None = None  # the clinic's own; None: DRIPCARE_QUIET_HOURS


# ---- enrolling --------------------------------------------------------------------------------


def enroll(
    session: Session, req: EnrollRequest, settings: Settings, now: datetime | None = None
) -> EnrollResult:
    """Idempotent per (clinic, external_id), and per (patient, campaign, treated_at) without one.

    This is the API's hot path: a new patient costs one query (clinic, campaign, patient and
    external id together), then three inserts (patient, enrollment, messages).
    """
    now = now or utcnow()
    email = normalize_email(req.email)
    zone_override = check_timezone(req.timezone) if req.timezone else None
    phone = normalize_phone(req.phone)
    external_id = (req.external_id or "").strip() or None
    found = _look_up(session, req.clinic_id, req.campaign, email, external_id)
    if found.existing_id is not None:
        return EnrollResult(session.get_one(Enrollment, found.existing_id), created=False)
    known_zone = found.patient.timezone if found.patient else None
    zone = zone_override or known_zone or found.clinic_timezone
    treated_at = parse_treated_at(req.treated_at, zone, now)
    attributes = check_attributes(found.plan.slug, found.plan.requires, req.attributes)
    # Every check is above this line: a refused request writes nothing (bulk relies on it).
    patient_id = _upsert_patient(session, found, email, req, zone_override, phone)
    plan = found.plan
    active = [] if found.patient is None else _active_enrollments(session, patient_id, plan)
    for same in active:
        if same.campaign_id == plan.id and same.treated_at == treated_at:
            return EnrollResult(same, created=False)
    enrollment = _insert_enrollment(
        session,
        clinic_id=found.clinic_id,
        patient_id=patient_id,
        campaign_id=plan.id,
        treatment=plan.treatment,
        treated_at=treated_at,
        timezone=zone,
        external_id=external_id,
        attributes=attributes,
    )
    older = [e for e in active if e.treatment == enrollment.treatment]
    superseded = _supersede(session, older, enrollment)
    quiet = clinic_quiet_hours(found.quiet_hours, settings)
    messages = materialize(session, enrollment, plan, found.sender_email, settings, now, quiet)
    return EnrollResult(enrollment, created=True, superseded=superseded, messages=messages)


# The hot path's statements are built once: building and keying a statement on each call cost
# more CPU than executing it.
_SLUG = bindparam("slug", type_=String)  # None: the clinic's default campaign
_LOOK_UP = (
    select(
        Clinic.timezone,
        Clinic.sender_email,
        Clinic.quiet_hours,
        Campaign.id.label("campaign_id"),
        Campaign.version,
        Campaign.updated_at,
        select(Enrollment.id)
        .where(
            Enrollment.clinic_id == bindparam("clinic_id"),
            Enrollment.external_id == bindparam("external_id"),  # NULL matches nothing
        )
        .scalar_subquery()
        .label("existing_id"),
        Patient.id.label("patient_id"),
        Patient.first_name,
        Patient.last_name,
        Patient.timezone.label("patient_timezone"),
        Patient.phone.label("patient_phone"),
    )
    .outerjoin(
        Campaign,
        (Campaign.clinic_id == Clinic.id)
        & (Campaign.slug == func.coalesce(_SLUG, Clinic.default_campaign)),
    )
    .outerjoin(Patient, (Patient.clinic_id == Clinic.id) & (Patient.email == bindparam("email")))
    .where(Clinic.id == bindparam("clinic_id"))
)
# Core inserts on the tables: the ORM's bulk path would process every row's values again.
_PATIENTS, _ENROLLMENTS, _MESSAGES = (
    cast(Table, model.__table__) for model in (Patient, Enrollment, Message)
)
_NEW_PATIENT = insert(_PATIENTS).returning(_PATIENTS.c.id)
_NEW_ENROLLMENT = insert(_ENROLLMENTS).returning(_ENROLLMENTS.c.id)
_NEW_MESSAGES = insert(_MESSAGES).returning(_MESSAGES.c.step_id, _MESSAGES.c.id)
# PostgreSQL takes the rows as one JSON parameter, whatever the campaign's length: the
# statement is prepared once per connection instead of parsed and planned per enrollment, and
# json.dumps costs far less than binding 7 rows of parameters (or psycopg's array adapters).
_PER_ROW: dict[str, TypeEngine[Any]] = {
    "step_id": Integer(),
    "message_id": String(),
    "due_at": DateTime(timezone=True),
    "status": String(),
    "status_reason": String(),
    "stop_cause": String(),
}
_STEP_ROWS = (
    func.json_to_recordset(sql_cast(bindparam("rows", type_=String), JSON))
    .table_valued(*(column(name, type_) for name, type_ in _PER_ROW.items()))
    .render_derived("step_rows", with_types=True)
)
_NEW_MESSAGES_PG = (
    insert(_MESSAGES)
    .from_select(
        [*_PER_ROW, "clinic_id", "enrollment_id"],
        select(
            *_STEP_ROWS.c,
            bindparam("clinic_id", type_=Integer),
            bindparam("enrollment_id", type_=Integer),
        ),
    )  # the columns' Python defaults (attempts, created_at, ...) are added as parameters
    .returning(_MESSAGES.c.step_id, _MESSAGES.c.id)
)


def _look_up(
    session: Session, clinic_id: int, slug: str | None, email: str, external_id: str | None
) -> _Found:
    """Clinic, campaign, patient and an enrollment with the same external id: one query.

    Without a slug the clinic's default campaign is joined; a clinic without one costs a
    second look (slug_for_unnamed), which also explains what to do when it is ambiguous."""
    params = {"clinic_id": clinic_id, "slug": slug, "email": email, "external_id": external_id}
    row = session.connection().execute(_LOOK_UP, params).first()
    if row is None:
        raise no_clinic(clinic_id)
    if row.campaign_id is None and slug is None:
        chosen = slug_for_unnamed(session, clinic_id)
        return _look_up(session, clinic_id, chosen, email, external_id)
    if row.campaign_id is None:
        assert slug is not None
        raise unknown_campaign(session, clinic_id, slug)
    patient = None
    if row.patient_id is not None:
        patient = _KnownPatient(
            row.patient_id, row.first_name, row.last_name, row.patient_timezone, row.patient_phone
        )
    return _Found(
        clinic_id,
        row.timezone,
        row.sender_email,
        campaign_plan(session, row.campaign_id, row.version, row.updated_at),
        row.existing_id,
        patient,
        row.quiet_hours,
    )


def _upsert_patient(
    session: Session, found: _Found, email: str, req: EnrollRequest, zone: str | None, phone: str
) -> int:
    """The clinic's patient with this email, updated or created."""
    given = {
        "first_name": req.first_name.strip(),
        "last_name": req.last_name.strip(),
        "timezone": zone,
        "phone": phone,
    }
    known = found.patient
    if known is None:
        values = {"clinic_id": found.clinic_id, "email": email, "locale": req.locale, **given}
        return int(session.connection().execute(_NEW_PATIENT, values).scalar_one())
    changes = {
        name: value for name, value in given.items() if value and value != getattr(known, name)
    }
    if changes:
        session.execute(update(Patient).where(Patient.id == known.id).values(**changes))
    return known.id


def _insert_enrollment(session: Session, **values: object) -> Enrollment:
    """One INSERT; the row then joins the session as if it had been loaded.

    On this hot path the unit of work's flush costs more than the insert itself.
    """
    values |= {
        "status": EnrollmentStatus.ACTIVE,
        "superseded_by_id": None,
        "cancelled_at": None,
        "created_at": utcnow(),
        "next_session_booked_at": None,
        "one_off": False,
        "missed_steps": [],
    }
    new_id = session.connection().execute(_NEW_ENROLLMENT, values).scalar_one()
    enrollment = Enrollment(id=new_id, **values)
    make_transient_to_detached(enrollment)
    session.add(enrollment)
    return enrollment


def _active_enrollments(session: Session, patient_id: int, plan: CampaignPlan) -> list[Enrollment]:
    """The patient's active sequences this enrollment may repeat or replace, in one query."""
    return list(
        session.scalars(
            select(Enrollment).where(
                Enrollment.patient_id == patient_id,
                Enrollment.status == EnrollmentStatus.ACTIVE,
                or_(Enrollment.treatment == plan.treatment, Enrollment.campaign_id == plan.id),
            )
        )
    )


def _supersede(session: Session, older: list[Enrollment], newer: Enrollment) -> list[int]:
    """No two overlapping sequences for the same treatment: the new one replaces the old."""
    for old in older:
        old.status = EnrollmentStatus.SUPERSEDED
        old.superseded_by_id = newer.id
        stop_unsent(
            session,
            Message.enrollment_id == old.id,
            StopCause.SUPERSEDED,
            f"superseded by enrollment {newer.id}",
        )
    return [old.id for old in older]


def materialize(
    session: Session,
    enrollment: Enrollment,
    plan: CampaignPlan,
    sender_email: str,
    settings: Settings,
    now: datetime,
    quiet: QuietHours | None = None,
) -> list[ScheduledMessage]:
    """One outbox row per active step, each with its own fixed Message-ID; one INSERT.

    The late_booking step, if any, is placed last: it depends on the others (pre_care.py).
    """
    domain = sender_domain(sender_email)
    placed = placements(plan, enrollment.treated_at, enrollment.timezone, settings, now, quiet)
    merged = next((s for s in plan.steps if s.late_booking), None)
    if merged is not None:
        placed.append((merged, _late_booking(enrollment, placed, settings, now, quiet)))
    if not placed:
        return []
    rows = [_message_row(enrollment, domain, step.id, place) for step, place in placed]
    # RETURNING in any order, matched by step: cheaper than asking the database to keep order
    ids = {step_id: id for step_id, id in _insert_messages(session.connection(), rows)}
    return [
        ScheduledMessage(ids[step.id], step.key, place.due_at, place.status, place.status_reason)
        for step, place in placed
    ]


def placements(
    plan: CampaignPlan,
    treated_at: datetime,
    zone: str,
    settings: Settings,
    now: datetime,
    quiet: QuietHours | None = None,
) -> list[tuple[PlannedStep, Placement]]:
    """Each active step's due time and status for a treatment at `treated_at` in `zone`, but
    the late_booking step's, which depends on the others."""
    patient_zone, rules = ZoneInfo(zone), quiet or settings.quiet
    return [
        (
            step,
            _placement(
                compute_due_at(treated_at, step.timing, patient_zone, rules),
                now,
                settings,
                step.timing,
                treated_at,
            ),
        )
        for step in plan.steps
        if not step.late_booking  # placed after the others: materialize, pre_care.py
    ]


def sender_domain(sender_email: str) -> str:
    """The domain of the Message-IDs written for a clinic."""
    return sender_email.rpartition("@")[2] or "dripcare.local"


def _late_booking(
    enrollment: Enrollment,
    placed: Iterable[tuple[PlannedStep, Placement]],
    settings: Settings,
    now: datetime,
    quiet: QuietHours | None,
) -> Placement:
    """The merged email's row; the enrollment remembers what it lists."""
    missed = pre_care.missed_stop_now((s.key, s.stop_now, p.cause) for s, p in placed)
    zone = ZoneInfo(enrollment.timezone)
    merged = pre_care.late_booking(
        missed, enrollment.treated_at, now, quiet or settings.quiet, zone
    )
    if merged.missed or enrollment.missed_steps:
        enrollment.missed_steps = merged.missed
    return Placement(merged.due_at, merged.status, merged.status_reason, merged.cause)


def _message_row(
    enrollment: Enrollment, domain: str, step_id: int, place: Placement
) -> dict[str, Any]:
    return message_row(enrollment.clinic_id, enrollment.id, domain, step_id, place)


def message_row(
    clinic_id: int, enrollment_id: int, domain: str, step_id: int, place: Placement
) -> dict[str, Any]:
    """An outbox row's values as enrolling writes them, with its own fixed Message-ID."""
    return {
        "clinic_id": clinic_id,
        "enrollment_id": enrollment_id,
        "step_id": step_id,
        "message_id": f"<{uuid.uuid4().hex}@{domain}>",
        "attempts": 0,
        "due_at": place.due_at,
        "status": place.status,
        "status_reason": place.status_reason,
        "stop_cause": place.cause,
    }


def _insert_messages(connection: Connection, rows: list[dict[str, Any]]) -> Result[int, int]:
    """One INSERT of an enrollment's messages, RETURNING (step_id, id) in any order."""
    if connection.dialect.name != "postgresql":
        return connection.execute(_NEW_MESSAGES, rows)
    values = [{name: row[name] for name in _PER_ROW} for row in rows]
    shared = {"clinic_id": rows[0]["clinic_id"], "enrollment_id": rows[0]["enrollment_id"]}
    return connection.execute(
        _NEW_MESSAGES_PG, {**shared, "rows": json.dumps(values, default=datetime.isoformat)}
    )


def step_due(
    enrollment: Enrollment, timing: StepTiming, settings: Settings, quiet: QuietHours | None = None
) -> datetime:
    """`quiet`: the clinic's quiet hours (send_rules.quiet_hours_of), else the global ones."""
    return compute_due_at(
        enrollment.treated_at, timing, ZoneInfo(enrollment.timezone), quiet or settings.quiet
    )


@dataclass(frozen=True)
class Placement:
    due_at: datetime
    status: MessageStatus
    status_reason: str
    cause: StopCause | None = None


def _placement(
    due_at: datetime, now: datetime, settings: Settings, timing: StepTiming, treated_at: datetime
) -> Placement:
    """Schedule, or skip when it is already too late for this email to make sense.

    The same rule the send path applies (send_rules.py): the step's send_until, else
    DRIPCARE_LATE_GRACE_HOURS; and a pre-care email never once the treatment time is reached."""
    late = too_late(due_at, late_window(timing, settings), now)
    if late or pre_care_too_late(timing, treated_at, now):
        return Placement(due_at, MessageStatus.SKIPPED, REASON_LATE, StopCause.LATE)
    return Placement(due_at, MessageStatus.SCHEDULED, "")


def place_message(
    session: Session,
    message: Message,
    timing: StepTiming,
    enrollment: Enrollment,
    now: datetime,
    settings: Settings,
) -> None:
    clinic = get_clinic(session, enrollment.clinic_id)  # usually in the identity map already
    due_at = step_due(enrollment, timing, settings, quiet_hours_of(clinic, settings))
    place = _placement(due_at, now, settings, timing, enrollment.treated_at)
    if message.status == MessageStatus.HELD and place.status == MessageStatus.SCHEDULED:
        message.due_at = due_at  # a red flag still holds it: moved, but still waiting
        return
    message.due_at, message.status, message.status_reason, message.stop_cause = (
        due_at,
        place.status,
        place.status_reason,
        place.cause,
    )
    message.lease_token, message.lease_until = None, None


# ---- changing a sequence ----------------------------------------------------------------------


def get_enrollment(
    session: Session, enrollment_id: int, clinic_id: int | None = None
) -> Enrollment:
    enrollment = session.get(Enrollment, enrollment_id)
    if enrollment is None or (clinic_id is not None and enrollment.clinic_id != clinic_id):
        raise NotFound(f"no enrollment with id {enrollment_id}")
    return enrollment


def cancel(
    session: Session,
    enrollment: Enrollment,
    cause: StopCause = StopCause.CLINIC,
    now: datetime | None = None,
) -> int:
    """Stop every unsent message; returns how many were stopped. Idempotent."""
    if enrollment.status == EnrollmentStatus.ACTIVE:
        enrollment.status = EnrollmentStatus.CANCELLED
        enrollment.cancelled_at = now or utcnow()
    return stop_unsent(session, Message.enrollment_id == enrollment.id, cause)


def resumable(session: Session, enrollment: Enrollment) -> bool:
    """Stopped by the patient on the preferences page, and not since replaced by a newer
    sequence for the same treatment (resuming it would send two)."""
    if enrollment.status != EnrollmentStatus.CANCELLED:
        return False
    stopped = select(Message.id).where(
        Message.enrollment_id == enrollment.id, Message.stop_cause == StopCause.PATIENT
    )
    newer = select(Enrollment.id).where(
        Enrollment.patient_id == enrollment.patient_id,
        Enrollment.treatment == enrollment.treatment,
        Enrollment.status == EnrollmentStatus.ACTIVE,
    )
    return session.scalar(stopped.limit(1)) is not None and session.scalar(newer.limit(1)) is None


def resume(session: Session, enrollment: Enrollment, now: datetime | None = None) -> int:
    """Undo the patient's own stop: its emails still ahead come back; a clinic's cancel stays.

    Returns how many emails were put back on the schedule.
    """
    if not resumable(session, enrollment):
        return 0
    enrollment.status = EnrollmentStatus.ACTIVE
    enrollment.cancelled_at = None
    session.flush()
    return restore(
        session, Message.enrollment_id == enrollment.id, StopCause.PATIENT, now or utcnow()
    )


def reschedule(
    session: Session,
    enrollment: Enrollment,
    treated_at: str | datetime,
    settings: Settings,
    now: datetime | None = None,
) -> int:
    """Move the treatment time; unsent messages get new due times. Sent ones stay as they were."""
    now = now or utcnow()
    if enrollment.status != EnrollmentStatus.ACTIVE:
        raise UserError(f"enrollment {enrollment.id} is {enrollment.status}; it cannot be moved")
    enrollment.treated_at = parse_treated_at(treated_at, enrollment.timezone, now)
    unsent = session.scalars(
        select(Message).where(
            Message.enrollment_id == enrollment.id, Message.status.in_(RESCHEDULABLE)
        )
    )
    return _replace(session, [(enrollment, m) for m in unsent], settings, now)


def _replace(
    session: Session,
    pairs: list[tuple[Enrollment, Message]],
    settings: Settings,
    now: datetime,
) -> int:
    """New due times for unsent messages (and for ones skipped only for being late)."""
    moved, merged = 0, []
    for enrollment, message in pairs:
        if message.step.late_booking:  # depends on where the others land: placed after them
            merged.append((enrollment, message))
            continue
        if message.status == MessageStatus.SKIPPED and message.stop_cause != StopCause.LATE:
            continue
        place_message(session, message, timing_of(message.step), enrollment, now, settings)
        moved += 1
    session.flush()
    for enrollment, message in merged:
        _replace_late_booking(session, enrollment, message, settings, now)
        moved += 1
    session.flush()
    return moved


def _replace_late_booking(
    session: Session, enrollment: Enrollment, message: Message, settings: Settings, now: datetime
) -> None:
    """After a reschedule: the stop-now emails now missed decide the merged one again."""
    stop_now = session.execute(
        select(Step.key, Message.stop_cause)
        .join(Step, Message.step_id == Step.id)
        .where(Message.enrollment_id == enrollment.id, Step.stop_now)
    ).all()
    missed = pre_care.missed_stop_now((key, True, cause) for key, cause in stop_now)
    quiet = quiet_hours_of(get_clinic(session, enrollment.clinic_id), settings)
    merged = pre_care.late_booking(
        missed, enrollment.treated_at, now, quiet, ZoneInfo(enrollment.timezone)
    )
    enrollment.missed_steps = merged.missed
    message.due_at, message.status = merged.due_at, merged.status
    message.status_reason, message.stop_cause = merged.status_reason, merged.cause
    message.lease_token, message.lease_until = None, None


@dataclass
class FollowResult:
    cancelled: int = 0
    retimed: int = 0
    added: int = 0


def follow_campaign_change(
    session: Session,
    campaign: Campaign,
    *,
    removed: list[Step],
    retimed: list[Step],
    added: list[Step],
    settings: Settings,
    now: datetime,
) -> FollowResult:
    """Bring active enrollments' unsent messages in line with a newly published version.

    A removed step's unsent messages are cancelled. A step whose timing changed moves its
    unsent messages, as a reschedule does (one more than the grace period late is skipped).
    A new step gets a message only where its time is still ahead: it is never sent late in a
    burst to patients already past it. Messages already sending or sent are never touched.
    """
    result = FollowResult()
    for step in removed:
        result.cancelled += stop_unsent(
            session,
            Message.step_id == step.id,
            StopCause.STEP_REMOVED,
            f"step {step.key!r} removed in version {campaign.version}",
        )
    active = select(Enrollment).where(
        Enrollment.campaign_id == campaign.id, Enrollment.status == EnrollmentStatus.ACTIVE
    )
    if retimed:
        pairs = session.execute(
            select(Enrollment, Message)
            .join(Message, Message.enrollment_id == Enrollment.id)
            .where(
                Enrollment.campaign_id == campaign.id,
                Enrollment.status == EnrollmentStatus.ACTIVE,
                Message.step_id.in_([s.id for s in retimed]),
                Message.status.in_(RESCHEDULABLE),
            )
        ).all()
        result.retimed = _replace(session, [(e, m) for e, m in pairs], settings, now)
    if added:
        clinic = get_clinic(session, campaign.clinic_id)
        for enrollment in session.scalars(active):
            result.added += _add_steps(session, clinic, enrollment, added, settings, now)
    session.flush()
    return result


def _add_steps(
    session: Session,
    clinic: Clinic,
    enrollment: Enrollment,
    steps: list[Step],
    settings: Settings,
    now: datetime,
) -> int:
    have = set(
        session.scalars(select(Message.step_id).where(Message.enrollment_id == enrollment.id))
    )
    domain = sender_domain(clinic.sender_email)
    rows = []
    for step in steps:
        if step.late_booking:  # it stands in for emails missed at enrollment: only then
            continue
        timing = timing_of(step)
        due = step_due(enrollment, timing, settings, quiet_hours_of(clinic, settings))
        if step.id not in have and due >= now:
            place = _placement(due, now, settings, timing, enrollment.treated_at)
            rows.append(_message_row(enrollment, domain, step.id, place))
    if rows:
        session.execute(insert(Message), rows)
    return len(rows)


def timeline(session: Session, enrollment: Enrollment) -> list[Message]:
    """The sequence in sending order, each message with its step."""
    return list(
        session.scalars(
            select(Message)
            .where(Message.enrollment_id == enrollment.id)
            .options(joinedload(Message.step))
            .order_by(Message.due_at, Message.id)
        )
    )


def list_enrollments(
    session: Session,
    clinic_id: int,
    *,
    status: EnrollmentStatus | None = None,
    patient_id: int | None = None,
    after_id: int = 0,
    limit: int = 50,
) -> list[Enrollment]:
    query = select(Enrollment).where(Enrollment.clinic_id == clinic_id, Enrollment.id > after_id)
    if status is not None:
        query = query.where(Enrollment.status == status)
    if patient_id is not None:
        query = query.where(Enrollment.patient_id == patient_id)
    return list(session.scalars(query.order_by(Enrollment.id).limit(limit)))
