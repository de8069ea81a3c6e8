"""A patient's data on request: download it as JSON, or erase it after a confirmation page;
and the marks on a treatment that skip steps (next session booked, one-off).

All are the domain's functions (patient_export, erasure, enrollment_marks); export and erasure
are audited with the signed-in admin as the actor.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from dripcare.config import get_settings
from dripcare.errors import NotFound
from dripcare.models import Patient
from dripcare.outbox.enrollment_marks import set_mark
from dripcare.outbox.enrollment_queries import get_enrollment
from dripcare.outbox.skip_conditions import SkipCondition
from dripcare.people.audit import Actor
from dripcare.people.erasure import erase
from dripcare.people.patient_export import export_patient
from dripcare.people.patients import get_patient
from dripcare.web.admin.deps import AdminContext, AdminDep, AdminNotFound, CsrfFormDep
from dripcare.web.admin.views import render
from dripcare.web.deps import SessionDep
from dripcare.web.pagination import Id

router = APIRouter()


@router.get("/patients/{patient_id}/export")
def export_download(patient_id: Id, admin: AdminDep, session: SessionDep) -> Response:
    try:
        data = export_patient(session, admin.clinic_id, patient_id, Actor.admin(admin.user))
    except NotFound as exc:
        raise AdminNotFound from exc
    session.commit()
    return Response(
        json.dumps(data, indent=2, ensure_ascii=False),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="patient-{patient_id}.json"'},
    )


@router.get("/patients/{patient_id}/erase", response_class=HTMLResponse)
def erase_confirm(
    request: Request, patient_id: Id, admin: AdminDep, session: SessionDep
) -> HTMLResponse:
    """Says what erasure removes and keeps; the button on it erases."""
    patient = _patient(session, admin, patient_id)
    return render(request, admin, "admin/patient_erase.html", {"patient": patient})


@router.post("/patients/{patient_id}/erase")
def erase_patient(patient_id: Id, admin: CsrfFormDep, session: SessionDep) -> RedirectResponse:
    try:
        erase(session, admin.clinic_id, patient_id, Actor.admin(admin.user))
    except NotFound as exc:
        raise AdminNotFound from exc
    session.commit()
    return RedirectResponse(f"/admin/patients/{patient_id}", status_code=303)


@router.post("/enrollments/{enrollment_id}/marks/{condition}")
def mark_enrollment(
    enrollment_id: Id,
    condition: SkipCondition,
    admin: CsrfFormDep,
    session: SessionDep,
    on: bool = Form(...),
) -> RedirectResponse:
    """The buttons on the patient page: mark or unmark, then back to the patient."""
    try:
        enrollment = get_enrollment(session, enrollment_id, admin.clinic_id)
    except NotFound as exc:
        raise AdminNotFound from exc
    set_mark(session, enrollment, condition, on, get_settings())
    session.commit()
    return RedirectResponse(f"/admin/patients/{enrollment.patient_id}", status_code=303)


def _patient(session: SessionDep, admin: AdminContext, patient_id: int) -> Patient:
    try:
        return get_patient(session, admin.clinic_id, patient_id)
    except NotFound as exc:
        raise AdminNotFound from exc
