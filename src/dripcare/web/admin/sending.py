"""How the clinic's email is sent: its quiet hours, sending domains and their DNS records, its
DKIM keys, and its own SMTP server or the platform's (the web side of `dripcare clinic
quiet-hours|domains|dkim|transport|check-domain`, calling the same functions).

Clinic staff set their quiet hours and check their DNS; what decides where and as whom the
clinic sends (domains, DKIM keys, the SMTP server) is the platform admin's: a clinic admin
posting those gets a 403. The SMTP URL is write-only: its password is never shown again.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from dripcare.config import get_settings
from dripcare.errors import UserError
from dripcare.models import Clinic
from dripcare.people import audit
from dripcare.people.clinics import set_quiet_hours
from dripcare.sending import clinic_transports, dkim_keys, domain_checks, sending_domains
from dripcare.web.admin.deps import AdminContext, AdminDep, CsrfFormDep, PlatformOnly
from dripcare.web.admin.views import render
from dripcare.web.deps import SessionDep

router = APIRouter()
Text = Annotated[str, Form(max_length=1000)]
PAGE = "/admin/sending"
DONE = {
    "quiet-hours": "Quiet hours saved. Emails are held during them from now on.",
    "domain-assigned": "Sending domain added.",
    "domain-removed": "Sending domain removed.",
    "dkim": "DKIM key made. Publish its TXT record below before the clinic sends again: "
    "emails are signed with it from now on.",
    "transport-set": "The clinic now sends through its own SMTP server.",
    "transport-cleared": "The clinic now sends through the platform's server.",
}


def platform_admin(admin: CsrfFormDep) -> AdminContext:
    if not admin.user.is_platform_admin:
        raise PlatformOnly
    return admin


PlatformDep = Annotated[AdminContext, Depends(platform_admin)]


def _clinic(session: Session, admin: AdminContext) -> Clinic:
    clinic = session.get(Clinic, admin.clinic_id)
    assert clinic is not None  # AdminDep loaded it in this request
    return clinic


def _server(session: Session, admin: AdminContext) -> tuple[str | None, str]:
    """(shown, problem): the host to clinic staff, the password-less URL to a platform admin."""
    settings = get_settings()
    try:
        if admin.user.is_platform_admin:
            shown = clinic_transports.describe(session, settings, admin.clinic)
            own = clinic_transports.own_server(session, settings, admin.clinic) is not None
            return (shown if own else None), ""
        return clinic_transports.own_server(session, settings, admin.clinic), ""
    except UserError as exc:
        return "the clinic's own server", str(exc)


def _page(
    request: Request,
    admin: AdminContext,
    session: Session,
    *,
    problems: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
    done: str = "",
    checks: dict[str, list[domain_checks.Finding]] | None = None,
) -> HTMLResponse:
    settings = get_settings()
    server, server_problem = _server(session, admin)
    keys = dkim_keys.keys_of(session, admin.clinic_id)
    context: dict[str, Any] = {
        "quiet_hours": admin.clinic.quiet_hours,
        "default_quiet_hours": settings.quiet_hours,
        "domains": sending_domains.domains_of(session, admin.clinic_id),
        "sender_domain": dkim_keys.sender_domain(admin.clinic),
        "keys": [dkim_keys.record_fields(key) | {"created_at": key.created_at} for key in keys],
        "server": server,
        "server_problem": server_problem,
        "checks": checks,
        "problems": problems or {},
        "typed": typed or {},
        "done": DONE.get(done, ""),
    }
    status = 422 if problems else 200
    return render(request, admin, "admin/sending.html", context, status_code=status)


def _saved(session: Session, done: str) -> RedirectResponse:
    session.commit()
    return RedirectResponse(f"{PAGE}?done={done}", status_code=303)


@router.get("/sending", response_class=HTMLResponse)
def sending_page(
    request: Request, admin: AdminDep, session: SessionDep, done: str = ""
) -> Response:
    return _page(request, admin, session, done=done)


@router.post("/sending/quiet-hours", response_class=HTMLResponse)
def save_quiet_hours(
    request: Request, admin: CsrfFormDep, session: SessionDep, quiet_hours: Text = ""
) -> Response:
    """Empty (or "default") goes back to the platform's quiet hours."""
    window = quiet_hours.strip() or "default"
    clinic = _clinic(session, admin)
    try:
        set_quiet_hours(clinic, window)
    except UserError as exc:
        session.rollback()
        problems = {"quiet_hours": str(exc)}
        return _page(request, admin, session, problems=problems, typed={"quiet_hours": window})
    detail = clinic.quiet_hours or f"default ({get_settings().quiet_hours})"
    _audit(session, admin, audit.Action.QUIET_HOURS, detail)
    return _saved(session, "quiet-hours")


