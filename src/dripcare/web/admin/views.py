"""What admin pages share: the templates, one way to render a page, and the error pages.

Every admin response is `no-store` (it shows patients' data) and carries a strict Content
Security Policy: scripts and styles only from this server, no framing by other sites, forms
posting only here.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import object_session

from dripcare.content.phone_links import tel_links
from dripcare.models import CheckIn
from dripcare.outbox.checkins import flag_texts
from dripcare.web import errors
from dripcare.web.admin.deps import (
    AdminContext,
    AdminNotFound,
    CsrfFailed,
    NoClinic,
    NotSignedIn,
    PlatformOnly,
)
from dripcare.web.middleware import HeadersUnder

WEB = Path(__file__).resolve().parent.parent
templates = Jinja2Templates(directory=WEB / "templates")


def local_time(moment: datetime | None, zone: str) -> str:
    """A UTC time as the person in `zone` reads it: 'Wed 25 Nov 2026, 09:00 EST'."""
    if moment is None:
        return ""
    local = moment.astimezone(ZoneInfo(zone))
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M} {local.tzname()}"


templates.env.filters["local_time"] = local_time
templates.env.filters["tel_links"] = tel_links  # a patient's phone is tap-to-call


def answer_texts(check_in: CheckIn) -> list[str]:
    """The words a patient ticked, for a page template (which has no session of its own)."""
    session = object_session(check_in)
    assert session is not None
    return flag_texts(session, check_in)


templates.env.globals["answer_texts"] = answer_texts
ADMIN_CSP = (
    "default-src 'self'; img-src 'self' https: data:; style-src 'self' 'unsafe-inline'; "
    "frame-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": ADMIN_CSP,
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
}


def render(
    request: Request,
    admin: AdminContext | None,
    name: str,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """An admin page; `admin` fills the nav (None on the sign-in page)."""
    shared: dict[str, Any] = {"admin": admin}
    return templates.TemplateResponse(
        request, name, shared | (context or {}), status_code=status_code
    )


def sign_in_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        target = "/admin"
    return RedirectResponse(f"/admin/sign-in?next={quote(target)}", status_code=303)


def safe_next(target: str | None) -> str:
    """Only a path inside the admin: never an open redirect to another site."""
    if target and target.startswith("/admin") and "//" not in target and "\\" not in target:
        return target
    return "/admin"


def not_found_page(request: Request) -> HTMLResponse:
    """The same page for a missing object, another clinic's, and a URL that names nothing."""
    return render(request, None, "admin/problem.html", _NOT_FOUND, status_code=404)


def install(app: FastAPI) -> None:
    app.mount("/admin/static", StaticFiles(directory=WEB / "static" / "admin"), name="admin-static")

    app.add_middleware(HeadersUnder, prefix="/admin", headers=SECURITY_HEADERS)

    @app.exception_handler(NotSignedIn)
    async def _not_signed_in(request: Request, exc: NotSignedIn) -> RedirectResponse:
        return sign_in_redirect(request)

    @app.exception_handler(CsrfFailed)
    async def _csrf(request: Request, exc: CsrfFailed) -> HTMLResponse:
        return render(request, None, "admin/problem.html", _FORM_EXPIRED, status_code=403)

    @app.exception_handler(PlatformOnly)
    async def _platform_only(request: Request, exc: PlatformOnly) -> HTMLResponse:
        return render(request, None, "admin/problem.html", _PLATFORM_ONLY, status_code=403)

    @app.exception_handler(AdminNotFound)
    async def _not_found(request: Request, exc: AdminNotFound) -> HTMLResponse:
        return not_found_page(request)

    errors.html_not_found(app, ("/admin",), not_found_page)

    @app.exception_handler(NoClinic)
    async def _no_clinic(request: Request, exc: NoClinic) -> HTMLResponse:
        return render(request, None, "admin/problem.html", _NO_CLINIC, status_code=409)


_FORM_EXPIRED = {
    "heading": "This form has expired",
    "detail": "Go back, reload the page and send the form again. If it keeps happening, "
    "sign in again.",
}
_PLATFORM_ONLY = {
    "heading": "Only a platform administrator can do this",
    "detail": "Ask your platform administrator to make this change for your clinic.",
}
_NOT_FOUND = {
    "heading": "Not found",
    "detail": "There is nothing at this address for your clinic. Use the menu to find "
    "what you were looking for.",
}
_NO_CLINIC = {
    "heading": "No clinic yet",
    "detail": "Create a clinic first: dripcare clinic create --name … --sender … --phone … "
    "--timezone …, then reload this page.",
}


def step_when(step: Any) -> str:
    """When a step goes, as staff say it: "14 days before at 10:00", "day 1 at 09:00"."""
    if getattr(step, "late_booking", False):
        return "at enrollment, if a stop-now email was missed"
    days, hours, minutes = step.offset_days, step.offset_hours, step.offset_minutes
    if min(days, hours, minutes) < 0:
        parts = [f"{-days} day{'s' if days != -1 else ''}"] if days else []
        parts += [f"{-hours} h"] if hours else []
        parts += [f"{-minutes} min"] if minutes else []
        text = " ".join(parts) + " before"
    else:
        text = (
            f"day {days}"
            + (f" +{hours} h" if hours else "")
            + (f" +{minutes} min" if minutes else "")
        )
    return text + (f" at {step.send_time}" if step.send_time else "")


templates.env.filters["step_when"] = step_when
