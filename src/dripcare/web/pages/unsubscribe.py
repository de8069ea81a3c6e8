"""One-click unsubscribe (RFC 8058) and its confirmation page. No login, no API key.

Mailbox providers POST `List-Unsubscribe=One-Click` to the URL in the List-Unsubscribe header
and expect a 2xx at once; a person who opens the same URL in a browser gets a page with one
button that makes the same POST.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from dripcare.config import get_settings
from dripcare.links import read_token
from dripcare.models import Clinic, Message
from dripcare.suppression import unsubscribe_by_message
from dripcare.web.deps import SessionDep

router = APIRouter(include_in_schema=False)
pages = Jinja2Templates(directory=Path(__file__).parent.parent / "templates")


def message_for(session: SessionDep, token: str) -> Message | None:
    pk = read_token(get_settings(), token)
    return session.get(Message, pk) if pk is not None else None


def not_found(request: Request) -> HTMLResponse:
    return pages.TemplateResponse(request, "not_found.html", {"clinic_name": ""}, status_code=404)


def _clinic(session: SessionDep, message: Message) -> dict[str, str]:
    clinic = session.get(Clinic, message.clinic_id)
    assert clinic is not None
    return {"clinic_name": clinic.name, "clinic_phone": clinic.phone}


@router.get("/u/{token}", response_class=HTMLResponse)
def confirm(request: Request, token: str, session: SessionDep) -> HTMLResponse:
    message = message_for(session, token)
    if message is None:
        return not_found(request)
    context = _clinic(session, message) | {"preferences_url": f"/p/{token}"}
    return pages.TemplateResponse(request, "unsubscribe.html", context)


@router.post("/u/{token}", response_class=HTMLResponse)
def one_click(request: Request, token: str, session: SessionDep) -> HTMLResponse:
    """Unsubscribes at once, whatever the body: the token alone names the recipient."""
    message = message_for(session, token)
    if message is None:
        return not_found(request)
    source = "web" if "text/html" in request.headers.get("accept", "") else "one-click"
    unsubscribe_by_message(session, message.id, source)
    session.commit()
    return pages.TemplateResponse(request, "unsubscribed.html", _clinic(session, message))
