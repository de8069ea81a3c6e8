"""The check-in pages behind the "How is your skin today?" buttons. They work without
JavaScript; opening a link records nothing (mail scanners open links), only a button does."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from dripcare import checkins
from dripcare.email_context import clinic_context
from dripcare.models import CheckIn, Clinic, Message
from dripcare.web.deps import SessionDep
from dripcare.web.pages.common import TokenMessage, pages

router = APIRouter(include_in_schema=False)


def _context(session: SessionDep, message: Message, **extra: Any) -> dict[str, Any]:
    clinic = session.get(Clinic, message.clinic_id)
    assert clinic is not None
    info = clinic_context(clinic)
    return {
        "clinic_name": clinic.name,
        "clinic_phone": clinic.phone,
        "clinic_phone_uri": info["phone_uri"],
        "after_hours": clinic.after_hours,
        "emergency_number": clinic.emergency_number,
        **extra,
    }


@router.get("/c/{token}/ok", response_class=HTMLResponse)
def fine_page(
    request: Request, token: str, session: SessionDep, message: TokenMessage
) -> HTMLResponse:
    return pages.TemplateResponse(
        request, "checkin_ok.html", _context(session, message, worried_url=f"/c/{token}/worried")
    )


@router.post("/c/{token}/ok", response_class=HTMLResponse)
def fine(request: Request, token: str, session: SessionDep, message: TokenMessage) -> HTMLResponse:
    return _answer(
        request, session, message, checkins.record(session, message, worried=False, codes=[])
    )


@router.get("/c/{token}/worried", response_class=HTMLResponse)
def worried_page(
    request: Request, token: str, session: SessionDep, message: TokenMessage
) -> HTMLResponse:
    return pages.TemplateResponse(
        request, "checkin_worried.html", _context(session, message, flags=checkins.RED_FLAGS)
    )


@router.post("/c/{token}/worried", response_class=HTMLResponse)
def worried(
    request: Request,
    token: str,
    session: SessionDep,
    message: TokenMessage,
    symptom: Annotated[list[str] | None, Form()] = None,
) -> HTMLResponse:
    known = {flag.code for flag in checkins.RED_FLAGS}
    codes = [code for code in symptom or [] if code in known]
    return _answer(
        request, session, message, checkins.record(session, message, worried=True, codes=codes)
    )


def _answer(
    request: Request, session: SessionDep, message: Message, check_in: CheckIn
) -> HTMLResponse:
    session.commit()
    if check_in.level in (checkins.CheckInLevel.URGENT, checkins.CheckInLevel.EMERGENCY):
        _alert_now()
    expected = checkins.expected_course(checkins.days_since_treatment(session, message))
    return pages.TemplateResponse(
        request,
        "checkin_result.html",
        _context(session, message, level=check_in.level.value, expected=expected),
    )


def _alert_now() -> None:
    """Ask a worker to deliver at once; if the broker is down, the beat's next tick does."""
    try:
        from dripcare.tasks import deliver_alerts

        deliver_alerts.apply_async(retry=False)
    except Exception:  # the alert row is committed; delivery only waits for the next tick
        pass
