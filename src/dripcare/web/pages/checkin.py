"""The check-in pages behind the "How is your skin today?" buttons. They work without
JavaScript; opening a link records nothing (mail scanners open links), only a button does."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from dripcare.content.email_context import clinic_context
from dripcare.models import CheckIn, CheckInLevel, Clinic, Message
from dripcare.outbox import checkins
from dripcare.people.emergency_numbers import service_for
from dripcare.web.deps import SessionDep
from dripcare.web.pages.common import LinkNotFound, TokenMessage, pages
from dripcare.web.pagination import Id

router = APIRouter(include_in_schema=False)


def _clinic(session: SessionDep, message: Message) -> Clinic:
    clinic = session.get(Clinic, message.clinic_id)
    assert clinic is not None
    return clinic


def _context(session: SessionDep, message: Message, **extra: Any) -> dict[str, Any]:
    clinic = _clinic(session, message)
    info = clinic_context(clinic)
    return {
        "clinic_name": clinic.name,
        "clinic_phone": clinic.phone,
        "clinic_phone_uri": info["phone_uri"],
        "after_hours": info["after_hours"],
        "emergency_number": clinic.emergency_number,
        "emergency_line": checkins.clinical_of(session, message).emergency_line.format(
            number=clinic.emergency_number
        ),
        "emergency_advice": service.advice if (service := service_for(clinic.country)) else "",
        **extra,
    }


@router.get("/c/{token}/ok", response_class=HTMLResponse)
def fine_page(
    request: Request, token: str, session: SessionDep, message: TokenMessage
) -> HTMLResponse:
    return pages.TemplateResponse(
        request, "checkin_ok.html", _context(session, message, worried_url=f"/c/{token}/worried")
    )


@router.post("/c/{token}/ok")
def fine(token: str, session: SessionDep, message: TokenMessage) -> RedirectResponse:
    return _recorded(token, session, checkins.record(session, message, worried=False, codes=[]))


@router.get("/c/{token}/worried", response_class=HTMLResponse)
def worried_page(
    request: Request, token: str, session: SessionDep, message: TokenMessage
) -> HTMLResponse:
    return pages.TemplateResponse(
        request,
        "checkin_worried.html",
        _context(session, message, flags=checkins.asked_flags(session, message)),
    )


@router.post("/c/{token}/worried")
def worried(
    token: str,
    session: SessionDep,
    message: TokenMessage,
    symptom: Annotated[list[str] | None, Form()] = None,
) -> RedirectResponse:
    known = {flag.code for flag in checkins.asked_flags(session, message)}
    codes = [code for code in symptom or [] if code in known]
    return _recorded(token, session, checkins.record(session, message, worried=True, codes=codes))


def _recorded(token: str, session: SessionDep, check_in: CheckIn) -> RedirectResponse:
    """Commit, alert, then redirect (303): reloading the answer page records nothing again."""
    session.commit()
    if check_in.level in (CheckInLevel.URGENT, CheckInLevel.EMERGENCY):
        _alert_now()
    return RedirectResponse(f"/c/{token}/answer/{check_in.id}", status_code=303)


@router.get("/c/{token}/answer/{check_in_id}", response_class=HTMLResponse)
def answer(
    request: Request, token: str, check_in_id: Id, session: SessionDep, message: TokenMessage
) -> HTMLResponse:
    check_in = session.get(CheckIn, check_in_id)
    if check_in is None or check_in.message_pk != message.id:
        raise LinkNotFound
    days = checkins.days_since_treatment(session, message)
    expected = checkins.clinical_of(session, message).course_on(days)
    return pages.TemplateResponse(
        request,
        "checkin_result.html",
        _context(
            session,
            message,
            level=check_in.level.value,
            instruction=checkins.shown_to_patient(check_in.level, _clinic(session, message)),
            expected=expected,
            worried_url=f"/c/{token}/worried",
        ),
    )


def _alert_now() -> None:
    """Ask a worker to deliver at once; if the broker is down, the beat's next tick does."""
    try:
        from dripcare.tasks import deliver_alerts

        deliver_alerts.apply_async(retry=False)
    except Exception:  # the alert row is committed; delivery only waits for the next tick
        pass
