"""Clinic logos: uploaded, kept in the database and served by dripcare at /logos/.

A logo URL typed by an admin let any https address into every patient's email (a tracking
pixel, an image that changes after review). So a logo is uploaded instead: PNG, JPEG or WebP,
recognised by its first bytes, never by its name (an SVG can carry script). Its URL holds a hash
of its content, so it can be cached for a year and a new logo gets a new URL.

An https logo URL from before keeps working only when its host is in DRIPCARE_LOGO_HOSTS; any
other is left out of the emails (email_context.py) until the clinic uploads its logo.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from dripcare.config import Settings
from dripcare.errors import UserError
from dripcare.models import Clinic, ClinicLogo

MAX_BYTES = 200_000
PREFIX = "/logos/"
_TYPES = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}
_NAME = re.compile(r"(?P<clinic>[0-9]{1,12})-(?P<digest>[0-9a-f]{16})\.(?P<ext>png|jpg|webp)")


def sniff(data: bytes) -> str:
    """The logo's extension, from its magic bytes; refused unless PNG, JPEG or WebP."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    raise UserError("the logo must be a PNG, JPEG or WebP image (SVG and others are refused)")


def store(session: Session, clinic: Clinic, data: bytes) -> str:
    """Keep `data` as the clinic's logo and point its emails at it; returns the logo's path."""
    if len(data) > MAX_BYTES:
        raise UserError(f"the logo is {len(data)} bytes; make it at most {MAX_BYTES} bytes")
    ext = sniff(data)
    logo = session.get(ClinicLogo, clinic.id) or ClinicLogo(clinic_id=clinic.id)
    logo.content_type, logo.data = _TYPES[ext], data
    logo.digest = hashlib.sha256(data).hexdigest()[:16]
    session.add(logo)
    clinic.logo_url = f"{PREFIX}{clinic.id}-{logo.digest}.{ext}"
    session.flush()
    return clinic.logo_url


def find(session: Session, name: str) -> ClinicLogo | None:
    """The logo a /logos/ name stands for, if it is still the clinic's current one."""
    match = _NAME.fullmatch(name)
    if match is None:
        return None
    logo = session.get(ClinicLogo, int(match["clinic"]))
    if logo is None or logo.digest != match["digest"]:
        return None
    return logo if _TYPES[match["ext"]] == logo.content_type else None


def email_src(logo_url: str, settings: Settings) -> str:
    """The img src an email uses: ours under DRIPCARE_BASE_URL, an allowed host's, or none."""
    if logo_url.startswith(PREFIX):
        return settings.base_url.rstrip("/") + logo_url
    host = (urlsplit(logo_url).hostname or "").lower()
    return logo_url if host and host in settings.logo_host_list else ""
