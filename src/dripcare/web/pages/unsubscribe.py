"""One-click unsubscribe (RFC 8058) and its confirmation page. No login, no API key.

Mailbox providers POST `List-Unsubscribe=One-Click` to the URL in the List-Unsubscribe header
and expect a 2xx at once; a person who opens the same URL in a browser gets a page with one
button that makes the same POST with `confirm=yes` added. The two differ in one case only: a
one-click POST replayed after the patient resubscribed changes nothing (suppression.one_click),
while the button always unsubscribes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from dripcare.content.phone_links import phone_uri
from dripcare.models import Clinic, Message, SuppressionSource
from dripcare.outbox import suppression
from dripcare.web.deps import SessionDep
from dripcare.web.pages.common import TokenMessage, pages

router = APIRouter(include_in_schema=False)
REPLAYED = (
    "You chose to get emails again after this link was last used, "
    "so nothing has changed. To stop them after all, use the button."
)


def _context(session: SessionDep, token: str, message: Message) -> dict[str, str]:
    clinic = session.get(Clinic, message.clinic_id)
    assert clinic is not None
    return {
        "clinic_name": clinic.name,
        "clinic_phone": clinic.phone,
        "clinic_phone_uri": phone_uri(clinic.phone),
        "preferences_url": f"/p/{token}",
    }


def _confirm_page(
    request: Request, token: str, session: SessionDep, message: Message, notice: str = ""
) -> HTMLResponse:
    context = _context(session, token, message) | {"notice": notice}
    return pages.TemplateResponse(request, "unsubscribe.html", context)


@router.get("/u/{token}", response_class=HTMLResponse)
def confirm(
    request: Request, token: str, message: TokenMessage, session: SessionDep
) -> HTMLResponse:
    return _confirm_page(request, token, session, message)


@router.post("/u/{token}", response_class=HTMLResponse)
def one_click(
    request: Request,
    token: str,
    message: TokenMessage,
    session: SessionDep,
    confirm: Annotated[str | None, Form()] = None,
) -> HTMLResponse:
    """Unsubscribes at once, whatever else the body holds: the token names the recipient.

    A replayed one-click POST still gets a 200 (RFC 8058 senders must answer 2xx): the page
    with the button, for the rare person behind it.
    """
    if confirm:
        done = suppression.unsubscribe_by_message(session, message.id, SuppressionSource.WEB)
    else:
        done = suppression.one_click(session, message.id)
    session.commit()
    if done is not None and done.replay:
        return _confirm_page(request, token, session, message, REPLAYED)
    return pages.TemplateResponse(request, "unsubscribed.html", _context(session, token, message))
