"""The clinic's branding: what patients see of it in every email (read from the Clinic row).

Beside the form, the first email of the clinic's live campaign shows the branding: as saved,
or (the Preview button) as typed in the form, without saving it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from dripcare.content.previews import first_live_step
from dripcare.errors import UserError
from dripcare.models import Clinic
from dripcare.people import emergency_numbers, logos
from dripcare.people.clinics import Branding, InvalidFields, branding_of, name_problem
from dripcare.sending import sending_domains
from dripcare.web.admin.deps import AdminContext, AdminDep, AdminNotFound, CsrfFormDep
from dripcare.web.admin.views import render
from dripcare.web.deps import SessionDep

router = APIRouter()
Text = Annotated[str, Form(max_length=1000)]


def _page(
    request: Request,
    admin: AdminContext,
    session: Session,
    values: Branding,
    *,
    problems: dict[str, str] | None = None,
    saved: bool = False,
    shown: Clinic | None = None,
) -> HTMLResponse:
    """The form; unless a field is wrong, the preview of `shown` (the stored clinic if None)."""
    sample = None
    if not problems:
        sample = first_live_step(session, admin.clinic_id, shown or admin.clinic)
    context = {
        "values": values,
        "problems": problems or {},
        "saved": saved,
        "sample": sample,
        "unsaved": shown is not None,
        "domains": sending_domains.domains_of(session, admin.clinic_id),
        "emergency_default": emergency_numbers.number_for(values.country),
    }
    status = 422 if problems else 200
    return render(request, admin, "admin/branding.html", context, status_code=status)


@router.get("/branding", response_class=HTMLResponse)
def branding_page(
    request: Request, admin: AdminDep, session: SessionDep, saved: bool = False
) -> HTMLResponse:
    return _page(request, admin, session, branding_of(admin.clinic), saved=saved)


@router.post("/branding", response_class=HTMLResponse)
def save_branding(
    request: Request,
    admin: CsrfFormDep,
    session: SessionDep,
    *,
    name: Text = "",
    phone: Text = "",
    brand_color: Text = "",
    logo_url: Text = "",
    sender_email: Text = "",
    country: Text = emergency_numbers.DEFAULT_COUNTRY,
    emergency_override: Text = "",
    action: Text = "save",
) -> Response:
    """Save the branding, or (action=preview) only show an email with it."""
    typed = Branding(name, phone, brand_color, logo_url, sender_email, country, emergency_override)
    try:
        checked = typed.checked()
    except InvalidFields as exc:
        return _page(request, admin, session, typed, problems=exc.problems)
    if action == "preview":
        return _page(request, admin, session, typed, shown=checked.on_copy_of(admin.clinic))
    if problem := sending_domains.sender_problem(session, admin.clinic_id, checked.sender_email):
        return _page(request, admin, session, typed, problems={"sender_email": problem})
    if problem := name_problem(session, checked.name, admin.clinic_id):
        return _page(request, admin, session, typed, problems={"name": problem})
    clinic = session.get(Clinic, admin.clinic_id)
    assert clinic is not None  # AdminDep loaded it in this request
    checked.apply(clinic)
    session.commit()
    return RedirectResponse("/admin/branding?saved=true", status_code=303)


@router.post("/branding/logo", response_class=HTMLResponse)
async def upload_logo(
    request: Request, admin: CsrfFormDep, session: SessionDep, logo: UploadFile
) -> Response:
    """The logo patients see, uploaded (logos.py); reading stops just past the size limit."""
    data = await logo.read(logos.MAX_BYTES + 1)
    clinic = session.get(Clinic, admin.clinic_id)
    assert clinic is not None  # AdminDep loaded it in this request
    try:
        logos.store(session, clinic, data)
    except UserError as exc:
        session.rollback()
        values = branding_of(admin.clinic)
        return _page(request, admin, session, values, problems={"logo": str(exc)})
    session.commit()
    return RedirectResponse("/admin/branding?saved=true", status_code=303)


@router.post("/branding/domains", response_class=HTMLResponse)
def add_sending_domain(
    request: Request, admin: CsrfFormDep, session: SessionDep, domain: Text = ""
) -> Response:
    """A platform admin lets the clinic send from another domain (once it is known to own it)."""
    if not admin.user.is_platform_admin:
        raise AdminNotFound
    try:
        sending_domains.assign(session, admin.clinic, domain)
    except UserError as exc:
        values = branding_of(admin.clinic)
        return _page(request, admin, session, values, problems={"domain": str(exc)})
    session.commit()
    return RedirectResponse("/admin/branding", status_code=303)
