"""Checks of what people type: a clear message for anything dripcare cannot use."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError
from email_validator import validate_email as _validate_email

from dripcare.errors import UserError


def normalize_email(text: str) -> str:
    """The address as we store and send to it; a clear error for anything that is not one."""
    try:
        info = _validate_email(text.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise UserError(f"invalid email address {text!r}: {exc}") from exc
    if info.ascii_email is None:
        raise UserError(f"email address {text!r} needs SMTPUTF8, which dripcare does not send")
    # Lower-cased whole: providers treat local parts case-insensitively, and one patient
    # typed two ways must not get two sequences.
    return info.ascii_email.lower()


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UserError(
            f"unknown time zone {name!r}; use an IANA name such as Europe/London or America/Chicago"
        ) from exc
    return name
