"""Read-only views of the outbox for operators."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from dripcare.models import (
    FINAL,
    IN_FLIGHT,
    UPCOMING,
    AlertStatus,
    Campaign,
    CheckIn,
    CheckInLevel,
    ClinicAlert,
    Enrollment,
    Message,
    MessageStatus,
    Patient,
    Step,
)

RED_FLAG_LEVELS = (CheckInLevel.URGENT, CheckInLevel.EMERGENCY)


def outbox_status(session: Session) -> tuple[dict[str, int], datetime | None]:
    """Counts for every status (zeros included, so scripts can rely on the keys)."""
    counts = dict.fromkeys((s.value for s in MessageStatus), 0)
    for (_, status), n in outbox_counts(session).items():
        counts[status] += n
    next_due = session.scalar(
        select(func.min(Message.due_at)).where(Message.status == MessageStatus.SCHEDULED)
    )
    return counts, _utc(next_due)


def _utc(value: datetime | None) -> datetime | None:
    """An aggregate's datetime, aware in UTC whatever the driver gave back."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def outbox_counts(session: Session) -> dict[tuple[int, str], int]:
    """Messages per (clinic id, status).

    Reads every row (a parallel sequential scan on PostgreSQL): ~0.1 s per million rows,
    measured by bench/metrics_scrape.py. No index makes a count of every row cheaper.
    """
    query = select(Message.clinic_id, Message.status, func.count()).group_by(
        Message.clinic_id, Message.status
    )
    return {
        (clinic, MessageStatus(status).value): n for clinic, status, n in session.execute(query)
    }


def oldest_due_unsent(session: Session, now: datetime) -> datetime | None:
    """The due time of the oldest message that is due and not sent yet, if any.

    Waiting rows (served by the partial index ix_messages_due_scheduled) and rows in flight
    (ix_messages_lease_inflight, a few batches) are asked separately, so each query reads
    one end of a small partial index instead of the table.
    """
    waiting = session.scalar(
        select(func.min(Message.due_at)).where(Message.status == MessageStatus.SCHEDULED)
    )
    in_flight = session.scalar(
        select(func.min(Message.due_at)).where(Message.status.in_(IN_FLIGHT))
    )
    due = [at for at in map(_utc, (waiting, in_flight)) if at is not None and at <= now]
    return min(due, default=None)


def undelivered_alerts(session: Session) -> tuple[dict[int, int], datetime | None]:
    """Clinic alerts not delivered yet, per clinic, and when the oldest one's check-in came.

    "Delivered" is what alerts.py knows: the clinic's SMTP server accepted the email, or its
    webhook answered 2xx. No person acknowledges an alert in dripcare.
    """
    pending = (ClinicAlert.status != AlertStatus.DELIVERED) & ClinicAlert.check_in_id.is_not(None)
    counts = session.execute(
        select(ClinicAlert.clinic_id, func.count()).where(pending).group_by(ClinicAlert.clinic_id)
    )
    oldest = session.scalar(
        select(func.min(CheckIn.created_at))
        .join(ClinicAlert, ClinicAlert.check_in_id == CheckIn.id)
        .where(pending)
    )
    return {clinic: n for clinic, n in counts if clinic is not None}, _utc(oldest)


def list_messages(
    session: Session,
    clinic_id: int,
    *,
    status: MessageStatus | None = None,
    since: datetime | None = None,
    after_id: int = 0,
    limit: int = 50,
) -> list[Message]:
    """A page of a clinic's messages in id order; `since` filters on the last change."""
    query = select(Message).where(Message.clinic_id == clinic_id, Message.id > after_id)
    if status is not None:
        query = query.where(Message.status == status)
    if since is not None:
        query = query.where(Message.updated_at >= since)
    return list(session.scalars(query.order_by(Message.id).limit(limit)))


@dataclass(frozen=True)
class OutboxRow:
    """One message as the admin lists it: who, which email, when (in the patient's zone)."""

    message: Message
    patient: Patient
    step: Step
    campaign: Campaign
    zone: str


