"""Checks of what people type: a clear message for anything dripcare cannot use."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError
from email_validator import validate_email as _validate_email

from dripcare.errors import UserError

# Lower-case letters, digits and `_+-` in dot-separated atoms, then host labels (no `--`, so no
# punycode) and an alphabetic top-level domain: a subset of what email_validator accepts, for
# which its answer is this text lower-cased. It costs ~1 us instead of ~100 (CSV imports).
_PLAIN = re.compile(
    r"(?P<local>[a-z0-9_+-]{1,64}(?:\.[a-z0-9_+-]{1,64})*)"
    r"@(?P<domain>(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63})"
)


def plain_address(text: str) -> str | None:
    """The normalized address when it is plainly valid; None means: ask email_validator."""
    lowered = text.strip().lower()
    match = _PLAIN.fullmatch(lowered)
    if match is None or len(lowered) > 254 or len(match["local"]) > 64 or "--" in lowered:
        return None
    domain = match["domain"]
    if any(domain == name or domain.endswith("." + name) for name in SPECIAL_USE_DOMAIN_NAMES):
        return None
    return lowered


def normalize_email(text: str) -> str:
    """The address as we store and send to it; a clear error for anything that is not one."""
    plain = plain_address(text)
    if plain is not None:
        return plain
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


_PHONE_SEPARATORS = str.maketrans("", "", " .-()/")


def normalize_phone(text: str) -> str:
    """A phone number in E.164 ("+44 20 7946 0958" → "+442079460958"); "" for none.

    Without a numbering-plan library dripcare cannot tell a local number's country, so only
    international numbers are taken: a + (or 00), then 8 to 15 digits, the first not 0."""
    bare = text.strip().translate(_PHONE_SEPARATORS)
    if not bare:
        return ""
    if bare.startswith("00"):
        bare = "+" + bare[2:]
    digits = bare[1:]
    if not (bare.startswith("+") and digits.isascii() and digits.isdigit()):
        raise UserError(
            f"phone number {text.strip()!r} must be international, with its country code: "
            "a + then the digits, e.g. +44 20 7946 0958"
        )
    if not 8 <= len(digits) <= 15 or digits[0] == "0":
        raise UserError(
            f"phone number {text.strip()!r} must have 8 to 15 digits after the + and start "
            "with the country code (not 0), e.g. +1 555 010 0100"
        )
    return bare
