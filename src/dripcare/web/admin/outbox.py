"""The outbox as a clinic sees it: upcoming and recent messages, a patient's whole story, and
any email as the patient saw it.

Emails are rendered again on demand (bodies are never stored, they carry health details),
through the same path the sender uses (`message_view`), from the campaign as it is
now. The HTML is served from its own URL with a CSP `sandbox`, and shown in a sandboxed
iframe: an email's markup can run nothing and reach nothing of the admin.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from dripcare.config import get_settings
from dripcare.models import Enrollment, Message, Patient, Suppression
from dripcare.outbox.reporting import (
    PatientFilter,
    patient_check_ins,
    patient_messages,
    recent_messages,
    red_flag_check_ins,
    upcoming_messages,
)
from dripcare.sending.message_view import attempts_of, shown
from dripcare.web.admin.deps import AdminDep, AdminNotFound
from dripcare.web.admin.views import render
from dripcare.web.deps import SessionDep
from dripcare.web.pagination import Id, IdFilter

router = APIRouter()
LIMIT = 100
# The email alone, as an opaque origin: no scripts, no forms, no plugins; images from https.
EMAIL_CSP = (
    "sandbox; default-src 'none'; img-src https: data:; style-src 'unsafe-inline'; "
    "font-src https: data:; frame-ancestors 'self'"
)


@router.get("/outbox", response_class=HTMLResponse)
def outbox(
    request: Request,
    admin: AdminDep,
    session: SessionDep,
    patient: IdFilter = None,
    q: str = "",
) -> HTMLResponse:
    q = q[:200]
    who = PatientFilter(patient, q)
    context = {
        "q": q,
        "patient": _patient(session, admin.clinic_id, patient) if patient else None,
        "upcoming": upcoming_messages(session, admin.clinic_id, who, LIMIT),
        "recent": recent_messages(session, admin.clinic_id, who, LIMIT),
        "red_flags": red_flag_check_ins(session, admin.clinic_id, patient) if not q else [],
        "limit": LIMIT,
    }
    return render(request, admin, "admin/outbox.html", context)


@router.get("/patients/{patient_id}", response_class=HTMLResponse)
def patient_page(
    request: Request, patient_id: Id, admin: AdminDep, session: SessionDep
) -> HTMLResponse:
    patient = _patient(session, admin.clinic_id, patient_id)
    enrollments = session.scalars(
        select(Enrollment)
        .where(Enrollment.patient_id == patient.id, Enrollment.clinic_id == admin.clinic_id)
        .order_by(Enrollment.treated_at.desc())
    ).all()
    context = {
        "patient": patient,
        "enrollments": enrollments,
        "messages": patient_messages(session, admin.clinic_id, patient.id),
        "check_ins": patient_check_ins(session, admin.clinic_id, patient.id),
        "suppressed": session.scalar(
            select(Suppression).where(
                Suppression.clinic_id == admin.clinic_id, Suppression.email == patient.email
            )
        ),
    }
    return render(request, admin, "admin/patient.html", context)


@router.get("/messages/{message_id}", response_class=HTMLResponse)
def message_page(
    request: Request, message_id: Id, admin: AdminDep, session: SessionDep
) -> HTMLResponse:
    message = _message(session, admin.clinic_id, message_id)
    rendered, problem = shown(session, message.id, get_settings())
    enrollment = message.enrollment
    context = {
        "message": message,
        "patient": enrollment.patient,
        "zone": enrollment.timezone,
        "rendered": rendered,
        "problem": problem,
        "attempts": attempts_of(session, message.id),
    }
    return render(request, admin, "admin/message.html", context)


@router.get("/messages/{message_id}/html", response_class=HTMLResponse)
def message_html(message_id: Id, admin: AdminDep, session: SessionDep) -> HTMLResponse:
    message = _message(session, admin.clinic_id, message_id)
    rendered, _ = shown(session, message.id, get_settings())
    body = rendered.html if rendered else "<p>This email cannot be shown.</p>"
    return HTMLResponse(body, headers={"Content-Security-Policy": EMAIL_CSP})


def _patient(session: SessionDep, clinic_id: int, patient_id: int) -> Patient:
    patient = session.get(Patient, patient_id)
    if patient is None or patient.clinic_id != clinic_id:
        raise AdminNotFound
    return patient


def _message(session: SessionDep, clinic_id: int, message_id: int) -> Message:
    message = session.get(Message, message_id)
    if message is None or message.clinic_id != clinic_id:
        raise AdminNotFound
    return message
