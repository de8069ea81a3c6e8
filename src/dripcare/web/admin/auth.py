"""Sign in and sign out. The sign-in form has its own CSRF token, bound to a random cookie,
because there is no session yet to bind it to."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from dripcare.config import get_settings
from dripcare.models import utcnow
from dripcare.people import admin_sessions
from dripcare.people.admins import SignIn, TooManyAttempts, authenticate
from dripcare.web.admin.deps import (
    PRE_SESSION_COOKIE,
    SESSION_COOKIE,
    CsrfFailed,
    CsrfFormDep,
    cookie_secure,
)
from dripcare.web.admin.views import render, safe_next
from dripcare.web.deps import SessionDep
from dripcare.web.ratelimit import client_address

router = APIRouter()
WRONG = "That email and password do not match an account. Check both and try again."


def _set_cookie(request: Request, response: Response, name: str, value: str, **extra: int) -> None:
    response.set_cookie(
        name,
        value,
        httponly=True,
        samesite="lax",
        secure=cookie_secure(get_settings(), request),
        path="/admin",
        **extra,  # type: ignore[arg-type]
    )


def _form(
    request: Request, next_url: str, email: str = "", error: str = "", status_code: int = 200
) -> HTMLResponse:
    """The sign-in form, with a fresh pre-session cookie when the browser has none."""
    cookie = request.cookies.get(PRE_SESSION_COOKIE) or secrets.token_urlsafe(32)
    token = admin_sessions.csrf_token(get_settings(), "sign-in", cookie)
    context = {"csrf_token": token, "next": next_url, "email": email, "error": error}
    response = render(request, None, "admin/sign_in.html", context, status_code=status_code)
    _set_cookie(request, response, PRE_SESSION_COOKIE, cookie)
    return response


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request, session: SessionDep, next: str = "/admin") -> Response:
    if admin_sessions.find(session, request.cookies.get(SESSION_COOKIE, ""), utcnow()):
        return RedirectResponse(safe_next(next), status_code=303)
    return _form(request, safe_next(next))


@router.post("/sign-in", response_class=HTMLResponse)
def sign_in(
    request: Request,
    session: SessionDep,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/admin",
) -> Response:
    settings = get_settings()
    pre = request.cookies.get(PRE_SESSION_COOKIE, "")
    if not admin_sessions.csrf_valid(settings, "sign-in", pre, csrf_token):
        raise CsrfFailed
    now = utcnow()
    client = client_address(request, settings)
    try:
        user = authenticate(session, settings, SignIn(email, password, client), now)
    except TooManyAttempts as exc:
        return _form(request, safe_next(next), email, str(exc), status_code=429)
    if user is None:
        session.commit()  # the failure counts, even though the answer is an error
        return _form(request, safe_next(next), email, WRONG, status_code=400)
    started = admin_sessions.start(session, settings, user, now)
    session.commit()
    response = RedirectResponse(safe_next(next), status_code=303)
    max_age = int(settings.admin_session_hours * 3600)
    _set_cookie(request, response, SESSION_COOKIE, started.token, max_age=max_age)
    response.delete_cookie(PRE_SESSION_COOKIE, path="/admin")
    return response


@router.post("/sign-out")
def sign_out(request: Request, admin: CsrfFormDep, session: SessionDep) -> RedirectResponse:
    admin_sessions.end(session, request.cookies.get(SESSION_COOKIE, ""), utcnow())
    session.commit()
    response = RedirectResponse("/admin/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/admin")
    return response
