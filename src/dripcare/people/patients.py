"""Patients of a clinic. An email address is one patient per clinic."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from dripcare.errors import NotFound, UserError
from dripcare.models import Patient
from dripcare.validation import check_timezone, normalize_email, normalize_phone


@dataclass
class PatientChanges:
    """Fields to set; None leaves a field as it is."""

    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    timezone: str | None = None
    locale: str | None = None
    phone: str | None = None  # "" removes it


def get_patient(session: Session, clinic_id: int, patient_id: int) -> Patient:
    """Another clinic's patient is 'not found', exactly like one that does not exist."""
    patient = session.get(Patient, patient_id)
    if patient is None or patient.clinic_id != clinic_id:
        raise NotFound(f"no patient with id {patient_id}")
    return patient


def find_by_email(session: Session, clinic_id: int, email: str) -> Patient | None:
    return session.scalar(
        select(Patient).where(
            Patient.clinic_id == clinic_id, Patient.email == normalize_email(email)
        )
    )


def create_patient(session: Session, clinic_id: int, changes: PatientChanges) -> Patient:
    if not changes.email:
        raise UserError("email is required")
    email = normalize_email(changes.email)
    if find_by_email(session, clinic_id, email) is not None:
        raise UserError(f"a patient with email {email} exists already; update it instead")
    patient = Patient(clinic_id=clinic_id, email=email, first_name="", last_name="", locale="en")
    session.add(patient)
    return update_patient(
        session,
        patient,
        PatientChanges(
            first_name=changes.first_name,
            last_name=changes.last_name,
            timezone=changes.timezone,
            locale=changes.locale,
            phone=changes.phone,
        ),
    )


def not_erased(patient: Patient) -> Patient:
    """Refuse to write to, or mail, a patient erased on request."""
    if patient.erased_at is not None:
        raise UserError(
            f"patient {patient.id} was erased on request: it can no longer be changed or "
            "enrolled, and their address stays on the clinic's suppression list"
        )
    return patient


def update_patient(session: Session, patient: Patient, changes: PatientChanges) -> Patient:
    not_erased(patient)
    if changes.email is not None:
        email = normalize_email(changes.email)
        other = find_by_email(session, patient.clinic_id, email)
        if other is not None and other.id != patient.id:
            raise UserError(f"another patient has email {email}")
        patient.email = email
    if changes.first_name is not None:
        patient.first_name = " ".join(changes.first_name.split())
    if changes.last_name is not None:
        patient.last_name = " ".join(changes.last_name.split())
    if changes.timezone is not None:
        patient.timezone = check_timezone(changes.timezone)
    if changes.locale is not None:
        patient.locale = changes.locale
    if changes.phone is not None:
        patient.phone = normalize_phone(changes.phone)
    session.flush()
    return patient
