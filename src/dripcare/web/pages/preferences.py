"""The preferences page: stop this treatment's emails, stop all emails, and undo either."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from dripcare.content.email_context import format_date
from dripcare.content.phone_links import phone_uri
from dripcare.models import (
    Clinic,
    Enrollment,
    EnrollmentStatus,
    Message,
    Patient,
    StopCause,
    SuppressionSource,
    utcnow,
)
from dripcare.outbox import enrollment_changes, suppression
from dripcare.web.deps import SessionDep
from dripcare.web.pages.common import TokenMessage, pages

router = APIRouter(include_in_schema=False)
Action = Literal["stop-treatment", "resume-treatment", "stop-all", "resubscribe"]
DONE = {
    "stop-treatment": "Done: no more emails about this treatment.",
    "resume-treatment": "Done: you will get emails about this treatment again.",
    "stop-all": "Done: no more emails from this clinic.",
    "resubscribe": "Done: you will get aftercare emails again.",
}
CANNOT_RESUME = "These emails cannot be restarted here. Please call the clinic."


def _view(request: Request, session: SessionDep, message: Message, done: str = "") -> HTMLResponse:
    enrollment = session.get(Enrollment, message.enrollment_id)
    clinic = session.get(Clinic, message.clinic_id)
    assert enrollment is not None and clinic is not None
    patient = session.get(Patient, enrollment.patient_id)
    assert patient is not None
    return pages.TemplateResponse(
        request,
        "preferences.html",
        {
            "clinic_name": clinic.name,
            "clinic_phone": clinic.phone,
            "clinic_phone_uri": phone_uri(clinic.phone),
            "done": done,
            "treatment": enrollment.treatment.replace("-", " "),
            "treated_on": format_date(enrollment.treated_at, enrollment.timezone),
            "sequence_active": enrollment.status == EnrollmentStatus.ACTIVE,
            "resumable": enrollment_changes.resumable(session, enrollment),
            "suppressed": suppression.is_suppressed(session, clinic.id, patient.email),
        },
    )


@router.get("/p/{token}", response_class=HTMLResponse)
def show(request: Request, token: str, session: SessionDep, message: TokenMessage) -> HTMLResponse:
    return _view(request, session, message)


@router.post("/p/{token}", response_class=HTMLResponse)
def change(
    request: Request,
    token: str,
    session: SessionDep,
    message: TokenMessage,
    action: Annotated[Action, Form()],
) -> HTMLResponse:
    enrollment = session.get(Enrollment, message.enrollment_id)
    assert enrollment is not None
    if action == "stop-treatment":
        enrollment_changes.cancel(session, enrollment, StopCause.PATIENT)
    elif action == "resume-treatment":
        if not enrollment_changes.resumable(session, enrollment):
            return _view(request, session, message, CANNOT_RESUME)
        enrollment_changes.resume(session, enrollment)
    elif action == "stop-all":
        suppression.unsubscribe_by_message(session, message.id, SuppressionSource.PREFERENCES)
    else:
        patient = session.get(Patient, enrollment.patient_id)
        assert patient is not None
        suppression.resubscribe(session, message.clinic_id, patient, utcnow(), message.id)
    session.commit()
    return _view(request, session, message, DONE[action])
