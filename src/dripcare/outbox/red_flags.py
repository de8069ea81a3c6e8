"""A red flag's lifecycle: the patient's reassurance emails wait, a person takes it in hand,
and the clinic decides whether the sequence goes on.

A red-flag check-in (either tier) holds the patient's unsent emails (status `held`, with the
reason shown in every timeline) so that "everything is healing" does not arrive after an
emergency; steps the clinic marks `safety_only` still go. The alert is then open until staff
acknowledge it (who, when), and resolved with an outcome: `resume` puts the held emails back
(those whose send window passed are skipped by the usual lateness rule) and `stop` cancels
them with StopCause.RED_FLAG. Escalation while it stays unacknowledged is escalation.py's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from dripcare.config import Settings
from dripcare.content.campaigns import timing_of
from dripcare.errors import UserError
from dripcare.models import (
    CheckIn,
    Clinic,
    ClinicAlert,
    Enrollment,
    Message,
    MessageStatus,
    Patient,
    RedFlagOutcome,
    RedFlagState,
    Step,
    StopCause,
    utcnow,
)
from dripcare.outbox.message_lifecycle import hold_unsent, stop_unsent
from dripcare.people import audit
from dripcare.sending.send_rules import format_window, late_window, too_late


def hold_reason(check_in: CheckIn, zone: str) -> str:
    day = check_in.created_at.astimezone(ZoneInfo(zone))
    return f"red flag reported on {day:%Y-%m-%d}: waiting for the clinic"


def hold(session: Session, check_in: CheckIn) -> int:
    """Hold the enrollment's unsent emails except safety-only steps; returns how many."""
    enrollment = session.get(Enrollment, check_in.enrollment_id)
    assert enrollment is not None
    safety_steps = select(Step.id).where(Step.safety_only.is_(True))
    which = and_(
        Message.enrollment_id == check_in.enrollment_id, Message.step_id.not_in(safety_steps)
    )
    return hold_unsent(session, which, hold_reason(check_in, enrollment.timezone))


def open_alert(check_in: CheckIn) -> None:
    check_in.alert_state = RedFlagState.OPEN


def acknowledge(
    session: Session, check_in: CheckIn, actor: audit.Actor, now: datetime | None = None
) -> bool:
    """Record who took the alert in hand; False when someone already had (nothing changes)."""
    if check_in.alert_state != RedFlagState.OPEN:
        return False
    now = now or utcnow()
    check_in.alert_state = RedFlagState.ACKNOWLEDGED
    check_in.acknowledged_at, check_in.acknowledged_by = now, actor.name[:320]
    check_in.escalate_at = None
    audit.record(
        session,
        actor,
        audit.Action.RED_FLAG_ACKNOWLEDGE,
        clinic_id=check_in.clinic_id,
        target=("check_in", check_in.id),
        now=now,
    )
    session.flush()
    return True


def resolve(
    session: Session,
    check_in: CheckIn,
    actor: audit.Actor,
    outcome: str,
    note: str,
    settings: Settings,
    now: datetime | None = None,
) -> int:
    """Resume or stop the held emails; returns how many were scheduled again or stopped.

    Resolving acknowledges too, if nobody had: deciding is taking it in hand."""
    if outcome not in list(RedFlagOutcome):
        raise UserError(f"outcome must be resume or stop, got {outcome!r}")
    if check_in.alert_state in (None, RedFlagState.RESOLVED):
        raise UserError(f"check-in {check_in.id} has no open red flag to resolve")
    now = now or utcnow()
    acknowledge(session, check_in, actor, now)
    which = Message.enrollment_id == check_in.enrollment_id
    if outcome == RedFlagOutcome.STOP:
        reason = f"stopped by the clinic after a red flag ({actor.name})"
        changed = stop_unsent(session, which, StopCause.RED_FLAG, reason[:300])
    else:
        changed = _resume(session, check_in.enrollment_id, settings, now)
    check_in.alert_state = RedFlagState.RESOLVED
    check_in.resolved_at, check_in.resolved_by = now, actor.name[:320]
    check_in.outcome, check_in.resolution_note = RedFlagOutcome(outcome), note.strip()[:1000]
    audit.record(
        session,
        actor,
        audit.Action.RED_FLAG_RESOLVE,
        clinic_id=check_in.clinic_id,
        target=("check_in", check_in.id),
        detail=f"{outcome}: {changed} email(s)",
        now=now,
    )
    session.flush()
    return changed


def _resume(session: Session, enrollment_id: int, settings: Settings, now: datetime) -> int:
    """Held emails go back to scheduled, or are skipped when their send window has passed."""
    held = list(
        session.scalars(
            select(Message).where(
                Message.enrollment_id == enrollment_id, Message.status == MessageStatus.HELD
            )
        )
    )
    for message in held:
        window = late_window(timing_of(message.step), settings)
        if too_late(message.due_at, window, now):
            message.status, message.stop_cause = MessageStatus.SKIPPED, StopCause.LATE
            message.status_reason = (
                f"too late to be useful after the red flag was resolved: "
                f"to be sent within {format_window(window)} of its planned time"
            )
        else:
            message.status, message.status_reason = MessageStatus.SCHEDULED, ""
        message.updated_at = now
    session.flush()
    return len(held)


def open_red_flags(session: Session, clinic_id: int) -> list[CheckIn]:
    """Open first, then acknowledged but not resolved; oldest first within each."""
    rows = session.scalars(
        select(CheckIn)
        .where(
            CheckIn.clinic_id == clinic_id,
            CheckIn.alert_state.in_([RedFlagState.OPEN, RedFlagState.ACKNOWLEDGED]),
        )
        .order_by(CheckIn.created_at, CheckIn.id)
    )
    return sorted(rows, key=lambda c: c.alert_state != RedFlagState.OPEN)


@dataclass(frozen=True)
class RedFlagView:
    """What staff need to act on one red flag, in one place (admin list and page)."""

    check_in: CheckIn
    patient: Patient
    step_key: str
    answers: list[str]
    shown_to_patient: str
    deliveries: list[ClinicAlert]

    @property
    def patient_name(self) -> str:
        name = f"{self.patient.first_name} {self.patient.last_name}".strip()
        return name or f"patient {self.patient.id}"


def views(session: Session, clinic: Clinic, check_in_id: int | None = None) -> list[RedFlagView]:
    """Unresolved red flags (open first), or the one asked for, whatever its state."""
    from dripcare.outbox.checkins import flag_texts, shown_to_patient

    if check_in_id is None:
        found = open_red_flags(session, clinic.id)
    else:
        one = session.get(CheckIn, check_in_id)
        found = [one] if one is not None and one.clinic_id == clinic.id and one.alert_state else []
    result = []
    for check_in in found:
        patient, step_key = session.execute(
            select(Patient, Step.key)
            .select_from(Message)
            .join(Step, Message.step_id == Step.id)
            .join(Enrollment, Message.enrollment_id == Enrollment.id)
            .join(Patient, Enrollment.patient_id == Patient.id)
            .where(Message.id == check_in.message_pk)
        ).one()
        deliveries = session.scalars(
            select(ClinicAlert)
            .where(ClinicAlert.check_in_id == check_in.id)
            .order_by(ClinicAlert.id)
        )
        result.append(
            RedFlagView(
                check_in,
                patient,
                step_key,
                flag_texts(session, check_in),
                shown_to_patient(check_in.level, clinic),
                list(deliveries),
            )
        )
    return result
