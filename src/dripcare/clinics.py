"""Clinics: the tenants. Each has its own patients, campaigns and suppression list."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from dripcare.campaign_versions import install_defaults
from dripcare.errors import UserError
from dripcare.models import Clinic
from dripcare.validation import check_timezone, normalize_email

_COLOR = re.compile(r"#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?")


def create_clinic(
    session: Session,
    *,
    name: str,
    sender: str,
    phone: str,
    timezone: str,
    brand_color: str = "#0f766e",
    logo_url: str = "",
    opening_hours: str = "Monday to Friday, 9am to 5pm",
    after_hours: str = "",
    emergency_number: str = "911",
    alert_email: str = "",
    webhook_url: str = "",
    webhook_secret: str = "",
) -> Clinic:
    """Create a clinic with the shipped campaigns installed, ready to enroll patients."""
    if not name.strip() or len(name.strip()) > 200:
        raise UserError("clinic name must be 1 to 200 characters")
    if not any(ch.isdigit() for ch in phone):
        raise UserError(f"clinic phone {phone!r} has no digits; patients must be able to call it")
    if not _COLOR.fullmatch(brand_color):
        raise UserError(f"brand colour {brand_color!r} must be a hex colour such as #0f766e")
    if webhook_url and not webhook_url.startswith(("https://", "http://")):
        raise UserError("webhook URL must start with https:// (or http:// on a private network)")
    if logo_url and not logo_url.startswith("https://"):
        raise UserError("logo URL must start with https:// (mail clients block other images)")
    clinic = Clinic(
        name=name.strip(),
        sender_email=normalize_email(sender),
        phone=phone.strip(),
        timezone=check_timezone(timezone),
        brand_color=brand_color,
        logo_url=logo_url,
        opening_hours=opening_hours,
        after_hours=after_hours,
        emergency_number=emergency_number.strip(),
        alert_email=normalize_email(alert_email) if alert_email else "",
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
        settings={},
    )
    session.add(clinic)
    session.flush()
    install_defaults(session, clinic)
    return clinic


def list_clinics(session: Session) -> list[Clinic]:
    return list(session.scalars(select(Clinic).order_by(Clinic.id)))