@dataclass(frozen=True)
class PatientFilter:
    """Narrow the outbox to one patient (by id) or to patients whose email or name contains
    `text` (case-insensitive)."""

    patient_id: int | None = None
    text: str = ""


def _outbox_query(
    clinic_id: int, statuses: Sequence[MessageStatus], who: PatientFilter
) -> Select[Message, Patient, Step, Campaign, str]:
    query = (
        select(Message, Patient, Step, Campaign, Enrollment.timezone)
        .join(Enrollment, Message.enrollment_id == Enrollment.id)
        .join(Patient, Enrollment.patient_id == Patient.id)
        .join(Step, Message.step_id == Step.id)
        .join(Campaign, Step.campaign_id == Campaign.id)
        .where(Message.clinic_id == clinic_id, Message.status.in_(statuses))
    )
    if who.patient_id is not None:
        query = query.where(Patient.id == who.patient_id)
    if text := who.text.strip().lower():
        query = query.where(
            or_(
                *(
                    func.lower(column).contains(text, autoescape=True)
                    for column in (Patient.email, Patient.first_name, Patient.last_name)
                )
            )
        )
    return query


def upcoming_messages(
    session: Session, clinic_id: int, who: PatientFilter, limit: int = 100
) -> list[OutboxRow]:
    """Not yet sent, soonest first."""
    query = _outbox_query(clinic_id, UPCOMING, who).order_by(Message.due_at, Message.id)
    return [OutboxRow(*row) for row in session.execute(query.limit(limit))]


def recent_messages(
    session: Session, clinic_id: int, who: PatientFilter, limit: int = 100
) -> list[OutboxRow]:
    """Sent, failed, cancelled or skipped: the latest change first."""
    query = _outbox_query(clinic_id, FINAL, who).order_by(
        Message.updated_at.desc(), Message.id.desc()
    )
    return [OutboxRow(*row) for row in session.execute(query.limit(limit))]


def patient_messages(session: Session, clinic_id: int, patient_id: int) -> list[OutboxRow]:
    """Every message of one patient, in due order."""
    query = _outbox_query(clinic_id, list(MessageStatus), PatientFilter(patient_id))
    return [OutboxRow(*row) for row in session.execute(query.order_by(Message.due_at))]


def red_flag_check_ins(
    session: Session, clinic_id: int, patient_id: int | None = None, limit: int = 20
) -> list[tuple[CheckIn, Patient, Enrollment]]:
    """Urgent and emergency answers, newest first: what the clinic must act on."""
    query = (
        select(CheckIn, Patient, Enrollment)
        .join(Enrollment, CheckIn.enrollment_id == Enrollment.id)
        .join(Patient, Enrollment.patient_id == Patient.id)
        .where(CheckIn.clinic_id == clinic_id, CheckIn.level.in_(RED_FLAG_LEVELS))
    )
    if patient_id is not None:
        query = query.where(Patient.id == patient_id)
    rows = session.execute(
        query.order_by(CheckIn.created_at.desc(), CheckIn.id.desc()).limit(limit)
    )
    return [(c, p, e) for c, p, e in rows]


def patient_check_ins(
    session: Session, clinic_id: int, patient_id: int
) -> list[tuple[CheckIn, list[ClinicAlert]]]:
    """Every answer of one patient, newest first, with the alerts each one raised."""
    check_ins = session.scalars(
        select(CheckIn)
        .join(Enrollment, CheckIn.enrollment_id == Enrollment.id)
        .where(CheckIn.clinic_id == clinic_id, Enrollment.patient_id == patient_id)
        .order_by(CheckIn.created_at.desc(), CheckIn.id.desc())
    ).all()
    alerts = session.scalars(
        select(ClinicAlert)
        .where(ClinicAlert.check_in_id.in_([c.id for c in check_ins]))
        .order_by(ClinicAlert.id)
    ).all()
    return [(c, [a for a in alerts if a.check_in_id == c.id]) for c in check_ins]
