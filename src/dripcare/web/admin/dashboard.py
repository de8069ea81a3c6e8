"""The admin's landing page: a clinic's last 30 or 90 days as charts, and what needs attention.

A clinic's admin sees their clinic. A platform admin sees the clinic picked for this sign-in,
another one (`?clinic=ID`, a view only: the pick stays), or every clinic (`?clinic=all`, days
in UTC). Entries of a clinic other than the picked one open through the clinic switch, since
every other page shows the picked clinic.

Unresolved red flags (red_flags.py) come first on the picked clinic's view, open ones first.
Paused transports (circuit.py) head the page: a clinic's admin sees its own server's and the
platform's, a platform admin every one, with its last error and a "retry now" button.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from dripcare.models import Clinic, utcnow
from dripcare.outbox import dashboard, red_flags
from dripcare.outbox.dashboard import Scope
from dripcare.people.audit import Actor
from dripcare.sending import circuit
from dripcare.web.admin.charts import Chart
from dripcare.web.admin.deps import AdminContext, AdminDep, AdminNotFound, CsrfFormDep
from dripcare.web.admin.red_flags import minutes_since
from dripcare.web.admin.views import render
from dripcare.web.deps import SessionDep

router = APIRouter()
TITLES = {
    "sent": "Emails sent",
    "failed": "Emails failed",
    "bounced": "Addresses bounced",
    "unsubscribed": "Unsubscribes",
    "check_ins": "Check-ins",
}


@router.get("", response_class=HTMLResponse)
def dashboard_page(
    request: Request, admin: AdminDep, session: SessionDep, days: str = "30", clinic: str = ""
) -> HTMLResponse:
    period = int(days) if days in {str(d) for d in dashboard.WINDOWS} else dashboard.WINDOWS[0]
    scope = _scope(session, admin, clinic)
    now = utcnow()
    activity = dashboard.activity(session, scope, period, now)
    context = {
        "scope": scope,
        "clinic_param": "all" if scope.clinic_id is None else str(scope.clinic_id),
        "clinic_name": _clinic_name(admin, scope),
        "period": period,
        "windows": dashboard.WINDOWS,
        "activity": activity,
        "charts": [
            Chart(name, TITLES[name], activity.window.days, counts)
            for name, counts in activity.series.items()
        ],
        "titles": TITLES,
        "attention": dashboard.needs_attention(session, scope, activity.window.start, now),
        "late_minutes": int(dashboard.LATE_AFTER / timedelta(minutes=1)),
        "clinic_names": dict(admin.choices) or {admin.clinic_id: admin.clinic.name},
        "circuits": circuit.paused_circuits(
            session, None if admin.user.is_platform_admin else admin.clinic_id
        ),
        "now": now,
        # only on the picked clinic's own view: acting on them needs that clinic picked
        "red_flags": red_flags.views(session, admin.clinic)
        if scope.clinic_id == admin.clinic_id
        else [],
        "since": minutes_since,
    }
    return render(request, admin, "admin/dashboard.html", context)


@router.post("/transports/retry")
def retry_transport(
    admin: CsrfFormDep, session: SessionDep, transport: Annotated[str, Form()]
) -> RedirectResponse:
    """A platform admin fixed a mail server: the next batch probes it now, not at probe_at."""
    if not admin.user.is_platform_admin:
        raise AdminNotFound
    if not circuit.retry_now(session, transport, Actor.admin(admin.user), utcnow()):
        raise AdminNotFound  # not paused (any more): nothing to retry
    session.commit()
    return RedirectResponse("/admin", status_code=303)


def _scope(session: Session, admin: AdminContext, asked: str) -> Scope:
    """What this admin may see of what was asked: a clinic admin always their own clinic."""
    if not admin.user.is_platform_admin or not asked:
        return Scope(admin.clinic_id, admin.clinic.timezone)
    if asked == "all":
        return Scope(None)
    clinic = session.get(Clinic, int(asked)) if asked.isdigit() and len(asked) < 12 else None
    if clinic is None:
        raise AdminNotFound
    return Scope(clinic.id, clinic.timezone)


def _clinic_name(admin: AdminContext, scope: Scope) -> str:
    if scope.clinic_id is None:
        return "All clinics"
    return dict(admin.choices).get(scope.clinic_id, admin.clinic.name)
