"""What every admin page depends on: the signed-in user, the clinic administered, and CSRF.

`AdminDep` answers a page for a signed-in user (a request without a live session is sent to
the sign-in page with a 303). `CsrfFormDep` is the same, after checking the form's
`csrf_token` (or an `X-CSRF-Token` header): every POST handler takes it instead of
`AdminDep`. Pages render with `views.render(request, admin, "admin/x.html", {...})` and
raise `AdminNotFound` for anything missing or another clinic's (a 404 page).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Form, Header, Request
from sqlalchemy import select

from dripcare.config import Settings, get_settings
from dripcare.models import AdminSession, AdminUser, Clinic, utcnow
from dripcare.people import admin_sessions
from dripcare.people.admins import clinics_for
from dripcare.web.deps import SessionDep

SESSION_COOKIE = "dripcare_admin"
PRE_SESSION_COOKIE = "dripcare_csrf"  # binds the sign-in form's CSRF token before a session
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}


class NotSignedIn(Exception):
    """No live session: answered with a 303 to the sign-in page."""


class CsrfFailed(Exception):
    """A POST without the form's token: answered with a 403 page that says what to do."""


class AdminNotFound(Exception):
    """Not there, or another clinic's: answered with a 404 page that shows nothing of it."""


class PlatformOnly(Exception):
    """A clinic admin asked for what only a platform admin may do: a 403 page saying so."""


class NoClinic(Exception):
    """A platform admin signed in before any clinic exists."""


@dataclass(frozen=True)
class AdminContext:
    user: AdminUser
    clinic_id: int
    csrf_token: str
    clinic: Clinic  # the nav names it on every page
    login: AdminSession  # the signed-in browser (a platform admin's clinic pick lives there)
    choices: list[tuple[int, str]]  # (id, name) of the clinics a platform admin may pick


def cookie_secure(settings: Settings, request: Request) -> bool:
    """Secure cookies unless configured off, or on plain http to this machine (`make run`)."""
    if settings.cookie_secure is not None:
        return settings.cookie_secure
    return not (request.url.scheme == "http" and request.url.hostname in LOOPBACK_HOSTS)


def current_admin(request: Request, session: SessionDep) -> AdminContext:
    token = request.cookies.get(SESSION_COOKIE, "")
    row = admin_sessions.find(session, token, utcnow())
    if row is None:
        raise NotSignedIn
    clinic = _administered_clinic(session, row)
    request.state.clinic_id = clinic.id
    csrf = admin_sessions.csrf_token(get_settings(), "session", token)
    choices = []
    if row.user.is_platform_admin:
        choices = [(c.id, c.name) for c in clinics_for(session, row.user)]
    return AdminContext(row.user, clinic.id, csrf, clinic, row, choices)


def _administered_clinic(session: SessionDep, row: AdminSession) -> Clinic:
    """A clinic admin's own clinic; a platform admin's last pick, else the first clinic."""
    user = row.user
    if not user.is_platform_admin:
        clinic = session.get(Clinic, user.clinic_id) if user.clinic_id is not None else None
        if clinic is None:
            raise NotSignedIn
        return clinic
    clinic = session.get(Clinic, row.clinic_id) if row.clinic_id is not None else None
    if clinic is None:
        clinic = session.scalars(select(Clinic).order_by(Clinic.id).limit(1)).first()
    if clinic is None:
        raise NoClinic
    return clinic


AdminDep = Annotated[AdminContext, Depends(current_admin)]


def verify_csrf(
    request: Request,
    admin: AdminDep,
    csrf_token: Annotated[str, Form()] = "",
    x_csrf_token: Annotated[str, Header()] = "",
) -> AdminContext:
    """The form's `csrf_token` field, or an `X-CSRF-Token` header (for htmx or fetch)."""
    token = request.cookies.get(SESSION_COOKIE, "")
    presented = csrf_token or x_csrf_token
    if not admin_sessions.csrf_valid(get_settings(), "session", token, presented):
        raise CsrfFailed
    return admin


CsrfFormDep = Annotated[AdminContext, Depends(verify_csrf)]
