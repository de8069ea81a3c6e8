"""ORM rows to response bodies."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from dripcare.models import Enrollment, MessageStatus, Patient
from dripcare.web.schemas import EnrollmentOut, MessageSummary, PatientOut


def patient_out(patient: Patient) -> PatientOut:
    return PatientOut(
        id=patient.id,
        email=patient.email,
        first_name=patient.first_name,
        last_name=patient.last_name,
        timezone=patient.timezone,
        locale=patient.locale,
        phone=patient.phone,
        created_at=patient.created_at,
    )


class Scheduled(Protocol):
    """A stored message or one just scheduled (enrolling answers without reading back)."""

    @property
    def id(self) -> int: ...
    @property
    def step_key(self) -> str: ...
    @property
    def status(self) -> MessageStatus: ...
    @property
    def status_reason(self) -> str: ...
    @property
    def due_at(self) -> datetime: ...
    @property
    def attempts(self) -> int: ...
    @property
    def sent_at(self) -> datetime | None: ...


def message_summary(message: Scheduled, zone: str) -> MessageSummary:
    return MessageSummary(
        id=message.id,
        step=message.step_key,
        status=message.status.value,
        status_reason=message.status_reason,
        due_at=message.due_at,
        due_local=message.due_at.astimezone(ZoneInfo(zone)),
        attempts=message.attempts,
        sent_at=message.sent_at,
    )


def enrollment_out(
    enrollment: Enrollment, messages: Sequence[Scheduled], campaign: str | None = None
) -> EnrollmentOut:
    """`campaign` is the slug when the caller knows it, saving a load of the campaign."""
    return EnrollmentOut(
        id=enrollment.id,
        patient_id=enrollment.patient_id,
        campaign=campaign or enrollment.campaign.slug,
        status=enrollment.status.value,
        treated_at=enrollment.treated_at,
        timezone=enrollment.timezone,
        external_id=enrollment.external_id,
        created_at=enrollment.created_at,
        treatment_attributes=dict(enrollment.attributes or {}),
        next_session_booked_at=enrollment.next_session_booked_at,
        one_off=bool(enrollment.one_off),
        messages=[message_summary(m, enrollment.timezone) for m in messages],
    )
