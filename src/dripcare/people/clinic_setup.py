"""Setting up a new clinic: the row, its sending domain and the shipped campaigns.

Here, above both clinics.py and the campaign editor, so that looking up and branding a clinic
needs nothing of campaigns and enrolling can find a clinic without importing the editor.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from dripcare.content.campaign_versions import install_defaults
from dripcare.content.campaigns import check_default_campaign
from dripcare.errors import UserError
from dripcare.models import Clinic
from dripcare.people import emergency_numbers
from dripcare.people.clinics import Branding, check_webhook_secret
from dripcare.sending import sending_domains
from dripcare.validation import check_timezone, normalize_email


def create_clinic(  # noqa: PLR0913 (keyword-only: the clinic form's fields)
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
    emergency_number: str = "",
    country: str = emergency_numbers.DEFAULT_COUNTRY,
    alert_email: str = "",
    webhook_url: str = "",
    webhook_secret: str = "",
    default_campaign: str | None = None,
) -> Clinic:
    """Create a clinic with the shipped campaigns installed, ready to enroll patients.

    `emergency_number` overrides the country's number; "" uses the country's.
    `default_campaign` is the slug enrolling uses when it is given none."""
    branding = Branding(
        name, phone, brand_color, logo_url, sender, country, emergency_number
    ).checked()
    if webhook_url and not webhook_url.startswith(("https://", "http://")):
        raise UserError("webhook URL must start with https:// (or http:// on a private network)")
    check_webhook_secret(webhook_secret)
    clinic = Clinic(
        timezone=check_timezone(timezone),
        opening_hours=opening_hours,
        after_hours=after_hours,
        alert_email=normalize_email(alert_email) if alert_email else "",
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
        settings={},
    )
    branding.apply(clinic)
    session.add(clinic)
    session.flush()
    sending_domains.grant(session, clinic, sending_domains.domain_of(clinic.sender_email))
    install_defaults(session, clinic)
    clinic.default_campaign = check_default_campaign(session, clinic.id, default_campaign)
    return clinic
