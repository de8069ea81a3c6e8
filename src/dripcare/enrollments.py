"""Enrolling a treatment, and everything that later changes its sequence.

Enrolling writes every message of the sequence at once (the outbox): cancel, reschedule and
supersede are then updates of unsent rows, which the send path re-checks under its claim.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, insert, or_, select, update
from sqlalchemy.orm import Session, joinedload

from dripcare.campaigns import find_campaign, timing_of
from dripcare.config import Settings
from dripcare.errors import NotFound, UserError
from dripcare.models import (
    Campaign,
    Clinic,
    Enrollment,
    EnrollmentStatus,
    Message,
    MessageStatus,
    Patient,
    Step,
    utcnow,
)
from dripcare.scheduling import compute_due_at
from dripcare.validation import check_timezone, normalize_email

EARLIEST_TREATMENT = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_AHEAD = timedelta(days=366)
DATE_ONLY_TIME = time(12, 0)
REASON_LATE = "due more than the grace period before enrollment"
RESCHEDULABLE = (MessageStatus.SCHEDULED, MessageStatus.QUEUED, MessageStatus.SKIPPED)


@dataclass
class EnrollRequest:
    clinic_id: int
    email: str
    treated_at: str | datetime
    first_name: str = ""
    last_name: str = ""
    campaign: str = "microneedling"
    timezone: str | None = None
    external_id: str | None = None
    locale: str = "en"


@dataclass
class EnrollResult:
    enrollment: Enrollment
    created: bool
    superseded: list[int] = field(default_factory=list)
    messages: list[Message] | None = None  # the new sequence, when created (saves a re-read)


# ---- validation -------------------------------------------------------------------------------


def parse_treated_at(value: str | datetime, zone: str, now: datetime) -> datetime:
    """ISO date-time (with or without offset; without means the patient's zone) or a date.

    A date alone means noon local time: the day's first email then goes out that afternoon.
    """
    moment = value if isinstance(value, datetime) else _parse_iso(value.strip())
    try:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo(zone))
        moment = moment.astimezone(UTC)
    except OverflowError:
        moment = datetime.max.replace(tzinfo=UTC)  # years away either way: out of range below
    if moment < EARLIEST_TREATMENT or moment > now + LATEST_AHEAD:
        raise UserError(
            f"treated_at {value!s} is out of range: it must be after 2000-01-01 and "
            "at most a year from now"
        )
    return moment


def _parse_iso(text: str) -> datetime:
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), DATE_ONLY_TIME)
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise UserError(
            f"treated_at {text!r} is not an ISO date or date-time "
            "(e.g. 2026-11-24 or 2026-11-24T14:30 or 2026-11-24T14:30+01:00)"
        ) from exc


# ---- enrolling --------------------------------------------------------------------------------


def get_clinic(session: Session, clinic_id: int) -> Clinic:
    clinic = session.get(Clinic, clinic_id)
    if clinic is None:
        raise NotFound(f"no clinic with id {clinic_id}; list them with `dripcare clinic list`")
    return clinic


def enroll(
    session: Session, req: EnrollRequest, settings: Settings, now: datetime | None = None
) -> EnrollResult:
    """Idempotent per (clinic, external_id), and per (patient, campaign, treated_at) without one.

    This is the API's hot path: a new patient costs one query each for the campaign, the
    external id and the patient, then three inserts (patient, enrollment, messages).
    """
    now = now or utcnow()
    clinic = get_clinic(session, req.clinic_id)
    campaign = find_campaign(session, clinic.id, req.campaign)
    email = normalize_email(req.email)
    zone_override = check_timezone(req.timezone) if req.timezone else None
    external_id = (req.external_id or "").strip() or None
    if external_id:
        existing = session.scalar(
            select(Enrollment).where(
                Enrollment.clinic_id == clinic.id, Enrollment.external_id == external_id
            )
        )
        if existing is not None:
            return EnrollResult(existing, created=False)
    patient, new_patient = _upsert_patient(session, clinic, email, req, zone_override)
    zone = zone_override or patient.timezone or clinic.timezone
    treated_at = parse_treated_at(req.treated_at, zone, now)
    active = [] if new_patient else _active_enrollments(session, patient.id, campaign)
    for same in active:
        if same.campaign_id == campaign.id and same.treated_at == treated_at:
            return EnrollResult(same, created=False)
    enrollment = Enrollment(
        clinic_id=clinic.id,
        patient_id=patient.id,
        campaign=campaign,
        treatment=campaign.treatment,
        treated_at=treated_at,
        timezone=zone,
        external_id=external_id,
        status=EnrollmentStatus.ACTIVE,
    )
    session.add(enrollment)
    session.flush()
    older = [e for e in active if e.treatment == enrollment.treatment]
    superseded = _supersede(session, older, enrollment)
    messages = materialize(session, enrollment, campaign, clinic, settings, now)
    return EnrollResult(enrollment, created=True, superseded=superseded, messages=messages)


def _upsert_patient(
    session: Session, clinic: Clinic, email: str, req: EnrollRequest, zone: str | None
) -> tuple[Patient, bool]:
    """The clinic's patient with this email, updated or created; and whether it is new."""
    patient = session.scalar(
        select(Patient).where(Patient.clinic_id == clinic.id, Patient.email == email)
    )
    created = patient is None
    if patient is None:
        patient = Patient(clinic_id=clinic.id, email=email, locale=req.locale)
        session.add(patient)
    patient.first_name = req.first_name.strip() or patient.first_name or ""
    patient.last_name = req.last_name.strip() or patient.last_name or ""
    patient.timezone = zone or patient.timezone
    session.flush()
    return patient, created


def _active_enrollments(session: Session, patient_id: int, campaign: Campaign) -> list[Enrollment]:
    """The patient's active sequences this enrollment may repeat or replace, in one query."""
    return list(
        session.scalars(
            select(Enrollment).where(
                Enrollment.patient_id == patient_id,
                Enrollment.status == EnrollmentStatus.ACTIVE,
                or_(
                    Enrollment.treatment == campaign.treatment,
                    Enrollment.campaign_id == campaign.id,
                ),
            )
        )
    )


def _supersede(session: Session, older: list[Enrollment], newer: Enrollment) -> list[int]:
    """No two overlapping sequences for the same treatment: the new one replaces the old."""
    for old in older:
        old.status = EnrollmentStatus.SUPERSEDED
        old.superseded_by_id = newer.id
        _stop_unsent(
            session,
            Message.enrollment_id == old.id,
            MessageStatus.CANCELLED,
            f"superseded by enrollment {newer.id}",
        )
    return [old.id for old in older]


def materialize(
    session: Session,
    enrollment: Enrollment,
    campaign: Campaign,
    clinic: Clinic,
    settings: Settings,
    now: datetime,
) -> list[Message]:
    """One outbox row per active step, each with its own fixed Message-ID; one INSERT."""
    rows = [
        _message_row(clinic, enrollment, step, step_due(enrollment, step, settings), now, settings)
        for step in campaign.steps
        if step.active
    ]
    if not rows:
        return []
    inserted = insert(Message).returning(Message, sort_by_parameter_order=True)
    return list(session.scalars(inserted, rows))


def step_due(enrollment: Enrollment, step: object, settings: Settings) -> datetime:
    return compute_due_at(
        enrollment.treated_at,
        timing_of(step),  # type: ignore[arg-type]
        ZoneInfo(enrollment.timezone),
        settings.quiet,
    )


def _message_row(
    clinic: Clinic,
    enrollment: Enrollment,
    step: Step,
    due_at: datetime,
    now: datetime,
    settings: Settings,
) -> dict[str, object]:
    domain = clinic.sender_email.rpartition("@")[2] or "dripcare.local"
    return {
        "clinic_id": clinic.id,
        "enrollment_id": enrollment.id,
        "step_id": step.id,
        "message_id": f"<{uuid.uuid4().hex}@{domain}>",
        "attempts": 0,
        **_placement(due_at, now, settings),
    }


def _placement(due_at: datetime, now: datetime, settings: Settings) -> dict[str, object]:
    """Schedule, or skip when it is already too late for this email to make sense."""
    late = due_at < now - timedelta(hours=settings.late_grace_hours)
    return {
        "due_at": due_at,
        "lease_token": None,
        "lease_until": None,
        "status": MessageStatus.SKIPPED if late else MessageStatus.SCHEDULED,
        "status_reason": REASON_LATE if late else "",
    }


def _place(message: Message, due_at: datetime, now: datetime, settings: Settings) -> None:
    for name, value in _placement(due_at, now, settings).items():
        setattr(message, name, value)


# ---- changing a sequence ----------------------------------------------------------------------


def get_enrollment(
    session: Session, enrollment_id: int, clinic_id: int | None = None
) -> Enrollment:
    enrollment = session.get(Enrollment, enrollment_id)
    if enrollment is None or (clinic_id is not None and enrollment.clinic_id != clinic_id):
        raise NotFound(f"no enrollment with id {enrollment_id}")
    return enrollment


def cancel(
    session: Session, enrollment: Enrollment, reason: str = "cancelled", now: datetime | None = None
) -> int:
    """Stop every unsent message; returns how many were stopped. Idempotent."""
    if enrollment.status == EnrollmentStatus.ACTIVE:
        enrollment.status = EnrollmentStatus.CANCELLED
        enrollment.cancelled_at = now or utcnow()
    return _stop_unsent(
        session, Message.enrollment_id == enrollment.id, MessageStatus.CANCELLED, reason
    )


def _stop_unsent(
    session: Session, which: ColumnElement[bool], status: MessageStatus, reason: str
) -> int:
    """One UPDATE: a message claimed but not yet sending loses its lease and is not sent."""
    result = session.execute(
        update(Message)
        .where(
            which,
            Message.status.in_([MessageStatus.SCHEDULED, MessageStatus.QUEUED]),
        )
        .values(
            status=status,
            status_reason=reason,
            lease_token=None,
            lease_until=None,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    session.expire_all()
    return result.rowcount or 0  # type: ignore[attr-defined]


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
    moved = 0
    for enrollment, message in pairs:
        if message.status == MessageStatus.SKIPPED and message.status_reason != REASON_LATE:
            continue
        _place(message, step_due(enrollment, message.step, settings), now, settings)
        moved += 1
    session.flush()
    return moved


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
        result.cancelled += _stop_unsent(
            session,
            Message.step_id == step.id,
            MessageStatus.CANCELLED,
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
    rows = []
    for step in steps:
        due = step_due(enrollment, step, settings)
        if step.id not in have and due >= now:
            rows.append(_message_row(clinic, enrollment, step, due, now, settings))
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
