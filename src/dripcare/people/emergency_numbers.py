"""The emergency number patients are told to call, from the clinic's country.

This is the one table of numbers: emails, the check-in pages and the publish gate all ask
`Clinic.emergency_number`, which is the clinic's own override or the number here. A wrong
number in an emergency line is a safety fault, so an unknown country is refused rather than
guessed (the clinic can give its number explicitly instead).
"""

from __future__ import annotations

from dataclasses import dataclass

from dripcare.errors import UserError


@dataclass(frozen=True)
class EmergencyService:
    """The number to call now, other numbers that also reach emergency services, and the
    non-emergency advice line where the country has one (shown beside it, never instead)."""

    number: str
    also: tuple[str, ...] = ()
    advice: str = ""


_EU_112 = frozenset(
    [
        "AT",
        "BE",
        "BG",
        "HR",
        "CY",
        "CZ",
        "DK",
        "EE",
        "FI",
        "FR",
        "DE",
        "GR",
        "HU",
        "IT",
        "LV",
        "LT",
        "LU",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SK",
        "SI",
        "ES",
        "SE",
    ]
)

SERVICES: dict[str, EmergencyService] = {
    "US": EmergencyService("911"),
    "CA": EmergencyService("911"),
    "GB": EmergencyService("999", also=("112",), advice="NHS 111"),
    "IE": EmergencyService("112", also=("999",)),
    "AU": EmergencyService("000", also=("112",)),
    "NZ": EmergencyService("111"),
    **{code: EmergencyService("112") for code in _EU_112},
    # Outside the EU, 112 is also the emergency number of these European countries.
    **{code: EmergencyService("112") for code in ("CH", "NO", "IS", "LI")},
}

DEFAULT_COUNTRY = "US"


def service_for(country: str) -> EmergencyService | None:
    return SERVICES.get(country.strip().upper())


def number_for(country: str) -> str:
    """The country's emergency number; "" for a country not in the table (never a guess)."""
    service = service_for(country)
    return service.number if service else ""


def check_country(country: str, override: str = "") -> str:
    """The country code cleaned up for storing; a clear UserError if it cannot be used.

    A country missing from the table is accepted only with the clinic's own number, so no
    email ever says "call  now"."""
    code = country.strip().upper()
    if len(code) != 2 or not code.isascii() or not code.isalpha():
        raise UserError(
            f"country {country!r} must be a two-letter ISO 3166 code such as US, GB or DE"
        )
    if code not in SERVICES and not override.strip():
        raise UserError(
            f"no emergency number is known for country {code}: give the clinic's emergency "
            f"number too (for example --emergency-number 112), or use one of "
            f"{', '.join(sorted(SERVICES))}"
        )
    return code


def check_override(number: str) -> str:
    """An emergency number override cleaned up: digits (and + or spaces), short, or ""."""
    cleaned = number.strip()
    if cleaned and (len(cleaned) > 20 or not all(ch.isdigit() or ch in "+ " for ch in cleaned)):
        raise UserError(
            f"emergency number {number!r} must be digits only, such as 112 (at most 20 "
            "characters); leave it empty to use the country's number"
        )
    return cleaned
