"""What the patient pages share: the templates, and the message a link's token names."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from dripcare.config import get_settings
from dripcare.content.phone_links import tel_links
from dripcare.models import Message
from dripcare.people.links import message_for_token
from dripcare.web import errors
from dripcare.web.deps import SessionDep
from dripcare.web.middleware import HeadersUnder

pages = Jinja2Templates(directory=Path(__file__).parent.parent / "templates")
pages.env.filters["tel_links"] = tel_links  # the after-hours route's numbers are tap-to-call
LINK_PREFIXES = ("/u", "/p", "/c", "/ack")  # unsubscribe, preferences, check-in, staff ack
PATIENT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# The admin's protections, stricter where a patient page allows it; no-referrer because the
# page's URL carries the link's token, which must not leak to anything the page links to.
PATIENT_HEADERS = {
    "Content-Security-Policy": PATIENT_CSP,
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


class LinkNotFound(Exception):
    """A forged, damaged, revoked or stale token: a friendly 404 page, never a trace."""


def _token_message(token: str, session: SessionDep) -> Message:
    """Forged, altered, revoked or naming no message: all the same 404, to reveal nothing."""
    message = message_for_token(session, get_settings(), token)
    if message is None:
        raise LinkNotFound
    return message


TokenMessage = Annotated[Message, Depends(_token_message)]


def not_found_page(request: Request) -> HTMLResponse:
    return pages.TemplateResponse(request, "not_found.html", {"clinic_name": ""}, status_code=404)


def install(app: FastAPI) -> None:
    @app.exception_handler(LinkNotFound)
    async def _not_found(request: Request, exc: LinkNotFound) -> HTMLResponse:
        return not_found_page(request)

    errors.html_not_found(app, LINK_PREFIXES, not_found_page)
    for prefix in LINK_PREFIXES:
        app.add_middleware(HeadersUnder, prefix=f"{prefix}/", headers=PATIENT_HEADERS)
