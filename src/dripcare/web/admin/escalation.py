"""How the clinic's unacknowledged red flags escalate: the acknowledgement window, opening
hours, escalation list, webhook and after-hours contact (the web side of `dripcare clinic
red-flags`, validated by the same escalation.set_escalation). Every change is audited."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from dripcare.errors import UserError
from dripcare.models import Clinic
from dripcare.people import audit
from dripcare.sending import escalation
from dripcare.web.admin.deps import AdminContext, AdminDep, CsrfFormDep
from dripcare.web.admin.views import render
from dripcare.web.deps import SessionDep

router = APIRouter()
Text = Annotated[str, Form(max_length=2000)]
PAGE = "/admin/escalation"


def _page(
    request: Request,
    admin: AdminContext,
    typed: dict[str, str],
    *,
    problem: str = "",
    saved: bool = False,
) -> HTMLResponse:
    context = {"typed": typed, "problem": problem, "saved": saved}
    status = 422 if problem else 200
    return render(request, admin, "admin/escalation.html", context, status_code=status)


def _shown(wanted: escalation.EscalationSettings) -> dict[str, str]:
    """The settings as the form's fields hold them."""
    return {
        "ack_minutes": str(wanted.ack_minutes),
        "open_hours": wanted.open_hours,
        "escalation_emails": "\n".join(wanted.escalation_emails),
        "escalation_webhook": wanted.escalation_webhook,
        "after_hours_email": wanted.after_hours_email,
    }


@router.get("/escalation", response_class=HTMLResponse)
def escalation_page(request: Request, admin: AdminDep, saved: bool = False) -> HTMLResponse:
    return _page(request, admin, _shown(escalation.settings_of(admin.clinic)), saved=saved)


@router.post("/escalation", response_class=HTMLResponse)
def save_escalation(
    request: Request,
    admin: CsrfFormDep,
    session: SessionDep,
    *,
    ack_minutes: Text = "",
    open_hours: Text = "",
    escalation_emails: Text = "",
    escalation_webhook: Text = "",
    after_hours_email: Text = "",
) -> Response:
    """One address per line (or separated by commas) in the escalation list."""
    typed = {
        "ack_minutes": ack_minutes,
        "open_hours": open_hours,
        "escalation_emails": escalation_emails,
        "escalation_webhook": escalation_webhook,
        "after_hours_email": after_hours_email,
    }
    clinic = _clinic(session, admin)
    try:
        wanted = escalation.EscalationSettings(
            ack_minutes=_minutes(ack_minutes),
            open_hours=open_hours.strip(),
            escalation_emails=tuple(filter(None, re.split(r"[\s,;]+", escalation_emails))),
            escalation_webhook=escalation_webhook.strip(),
            after_hours_email=after_hours_email.strip(),
        )
        escalation.set_escalation(clinic, wanted)
    except UserError as exc:
        session.rollback()
        return _page(request, admin, typed, problem=str(exc))
    stored = escalation.settings_of(clinic)
    detail = f"ack {stored.ack_minutes} min; hours {stored.open_hours or 'always'}"
    actor = audit.Actor.admin(admin.user)
    target = ("clinic", admin.clinic_id)
    audit.record(
        session,
        actor,
        audit.Action.ESCALATION_SET,
        clinic_id=admin.clinic_id,
        target=target,
        detail=detail,
    )
    session.commit()
    return RedirectResponse(f"{PAGE}?saved=true", status_code=303)


def _minutes(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise UserError(
            f"the acknowledgement window must be a whole number of minutes, got {text.strip()!r}"
        ) from None


def _clinic(session: Session, admin: AdminContext) -> Clinic:
    clinic = session.get(Clinic, admin.clinic_id)
    assert clinic is not None  # AdminDep loaded it in this request
    return clinic
