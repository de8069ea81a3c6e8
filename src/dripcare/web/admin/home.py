"""A platform admin's choice of clinic (the front door, /admin, is the dashboard)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import RedirectResponse

from dripcare.models import Clinic
from dripcare.web.admin.deps import AdminNotFound, CsrfFormDep
from dripcare.web.admin.views import safe_next
from dripcare.web.deps import SessionDep

router = APIRouter()


@router.post("/clinic")
def pick_clinic(
    admin: CsrfFormDep,
    session: SessionDep,
    clinic_id: Annotated[int, Form()],
    next: Annotated[str, Form()] = "/admin/outbox",
) -> RedirectResponse:
    """Remembered for this sign-in; a clinic's own admin has nothing to pick (404).

    `next` lets the dashboard open another clinic's patient or email in one step.
    """
    if not admin.user.is_platform_admin or session.get(Clinic, clinic_id) is None:
        raise AdminNotFound
    admin.login.clinic_id = clinic_id  # loaded in this request's session
    session.commit()
    return RedirectResponse(safe_next(next), status_code=303)
