"""What every provider's check shares: one error for a request that proved nothing, and the
window a signed timestamp must fall in."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime


class Rejected(Exception):
    """The request did not prove that the provider sent it: answer 401, change nothing."""


def check_fresh(timestamp: str, now: datetime, max_age_seconds: int) -> None:
    """A signed timestamp further than max_age from now is refused: a recorded request
    replayed later must not count again."""
    try:
        signed_at = int(timestamp)
    except ValueError:
        raise Rejected("the signed timestamp is not a number") from None
    if abs(now.timestamp() - signed_at) > max_age_seconds:
        raise Rejected(
            f"the signed timestamp is more than {max_age_seconds} s from now; "
            "check the clocks, or a recorded request is being replayed"
        )


def b64decode(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Rejected(f"{what} is not base64") from None
