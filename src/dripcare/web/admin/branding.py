"""The clinic's branding: what patients see of it in every email (read from the Clinic row)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dripcare.clinics import Branding, InvalidFields, branding_of
from dripcare.models import Clinic
from dripcare.web.admin.deps import AdminContext, AdminDep, CsrfFormDep
from dripcare.web.admin.views import render
from dripcare.web.deps import SessionDep

router = APIRouter()
Text = Annotated[str, Form(max_length=1000)]


def _page(
    request: Request,
    admin: AdminContext,
    values: Branding,
    problems: dict[str, str] | None = None,
    saved: bool = False,
) -> HTMLResponse:
    context = {"values": values, "problems": problems or {}, "saved": saved}
    status = 422 if problems else 200
    return render(request, admin, "admin/branding.html", context, status_code=status)


@router.get("/branding", response_class=HTMLResponse)
def branding_page(request: Request, admin: AdminDep, saved: bool = False) -> HTMLResponse:
    return _page(request, admin, branding_of(admin.clinic), saved=saved)


@router.post("/branding", response_class=HTMLResponse)
def save_branding(
    request: Request,
    admin: CsrfFormDep,
    session: SessionDep,
    name: Text = "",
    phone: Text = "",
    brand_color: Text = "",
    logo_url: Text = "",
    sender_email: Text = "",
) -> Response:
    typed = Branding(name, phone, brand_color, logo_url, sender_email)
    try:
        checked = typed.checked()
    except InvalidFields as exc:
        return _page(request, admin, typed, exc.problems)
    clinic = session.get(Clinic, admin.clinic_id)
    assert clinic is not None  # AdminDep loaded it in this request
    checked.apply(clinic)
    session.commit()
    return RedirectResponse("/admin/branding?saved=true", status_code=303)
