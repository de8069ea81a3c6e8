"""The admin's front door, and a platform admin's choice of clinic."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import RedirectResponse

from dripcare.models import Clinic
from dripcare.web.admin.deps import AdminDep, AdminNotFound, CsrfFormDep
from dripcare.web.deps import SessionDep

router = APIRouter()


@router.get("")
def home(admin: AdminDep) -> RedirectResponse:
    return RedirectResponse("/admin/outbox", status_code=303)


@router.post("/clinic")
def pick_clinic(
    admin: CsrfFormDep, session: SessionDep, clinic_id: Annotated[int, Form()]
) -> RedirectResponse:
    """Remembered for this sign-in; a clinic's own admin has nothing to pick (404)."""
    if not admin.user.is_platform_admin or session.get(Clinic, clinic_id) is None:
        raise AdminNotFound
    admin.login.clinic_id = clinic_id  # loaded in this request's session
    session.commit()
    return RedirectResponse("/admin/outbox", status_code=303)
