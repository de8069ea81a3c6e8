"""Phone numbers a patient can tap to call, in emails and on the patient pages.

Clinics write their after-hours route as free text ("call +44 20 7946 0999 and follow the
message", "call NHS 111"), so the numbers in it are found and linked rather than stored apart.
"""

from __future__ import annotations

import re
from functools import lru_cache

from markupsafe import Markup, escape

from dripcare.people.emergency_numbers import SERVICES

# A run of digits, spaces, dots, dashes and brackets, starting with a digit, + or (, ending in
# a digit, not glued to a word ("9am" is not a number).
_NUMBER = re.compile(r"(?<![\w+(])[+(]?\d(?:[\d ().-]*\d)?(?!\w)")
# Short numbers are linked only when they are the service numbers of the table: "24 hours"
# or "2026" are not phone numbers.
_SHORT_NUMBERS = frozenset(
    number.replace(" ", "")
    for service in SERVICES.values()
    for number in (service.number, *service.also, service.advice.removeprefix("NHS "))
    if number
)
_MIN_DIGITS = 6


@lru_cache(maxsize=1024)
def phone_uri(phone: str) -> str:
    """The tel: URI of a number as people write it ("+1 (555) 010-0100" → tel:+15550100100).

    Cached: the send path asks it for the clinic's number in every email."""
    return "tel:" + "".join(ch for ch in phone if ch.isdigit() or ch == "+")


def _is_phone(candidate: str) -> bool:
    digits = "".join(ch for ch in candidate if ch.isdigit())
    return len(digits) >= _MIN_DIGITS or digits in _SHORT_NUMBERS


def tel_links(text: str) -> Markup:
    """`text` escaped, with each phone number in it a tel: link."""
    out: list[str] = []
    last = 0
    for match in _NUMBER.finditer(text):
        if not _is_phone(match.group()):
            continue
        out.append(escape(text[last : match.start()]))
        number = match.group()
        out.append(Markup('<a href="{}">{}</a>').format(phone_uri(number), number))
        last = match.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)
