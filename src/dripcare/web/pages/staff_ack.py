"""The page behind the acknowledgement link in a red-flag alert email (staff_links.py).

Opening it (GET) only asks to confirm: mail scanners open every link of an email, and an
alert acknowledged by a scanner would silence the escalation nobody has seen.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from dripcare.config import get_settings
from dripcare.models import utcnow
from dripcare.outbox import red_flags
from dripcare.people import staff_links
from dripcare.web.deps import SessionDep
from dripcare.web.pages.common import pages

router = APIRouter(include_in_schema=False)


def _page(request: Request, state: str, status_code: int = 200, **extra: object) -> HTMLResponse:
    context = {"clinic_name": "", "state": state, **extra}
    return pages.TemplateResponse(request, "staff_ack.html", context, status_code=status_code)


@router.get("/ack/{token}", response_class=HTMLResponse)
def confirm_page(request: Request, token: str, session: SessionDep) -> HTMLResponse:
    link = staff_links.read(session, get_settings(), token)
    if link is None:
        return _page(request, "unusable", 404)
    check_in = link.check_in
    minutes = int((utcnow() - check_in.created_at).total_seconds() // 60)
    return _page(
        request,
        "confirm",
        level=check_in.level.value,
        since=f"{minutes} minutes ago",
        admin_url=f"/admin/red-flags/{check_in.id}",
    )


@router.post("/ack/{token}", response_class=HTMLResponse)
def acknowledge(request: Request, token: str, session: SessionDep) -> HTMLResponse:
    link = staff_links.read(session, get_settings(), token)
    if link is None:
        return _page(request, "unusable", 404)
    check_in = link.check_in
    staff_links.use(check_in)
    if red_flags.acknowledge(session, check_in, link.actor):
        message = f"Thank you: the red flag is acknowledged as yours ({link.recipient})."
    else:
        message = f"{check_in.acknowledged_by} had already acknowledged it."
    session.commit()
    return _page(request, "done", message=message, admin_url=f"/admin/red-flags/{check_in.id}")
