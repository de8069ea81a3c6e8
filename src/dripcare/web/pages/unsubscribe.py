"""One-click unsubscribe (RFC 8058) and its confirmation page. No login, no API key.

Mailbox providers POST `List-Unsubscribe=One-Click` to the URL in the List-Unsubscribe header
and expect a 2xx at once; a person who opens the same URL in a browser gets a page with one
button that makes the same POST.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from dripcare.models import Clinic, Message
from dripcare.suppression import unsubscribe_by_message
from dripcare.web.deps import SessionDep
from dripcare.web.pages.common import TokenMessage, pages

router = APIRouter(include_in_schema=False)


def _clinic(session: SessionDep, message: Message) -> dict[str, str]:
    clinic = session.get(Clinic, message.clinic_id)
    assert clinic is not None
    return {"clinic_name": clinic.name, "clinic_phone": clinic.phone}


@router.get("/u/{token}", response_class=HTMLResponse)
def confirm(
    request: Request, token: str, message: TokenMessage, session: SessionDep
) -> HTMLResponse:
    context = _clinic(session, message) | {"preferences_url": f"/p/{token}"}
    return pages.TemplateResponse(request, "unsubscribe.html", context)


@router.post("/u/{token}", response_class=HTMLResponse)
def one_click(request: Request, message: TokenMessage, session: SessionDep) -> HTMLResponse:
    """Unsubscribes at once, whatever the body: the token alone names the recipient."""
    source = "web" if "text/html" in request.headers.get("accept", "") else "one-click"
    unsubscribe_by_message(session, message.id, source)
    session.commit()
    return pages.TemplateResponse(request, "unsubscribed.html", _clinic(session, message))
