"""Red flags in the admin: the open ones first, acknowledging, and resuming or stopping the
patient's held emails with a note (red_flags.py). Every action is audited there."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from dripcare.config import get_settings
from dripcare.errors import UserError
from dripcare.models import CheckIn, utcnow
from dripcare.outbox import red_flags
from dripcare.people.audit import Actor
from dripcare.web.admin.deps import AdminContext, AdminDep, AdminNotFound, CsrfFormDep
from dripcare.web.admin.views import render
from dripcare.web.deps import SessionDep
from dripcare.web.pagination import Id

router = APIRouter()
Note = Annotated[str, Form(max_length=1000)]


def minutes_since(check_in: CheckIn) -> str:
    minutes = int((utcnow() - check_in.created_at).total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min ago"
    hours = minutes // 60
    return f"{hours} h ago" if hours < 48 else f"{hours // 24} days ago"


@router.get("/red-flags", response_class=HTMLResponse)
def red_flag_list(request: Request, admin: AdminDep, session: SessionDep) -> HTMLResponse:
    flags = red_flags.views(session, admin.clinic)
    return render(request, admin, "admin/red_flags.html", {"flags": flags, "since": minutes_since})


@router.get("/red-flags/{check_in_id}", response_class=HTMLResponse)
def red_flag_page(
    request: Request, check_in_id: Id, admin: AdminDep, session: SessionDep, problem: str = ""
) -> HTMLResponse:
    (flag,) = _one(session, admin, check_in_id)
    context = {"flag": flag, "since": minutes_since, "problem": problem}
    return render(request, admin, "admin/red_flag.html", context)


@router.post("/red-flags/{check_in_id}/acknowledge")
def acknowledge(check_in_id: Id, admin: CsrfFormDep, session: SessionDep) -> RedirectResponse:
    (flag,) = _one(session, admin, check_in_id)
    red_flags.acknowledge(session, flag.check_in, Actor.admin(admin.user))
    session.commit()
    return RedirectResponse(f"/admin/red-flags/{check_in_id}", status_code=303)


@router.post("/red-flags/{check_in_id}/resolve", response_model=None)
def resolve(
    request: Request,
    check_in_id: Id,
    admin: CsrfFormDep,
    session: SessionDep,
    outcome: Annotated[str, Form(max_length=16)] = "",
    note: Note = "",
) -> RedirectResponse | HTMLResponse:
    (flag,) = _one(session, admin, check_in_id)
    actor = Actor.admin(admin.user)
    try:
        red_flags.resolve(session, flag.check_in, actor, outcome, note, get_settings())
    except UserError as exc:
        session.rollback()
        (flag,) = _one(session, admin, check_in_id)
        context = {"flag": flag, "since": minutes_since, "problem": str(exc)}
        return render(request, admin, "admin/red_flag.html", context, status_code=422)
    session.commit()
    return RedirectResponse(f"/admin/red-flags/{check_in_id}", status_code=303)


def _one(session: SessionDep, admin: AdminContext, check_in_id: int) -> list[red_flags.RedFlagView]:
    found = red_flags.views(session, admin.clinic, check_in_id)
    if not found:
        raise AdminNotFound
    return found
