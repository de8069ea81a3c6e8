"""The clinic's campaigns and their steps, read-only (the template editor builds on this)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from dripcare.campaigns import list_campaigns
from dripcare.web.admin.deps import AdminDep
from dripcare.web.admin.views import render
from dripcare.web.deps import SessionDep

router = APIRouter()


@router.get("/campaigns", response_class=HTMLResponse)
def campaign_list(request: Request, admin: AdminDep, session: SessionDep) -> HTMLResponse:
    campaigns = list_campaigns(session, admin.clinic_id)
    return render(request, admin, "admin/campaigns.html", {"campaigns": campaigns})
