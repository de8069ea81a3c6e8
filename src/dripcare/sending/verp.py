"""VERP envelope senders: `bounces+<token>@<bounce domain>`, so a late bounce names its message.

A bounce that arrives after the SMTP transaction goes to the envelope sender (RFC 5321
reverse-path). With one address per message, the report says which message it is about by
where it was sent, without trusting anything in its body. The token is the message's row id
and an HMAC of it with the secret key, in digits, lowercase letters and one hyphen: some mail
systems lowercase local parts, and a forged token must not let anyone suppress a patient.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from dripcare.config import Settings

_SALT = b"dripcare.verp"
_TOKEN = re.compile(r"m([0-9]+)-([a-z2-7]{16})")


def _signature(settings: Settings, message_pk: int) -> str:
    digest = hmac.new(settings.secret_key.encode(), _SALT + b"%d" % message_pk, hashlib.sha256)
    return base64.b32encode(digest.digest()[:10]).decode().lower()


def make_token(settings: Settings, message_pk: int) -> str:
    return f"m{message_pk}-{_signature(settings, message_pk)}"


def read_token(settings: Settings, token: str) -> int | None:
    """The message row id a token names; None if it is not one of ours (or was altered)."""
    found = _TOKEN.fullmatch(token.strip().lower())
    if found is None:
        return None
    message_pk = int(found[1])
    expected = _signature(settings, message_pk)
    return message_pk if hmac.compare_digest(expected, found[2]) else None


def envelope_sender(settings: Settings, message_pk: int) -> str | None:
    """The MAIL FROM for this message; None when no bounce domain is set (use the From)."""
    if not settings.bounce_domain:
        return None
    token = make_token(settings, message_pk)
    return f"{settings.bounce_local_part}+{token}@{settings.bounce_domain}"


def token_in_address(address: str) -> str | None:
    """The token of `bounces+<token>@domain` (any local part, any case), or None."""
    local = address.strip().strip("<>").rpartition("@")[0]
    _, plus, token = local.partition("+")
    return token if plus and token else None


def is_bounce_address(settings: Settings, address: str) -> bool:
    """Whether mail to this address came back to our envelope sender (a bounce address)."""
    local, _, domain = address.strip().strip("<>").lower().rpartition("@")
    if not settings.bounce_domain or domain != settings.bounce_domain.lower():
        return False
    return local.partition("+")[0] == settings.bounce_local_part.lower()
