"""/api/v1/patients"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from dripcare.db import again_on_conflict
from dripcare.people.erasure import erase as erase_patient
from dripcare.people.patient_export import export_patient
from dripcare.people.patients import PatientChanges, create_patient, find_by_email, get_patient
from dripcare.people.patients import update_patient as apply_changes
from dripcare.web.deps import ApiActorDep, ApiRoute, ClinicDep, IdempotencyKey, SessionDep
from dripcare.web.errors import COMMON_RESPONSES, IDEMPOTENT_POST, NOT_FOUND
from dripcare.web.idempotency import respond
from dripcare.web.pagination import Id
from dripcare.web.schemas import ErasureOut, Page, PatientIn, PatientOut, PatientPatch
from dripcare.web.serialize import patient_out

router = APIRouter(
    prefix="/patients", tags=["patients"], responses=COMMON_RESPONSES, route_class=ApiRoute
)


@router.post(
    "",
    operation_id="createPatient",
    status_code=201,
    response_model=PatientOut,
    responses=IDEMPOTENT_POST,
    summary="Create a patient",
)
def create(
    payload: PatientIn,
    clinic: ClinicDep,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Create a patient. An email is one patient per clinic."""

    def run() -> tuple[int, PatientOut]:
        patient = create_patient(session, clinic, PatientChanges(**payload.model_dump()))
        return 201, patient_out(patient)

    return respond(session, clinic, idempotency_key, "POST /patients", payload, run)


@router.get(
    "",
    operation_id="findPatients",
    response_model=Page[PatientOut],
    summary="Find a patient by email",
)
def search(
    clinic: ClinicDep,
    session: SessionDep,
    email: Annotated[str, Query(max_length=320, description="The patient's email")],
) -> Page[PatientOut]:
    """Find a patient by email (there is at most one per clinic)."""
    patient = find_by_email(session, clinic, email)
    data = [patient_out(patient)] if patient else []
    return Page[PatientOut](data=data, has_more=False, next_cursor=None)


@router.get(
    "/{patient_id}",
    operation_id="getPatient",
    response_model=PatientOut,
    responses=NOT_FOUND,
    summary="A patient",
)
def read(patient_id: Id, clinic: ClinicDep, session: SessionDep) -> PatientOut:
    return patient_out(get_patient(session, clinic, patient_id))


@router.patch(
    "/{patient_id}",
    operation_id="updatePatient",
    response_model=PatientOut,
    responses=NOT_FOUND,
    summary="Update a patient",
)
def update(
    patient_id: Id, payload: PatientPatch, clinic: ClinicDep, session: SessionDep
) -> PatientOut:
    """Change email, names, time zone or locale. Already scheduled emails keep their times."""
    changes = PatientChanges(**payload.model_dump(exclude_unset=True))

    def attempt() -> PatientOut:
        patient = apply_changes(session, get_patient(session, clinic, patient_id), changes)
        session.commit()
        return patient_out(patient)

    return again_on_conflict(session, attempt)


@router.get(
    "/{patient_id}/export",
    operation_id="exportPatient",
    response_model=dict[str, Any],
    responses=NOT_FOUND,
    summary="Export everything about a patient",
)
def export(
    patient_id: Id, clinic: ClinicDep, actor: ApiActorDep, session: SessionDep
) -> dict[str, Any]:
    """The patient, their enrollments, emails with status and delivery history, check-ins,
    and unsubscribe history, as one JSON document (for a patient's access request).

    Each export is recorded in the clinic's audit log.
    """
    data = export_patient(session, clinic, patient_id, actor)
    session.commit()
    return data


@router.post(
    "/{patient_id}/erase",
    operation_id="erasePatient",
    response_model=ErasureOut,
    responses=NOT_FOUND,
    summary="Erase a patient's personal data",
)
def erase(patient_id: Id, clinic: ClinicDep, actor: ApiActorDep, session: SessionDep) -> ErasureOut:
    """Remove the patient's name, email and other personal data, and cancel their unsent
    emails. Counts of treatments and emails are kept under the patient's id; the address is
    kept only as a hash on the suppression list, so it is never mailed again.

    Idempotent without an Idempotency-Key: erasing an erased patient answers the same, with
    `already_erased` true. Recorded in the clinic's audit log.
    """

    done = erase_patient(session, clinic, patient_id, actor)
    session.commit()
    return ErasureOut(**dataclasses.asdict(done))
