"""Changing a sequence after enrolling: cancel, resume a patient's own stop, reschedule.

Each is an update of unsent outbox rows, which the send path re-checks under its claim.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from dripcare.config import Settings
from dripcare.content.campaigns import timing_of
from dripcare.errors import UserError
from dripcare.models import (
    RESCHEDULABLE,
    Enrollment,
    EnrollmentStatus,
    Message,
    MessageStatus,
    Step,
    StopCause,
    utcnow,
)
from dripcare.outbox import pre_care
from dripcare.outbox.message_lifecycle import restore, stop_unsent
from dripcare.outbox.outbox_rows import placement, step_due
from dripcare.outbox.scheduling import StepTiming
from dripcare.outbox.treatment_time import parse_treated_at
from dripcare.people.clinics import get_clinic
from dripcare.sending.send_rules import quiet_hours_of


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
    return replace_unsent(session, [(enrollment, m) for m in unsent], settings, now)


def replace_unsent(
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


def place_message(
    session: Session,
    message: Message,
    timing: StepTiming,
    enrollment: Enrollment,
    now: datetime,
    settings: Settings,
) -> None:
    """Place one unsent row again, as enrolling would now (a reschedule, a changed mark).

    A claimed row loses its lease, so it is not sent at its old time; a held one stays held."""
    clinic = get_clinic(session, enrollment.clinic_id)  # usually in the identity map already
    due_at = step_due(enrollment, timing, settings, quiet_hours_of(clinic, settings))
    place = placement(due_at, now, settings, timing, enrollment.treated_at)
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
