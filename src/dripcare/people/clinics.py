"""Clinics: the tenants. Each has its own patients, campaigns and suppression list."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, fields
from urllib.parse import urlsplit

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from dripcare.config import get_settings
from dripcare.errors import NotFound, UserError
from dripcare.models import Clinic
from dripcare.outbox.scheduling import QuietHours
from dripcare.people import emergency_numbers
from dripcare.validation import normalize_email

_COLOR = re.compile(r"#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?")
_URL_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f\"'<>\\`]")


class InvalidFields(UserError):
    """Several fields at once, each with its own message (a form shows them beside the fields)."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(problems.values()))
        self.problems = problems


@dataclass(frozen=True)
class Branding:
    """What patients see of a clinic in every email: name, colour, logo, phone, sender, and
    the emergency number (from the country, unless the clinic gives its own)."""

    name: str
    phone: str
    brand_color: str
    logo_url: str
    sender_email: str
    country: str = emergency_numbers.DEFAULT_COUNTRY
    emergency_override: str = ""

    def checked(self) -> Branding:
        """These values cleaned up for storing; InvalidFields names every field that is wrong."""
        problems: dict[str, str] = {}
        name, phone = self.name.strip(), self.phone.strip()
        if not name or len(name) > 200 or any(ch in name for ch in "\r\n"):
            problems["name"] = "clinic name must be 1 to 200 characters on one line"
        if not any(ch.isdigit() for ch in phone) or len(phone) > 40:
            problems["phone"] = (
                f"clinic phone {phone!r} must have digits (at most 40 characters); "
                "patients must be able to call it"
            )
        color = self.brand_color.strip()
        if not _COLOR.fullmatch(color):
            problems["brand_color"] = f"brand colour {color!r} must be a hex colour such as #0f766e"
        logo = self.logo_url.strip()
        if logo and (problem := logo_url_problem(logo)):
            problems["logo_url"] = problem
        sender = self.sender_email
        try:
            sender = normalize_email(sender)
        except UserError as exc:
            problems["sender_email"] = str(exc)
        country, override = self.country, self.emergency_override
        try:
            override = emergency_numbers.check_override(override)
        except UserError as exc:
            problems["emergency_override"] = str(exc)
        try:
            country = emergency_numbers.check_country(country, override)
        except UserError as exc:
            problems["country"] = str(exc)
        if problems:
            raise InvalidFields(problems)
        return Branding(name, phone, color.lower(), logo, sender, country, override)

    def apply(self, clinic: Clinic) -> None:
        for field in fields(self):
            setattr(clinic, field.name, getattr(self, field.name))

    def on_copy_of(self, clinic: Clinic) -> Clinic:
        """A copy of the clinic with these values, in no session: a preview that saves nothing.

        Changing the loaded row instead would be written by the next flush."""
        columns = {attr.key: getattr(clinic, attr.key) for attr in inspect(Clinic).column_attrs}
        copy = Clinic(**columns)
        self.apply(copy)
        return copy


def name_problem(session: Session, name: str, clinic_id: int) -> str | None:
    """Why this clinic may not take `name`, or None: another clinic already has it.

    Patients trust an email by its From name; a clinic renaming itself after another (even
    as "riverside  DENTAL") could pass its emails off as that clinic's."""
    wanted = _name_key(name)
    others = session.scalars(select(Clinic.name).where(Clinic.id != clinic_id))
    if any(_name_key(other) == wanted for other in others):
        return "another clinic already has this name: choose one patients can tell apart"
    return None


def _name_key(name: str) -> str:
    return "".join(name.split()).casefold()


def logo_url_problem(url: str) -> str | None:
    """Why this logo URL cannot go in an email, or None. Mail clients block non-https images;
    an uploaded logo's path (logos.py) is ours; another host only if the operator allows it."""
    if url.startswith("/logos/") and not _URL_FORBIDDEN.search(url) and len(url) <= 500:
        return None
    parts = urlsplit(url)
    if parts.scheme != "https":
        return "logo URL must start with https:// (mail clients block other images)"
    if not parts.hostname or parts.username or _URL_FORBIDDEN.search(url) or len(url) > 500:
        return (
            "logo URL must be a plain https address of an image, such as "
            "https://clinic.example/logo.png (no spaces or quotes, at most 500 characters)"
        )
    if parts.hostname.lower() not in get_settings().logo_host_list:
        return (
            f"logos from {parts.hostname} are not allowed: upload the logo instead "
            "(or ask the operator to add the host to DRIPCARE_LOGO_HOSTS)"
        )
    return None


def get_clinic(session: Session, clinic_id: int) -> Clinic:
    clinic = session.get(Clinic, clinic_id)
    if clinic is None:
        raise no_clinic(clinic_id)
    return clinic


def no_clinic(clinic_id: int) -> NotFound:
    return NotFound(f"no clinic with id {clinic_id}; list them with `dripcare clinic list`")


def list_clinics(session: Session) -> list[Clinic]:
    return list(session.scalars(select(Clinic).order_by(Clinic.id)))


def branding_of(clinic: Clinic) -> Branding:
    return Branding(**{field.name: getattr(clinic, field.name) for field in fields(Branding)})


def set_quiet_hours(clinic: Clinic, window: str) -> None:
    """The clinic's own quiet hours ("21:00-08:00"), or "default" for DRIPCARE_QUIET_HOURS."""
    if window.strip().lower() == "default":
        clinic.quiet_hours = None
        return
    try:
        quiet = QuietHours.parse(window)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    if quiet.start == quiet.end:
        raise UserError(
            f"quiet hours {window.strip()!r} start and end at the same time, so they would never "
            'apply: give a window such as 21:00-08:00, or "default" for the platform\'s'
        )
    clinic.quiet_hours = f"{quiet.start:%H:%M}-{quiet.end:%H:%M}"


def check_webhook_secret(secret: str) -> None:
    """A `whsec_` secret is base64 (Standard Webhooks): a typo there would fail every alert."""
    if not secret.startswith("whsec_"):
        return
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except binascii.Error:
        key = b""
    if len(key) < 24:
        raise UserError(
            "a whsec_ webhook secret is whsec_ and base64 of at least 24 random bytes; make one "
            "with: python3 -c 'import base64, secrets; "
            'print("whsec_" + base64.b64encode(secrets.token_bytes(32)).decode())\''
        )
