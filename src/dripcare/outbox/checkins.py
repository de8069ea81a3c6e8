"""Symptom check-ins: "How is your skin today?" answered from an email.

The questions and the guidance are the red flags and expected course of the campaign version
the email was built with (its `[clinical]` data, `clinical.py`), worded as symptoms, never as a
diagnosis. A red-flag answer alerts the clinic through the alert outbox (`alerts.py`).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from dripcare.content.campaign_spec import CampaignSpec
from dripcare.content.clinical import Clinical, RedFlag
from dripcare.content.compiled_campaigns import compiled
from dripcare.content.email_context import care_values
from dripcare.errors import UserError
from dripcare.models import (
    AlertChannel,
    Campaign,
    CheckIn,
    CheckInLevel,
    Clinic,
    ClinicAlert,
    Enrollment,
    Message,
    utcnow,
)
from dripcare.outbox import red_flags
from dripcare.people import staff_links
from dripcare.sending import escalation


def clinical_of(session: Session, message: Message) -> Clinical:
    """The clinical data of the campaign version the patient's email was built with."""
    return _version_spec(session, message).clinical


def asked_flags(session: Session, message: Message) -> tuple[RedFlag, ...]:
    """The red flags the check-in page lists for this email (`when` read from the care values)."""
    spec = _version_spec(session, message)
    clinic = session.get(Clinic, message.clinic_id)
    return spec.clinical.flags_for(care_values(spec.variables, clinic))


def _version_spec(session: Session, message: Message) -> CampaignSpec:
    enrollment = session.get(Enrollment, message.enrollment_id)
    assert enrollment is not None
    campaign = session.get(Campaign, enrollment.campaign_id)
    assert campaign is not None
    return compiled(session, campaign.id, message.campaign_version or campaign.version).spec


def record(session: Session, message: Message, *, worried: bool, codes: list[str]) -> CheckIn:
    """Store the answer; a red flag queues one alert per channel the clinic has set up."""
    unknown = sorted(set(codes) - {flag.code for flag in asked_flags(session, message)})
    if unknown:
        raise UserError(f"unknown answer(s): {', '.join(unknown)}")
    level = clinical_of(session, message).level_of(codes) if worried else CheckInLevel.FINE
    check_in = CheckIn(
        clinic_id=message.clinic_id,
        enrollment_id=message.enrollment_id,
        message_pk=message.id,
        level=level,
        answers=sorted(set(codes)),
    )
    session.add(check_in)
    session.flush()
    if level in (CheckInLevel.URGENT, CheckInLevel.EMERGENCY):
        _queue_alerts(session, check_in)
        red_flags.hold(session, check_in)
    return check_in


def shown_to_patient(level: CheckInLevel, clinic: Clinic) -> str:
    """What the answer page tells the patient to do first; the clinic's alert quotes it."""
    if level == CheckInLevel.EMERGENCY:
        return f"Call {clinic.emergency_number} now"
    if level == CheckInLevel.URGENT:
        return f"Call {clinic.name} now"
    return ""


def _queue_alerts(session: Session, check_in: CheckIn) -> None:
    clinic = session.get(Clinic, check_in.clinic_id)
    assert clinic is not None
    channels = AlertChannel.of_clinic(clinic)
    red_flags.open_alert(check_in)
    check_in.ack_jti = staff_links.new_jti()
    check_in.escalate_at = escalation.first_escalation(clinic, check_in.created_at)
    session.add_all(
        ClinicAlert(
            clinic_id=clinic.id,
            check_in_id=check_in.id,
            channel=channel,
            due_at=utcnow(),
            attempts=0,
        )
        for channel in channels
    )
    session.flush()


def days_since_treatment(session: Session, message: Message) -> int:
    enrollment = session.get(Enrollment, message.enrollment_id)
    assert enrollment is not None
    return max((utcnow() - enrollment.treated_at).days, 0)


def list_check_ins(
    session: Session,
    clinic_id: int,
    *,
    level: CheckInLevel | None = None,
    enrollment_id: int | None = None,
    after_id: int = 0,
    limit: int = 50,
) -> list[CheckIn]:
    query = select(CheckIn).where(CheckIn.clinic_id == clinic_id, CheckIn.id > after_id)
    if level is not None:
        query = query.where(CheckIn.level == level)
    if enrollment_id is not None:
        query = query.where(CheckIn.enrollment_id == enrollment_id)
    return list(session.scalars(query.order_by(CheckIn.id).limit(limit)))


def flag_texts(session: Session, check_in: CheckIn) -> list[str]:
    """The words the patient ticked, for the clinic to read, from the email's campaign version."""
    clinical = clinical_of(session, session.get_one(Message, check_in.message_pk))
    return [flag.text if (flag := clinical.flag(code)) else code for code in check_in.answers]