@router.post("/sending/check-dns", response_class=HTMLResponse)
def check_dns(request: Request, admin: CsrfFormDep, session: SessionDep) -> Response:
    """Reads DNS only, changes nothing: any admin of the clinic may run it."""
    resolver = domain_checks.resolver_for(get_settings().dns_nameserver)
    checks = domain_checks.check_clinic(session, resolver, admin.clinic_id)
    return _page(request, admin, session, checks=checks)


@router.post("/sending/domains", response_class=HTMLResponse)
def assign_domain(
    request: Request, admin: PlatformDep, session: SessionDep, domain: Text = ""
) -> Response:
    try:
        added = sending_domains.assign(session, _clinic(session, admin), domain)
    except UserError as exc:
        session.rollback()
        problems = {"domain": str(exc)}
        return _page(request, admin, session, problems=problems, typed={"domain": domain})
    _audit(session, admin, audit.Action.DOMAIN_ASSIGN, added)
    return _saved(session, "domain-assigned")


@router.post("/sending/domains/remove", response_class=HTMLResponse)
def remove_domain(
    request: Request, admin: PlatformDep, session: SessionDep, domain: Text = ""
) -> Response:
    try:
        removed = sending_domains.revoke(session, _clinic(session, admin), domain)
    except UserError as exc:
        session.rollback()
        return _page(request, admin, session, problems={"remove": str(exc)})
    _audit(session, admin, audit.Action.DOMAIN_REMOVE, removed)
    return _saved(session, "domain-removed")


@router.post("/sending/dkim", response_class=HTMLResponse)
def make_dkim_key(
    request: Request,
    admin: PlatformDep,
    session: SessionDep,
    domain: Text = "",
    selector: Text = "",
) -> Response:
    try:
        key = dkim_keys.generate(
            session, get_settings(), _clinic(session, admin), domain.strip(), selector.strip()
        )
    except UserError as exc:
        session.rollback()
        typed = {"selector": selector, "dkim_domain": domain}
        return _page(request, admin, session, problems={"dkim": str(exc)}, typed=typed)
    _audit(session, admin, audit.Action.DKIM_GENERATE, dkim_keys.dns_name(key))
    return _saved(session, "dkim")


@router.post("/sending/transport", response_class=HTMLResponse)
def set_transport(
    request: Request, admin: PlatformDep, session: SessionDep, smtp_url: Text = ""
) -> Response:
    """The URL is stored sealed and never put back in the form, not even after an error."""
    clinic = _clinic(session, admin)
    try:
        if not smtp_url.strip():
            raise UserError("give the clinic's SMTP URL, or use “Send through the platform's”")
        clinic_transports.set_smtp_url(session, get_settings(), clinic, smtp_url)
    except UserError as exc:
        session.rollback()
        return _page(request, admin, session, problems={"smtp_url": _without_url(exc, smtp_url)})
    shown = clinic_transports.describe(session, get_settings(), clinic)
    _audit(session, admin, audit.Action.TRANSPORT_SET, shown)
    return _saved(session, "transport-set")


@router.post("/sending/transport/clear", response_class=HTMLResponse)
def clear_transport(admin: PlatformDep, session: SessionDep) -> Response:
    if clinic_transports.clear_smtp_url(session, _clinic(session, admin)):
        _audit(session, admin, audit.Action.TRANSPORT_CLEAR, "the platform's server")
    return _saved(session, "transport-cleared")


def _without_url(exc: UserError, url: str) -> str:
    """The error with the typed URL (maybe with its password) taken out."""
    message = str(exc)
    for shown in {url, url.strip(), repr(url), repr(url.strip())}:
        if shown.strip():
            message = message.replace(shown, "the URL")
    return (
        f"{message}. Give it as smtp://user:password@host:587?starttls=true, "
        "smtps://user:password@host:465, or env:NAME"
    )


def _audit(session: Session, admin: AdminContext, action: audit.Action, detail: str) -> None:
    actor = audit.Actor.admin(admin.user)
    target = ("clinic", admin.clinic_id)
    audit.record(session, actor, action, clinic_id=admin.clinic_id, target=target, detail=detail)
