"""Test data builders: real rows through the real domain functions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dripcare.clinics import create_clinic
from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.enrollments import EnrollRequest, EnrollResult, enroll


def make_clinic(**overrides: Any) -> int:
    fields = {
        "name": "Riverside Skin Clinic",
        "sender": "care@riverside.example",
        "phone": "+1 555 010 0100",
        "timezone": "America/New_York",
    } | overrides
    with session_scope() as session:
        return create_clinic(session, **fields).id


def make_enrollment(
    settings: Settings,
    clinic_id: int,
    treated_at: str | datetime,
    now: datetime | None = None,
    **overrides: Any,
) -> int:
    return enroll_result(settings, clinic_id, treated_at, now, **overrides).enrollment.id


def enroll_result(
    settings: Settings,
    clinic_id: int,
    treated_at: str | datetime,
    now: datetime | None = None,
    **overrides: Any,
) -> EnrollResult:
    fields = {"email": "pat@example.com", "first_name": "Pat"} | overrides
    with session_scope() as session:
        return enroll(
            session,
            EnrollRequest(clinic_id=clinic_id, treated_at=treated_at, **fields),
            settings,
            now,
        )
