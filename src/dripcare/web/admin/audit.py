"""The audit log page: a clinic admin sees their clinic's events; a platform admin, everyone's
(platform admins' own sign-ins belong to no clinic)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from dripcare.people import audit
from dripcare.web.admin.deps import AdminDep
from dripcare.web.admin.views import render
from dripcare.web.deps import SessionDep
from dripcare.web.pagination import IdFilter

router = APIRouter()
PAGE = 100


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    admin: AdminDep,
    session: SessionDep,
    before: IdFilter = None,
    action: Annotated[str, Query(max_length=64)] = "",
) -> HTMLResponse:
    everyone = admin.user.is_platform_admin
    scope = None if everyone else admin.clinic_id
    events = audit.events(session, scope, limit=PAGE, before=before, action=action)
    context = {
        "events": events,
        "everyone": everyone,
        "action": action,
        "actions": [a.value for a in audit.Action],
        "older": events[-1].id if len(events) == PAGE else None,
    }
    return render(request, admin, "admin/audit.html", context)
