"""Erasing a patient on request: their personal data goes, the facts the clinic must keep stay.

What goes: name, email, phone, time zone, booking ids, the answers of check-ins, SMTP replies that
may quote the address. Unsent emails are cancelled and old links stop working. What stays,
under the patient's id, which no longer says who it was: the rows themselves (so counts of
treatments, emails and check-ins still add up) and the subscription history. The address is
kept only as a hash on the suppression list, so that enrolling it again never mails a person
who asked to be forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dripcare.models import (
    CheckIn,
    DeliveryAttempt,
    Enrollment,
    EnrollmentStatus,
    Message,
    Patient,
    StopCause,
    utcnow,
)
from dripcare.outbox import suppression
from dripcare.people import audit
from dripcare.people.audit import Action, Actor
from dripcare.people.patients import get_patient

ERASED_DOMAIN = "erased.invalid"  # RFC 2606: can never be delivered


@dataclass(frozen=True)
class Erased:
    patient_id: int
    erased_at: datetime
    messages_cancelled: int
    already_erased: bool


def placeholder_email(patient_id: int) -> str:
    """Unique per patient (the clinic's email index is unique) and undeliverable."""
    return f"erased-{patient_id}@{ERASED_DOMAIN}"


def erase(
    session: Session, clinic_id: int, patient_id: int, actor: Actor, now: datetime | None = None
) -> Erased:
    """Erase one of the clinic's patients. Again on an erased patient: the same answer."""
    now = now or utcnow()
    patient = get_patient(session, clinic_id, patient_id)
    session.refresh(patient, with_for_update=True)  # two erasures at once: one waits, one repeats
    if patient.erased_at is not None:
        _audit(session, actor, patient, "already erased", now)
        return Erased(patient.id, patient.erased_at, 0, already_erased=True)
    cancelled = suppression.cancel_unsent(session, patient.id, StopCause.ERASED)
    suppression.keep_hashed(session, clinic_id, patient.email, now)
    _scrub_history(session, patient.id, now)
    patient.email = placeholder_email(patient.id)
    patient.first_name = patient.last_name = patient.phone = ""
    patient.timezone = None
    patient.link_epoch = (patient.link_epoch or 0) + 1  # links in sent emails stop working
    patient.erased_at = now
    session.flush()
    _audit(session, actor, patient, f"{cancelled} unsent emails cancelled", now)
    return Erased(patient.id, now, cancelled, already_erased=False)


def _audit(session: Session, actor: Actor, patient: Patient, detail: str, now: datetime) -> None:
    target = ("patient", patient.id)
    clinic_id = patient.clinic_id
    audit.record(
        session, actor, Action.PATIENT_ERASE, clinic_id=clinic_id, target=target, detail=detail
    )


def _scrub_history(session: Session, patient_id: int, now: datetime) -> None:
    """Free text that may quote the patient goes; statuses, times and counts stay."""
    enrollment_ids = select(Enrollment.id).where(Enrollment.patient_id == patient_id)
    message_ids = select(Message.id).where(Message.enrollment_id.in_(enrollment_ids))
    session.execute(
        update(Enrollment)
        .where(Enrollment.patient_id == patient_id)
        .values(external_id=None)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Enrollment)
        .where(Enrollment.patient_id == patient_id, Enrollment.status == EnrollmentStatus.ACTIVE)
        .values(status=EnrollmentStatus.CANCELLED, cancelled_at=now)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Message)
        .where(Message.id.in_(message_ids))
        .values(last_error="")
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(DeliveryAttempt)
        .where(DeliveryAttempt.message_pk.in_(message_ids))
        .values(detail="")
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(CheckIn)
        .where(CheckIn.enrollment_id.in_(enrollment_ids))
        .values(answers=[])
        .execution_options(synchronize_session=False)
    )
