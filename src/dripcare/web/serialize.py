"""ORM rows to response bodies."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from dripcare.models import Enrollment, Message, Patient
from dripcare.web.schemas import EnrollmentOut, MessageSummary, PatientOut


def patient_out(patient: Patient) -> PatientOut:
    return PatientOut(
        id=patient.id,
        email=patient.email,
        first_name=patient.first_name,
        last_name=patient.last_name,
        timezone=patient.timezone,
        locale=patient.locale,
        created_at=patient.created_at,
    )


def message_summary(message: Message, zone: str) -> MessageSummary:
    return MessageSummary(
        id=message.id,
        step=message.step.key,
        status=message.status.value,
        status_reason=message.status_reason,
        due_at=message.due_at,
        due_local=message.due_at.astimezone(ZoneInfo(zone)),
        attempts=message.attempts,
        sent_at=message.sent_at,
    )


def enrollment_out(enrollment: Enrollment, messages: list[Message]) -> EnrollmentOut:
    return EnrollmentOut(
        id=enrollment.id,
        patient_id=enrollment.patient_id,
        campaign=enrollment.campaign.slug,
        status=enrollment.status.value,
        treated_at=enrollment.treated_at,
        timezone=enrollment.timezone,
        external_id=enrollment.external_id,
        created_at=enrollment.created_at,
        messages=[message_summary(m, enrollment.timezone) for m in messages],
    )
