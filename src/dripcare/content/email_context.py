"""The variables a template sees. Only plain data: the sandbox gets no objects with methods."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from dripcare.config import get_settings
from dripcare.content.campaign_spec import CampaignSpec
from dripcare.content.phone_links import phone_uri
from dripcare.models import Clinic
from dripcare.people import logos


class StepLike(Protocol):
    """A stored step or one read from a campaign directory."""

    @property
    def key(self) -> str: ...
    @property
    def offset_days(self) -> int: ...
    @property
    def subject(self) -> str: ...
    @property
    def preheader(self) -> str: ...
    @property
    def checkin(self) -> bool: ...


def treatment_name(treatment: str) -> str:
    """A treatment slug as a patient reads it: "chemical-peel" is "Chemical peel"."""
    return treatment.replace("-", " ").capitalize()


def format_date(moment: datetime, zone: str) -> str:
    local = moment.astimezone(ZoneInfo(zone))
    return f"{local:%A} {local.day} {local:%B %Y}"


def clinic_context(clinic: Clinic) -> dict[str, Any]:
    return {
        "name": clinic.name,
        "phone": clinic.phone,
        "phone_uri": phone_uri(clinic.phone),
        "opening_hours": clinic.opening_hours,
        "after_hours": clinic.after_hours or f"call {clinic.phone} and follow the message",
        "brand_color": clinic.brand_color,
        "logo_url": logos.email_src(clinic.logo_url, get_settings()) if clinic.logo_url else "",
    }


def step_context(step: StepLike, pointer_days: int) -> dict[str, Any]:
    """The step as templates see it; `pointer_days` is the campaign's (clinical.py)."""
    return {
        "key": step.key,
        "day": step.offset_days,
        "subject": step.subject,
        "preheader": step.preheader,
        "checkin": step.checkin,
        "emergency_pointer": 0 <= step.offset_days <= pointer_days,
    }


def build_context(
    *,
    clinic: dict[str, Any],
    emergency_number: str,
    care: dict[str, Any],
    step: StepLike,
    pointer_days: int,
    first_name: str,
    last_name: str,
    treatment_name: str,
    treatment_date: str,
    links: dict[str, str],
    missed_steps: Sequence[str] = (),
) -> dict[str, Any]:
    """`missed_steps`: for a late_booking step, the stop-now steps it stands in for."""
    return {
        "patient": {"first_name": first_name, "last_name": last_name},
        "clinic": clinic,
        "emergency_number": emergency_number,
        "treatment": {"name": treatment_name, "date": treatment_date},
        "care": care,
        "step": step_context(step, pointer_days),
        "links": links,
        "missed_steps": list(missed_steps),
    }


SAMPLE_CLINIC = {
    "name": "Riverside Skin Clinic",
    "phone": "+1 555 010 0100",
    "phone_uri": "tel:+15550100100",
    "opening_hours": "Monday to Friday, 9am to 5pm",
    "after_hours": "call +1 555 010 0199 and follow the message",
    "brand_color": "#0f766e",
    "logo_url": "",
}


def sample_context(
    care: dict[str, Any],
    step: StepLike,
    clinic: dict[str, Any] | None = None,
    *,
    pointer_days: int,
    treatment: str,
    missed_steps: Sequence[str] = (),
) -> dict[str, Any]:
    """Realistic sample data for previews and for checking that a template renders."""
    base = "https://dripcare.example/x/sample"
    return build_context(
        clinic=clinic or SAMPLE_CLINIC,
        emergency_number="911",
        care=care,
        step=step,
        pointer_days=pointer_days,
        first_name="Alex",
        last_name="Sample",
        treatment_name=treatment_name(treatment),
        treatment_date="Tuesday 24 November 2026",
        links={
            "unsubscribe": f"{base}/unsubscribe",
            "preferences": f"{base}/preferences",
            "checkin_ok": f"{base}/checkin/ok",
            "checkin_worried": f"{base}/checkin/worried",
        },
        missed_steps=missed_steps,
    )


def care_values(variables: dict[str, Any], clinic: Clinic | None) -> dict[str, Any]:
    """The campaign's care durations, with the clinic's own values taking precedence."""
    own = (clinic.settings or {}).get("care", {}) if clinic is not None else {}
    return {**variables, **own}


def clinic_sample_context(
    spec: CampaignSpec, step: StepLike, clinic: Clinic | None, missed_steps: Sequence[str] = ()
) -> dict[str, Any]:
    """Sample patient data with this clinic's branding, phone and emergency number.

    `missed_steps`: a late_booking step's sample lists every stop-now step as missed.
    """
    days, treatment = spec.clinical.pointer_days, spec.treatment
    if clinic is None:
        return sample_context(
            spec.variables, step, pointer_days=days, treatment=treatment, missed_steps=missed_steps
        )
    care, branding = care_values(spec.variables, clinic), clinic_context(clinic)
    context = sample_context(
        care, step, branding, pointer_days=days, treatment=treatment, missed_steps=missed_steps
    )
    context["emergency_number"] = clinic.emergency_number
    return context
