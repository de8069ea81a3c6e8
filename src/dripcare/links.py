"""Signed links in emails. A token names one message and nothing about the patient.

Tokens never expire (an unsubscribe link must work months later) but are signed with the
secret key, so they cannot be guessed or altered; revoking means rotating the key's salt.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeSerializer

from dripcare.config import Settings

SALT = "dripcare.links.v1"


def _serializer(settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(settings.secret_key, salt=SALT)


def make_token(settings: Settings, message_pk: int) -> str:
    return _serializer(settings).dumps(message_pk)


def read_token(settings: Settings, token: str) -> int | None:
    """The message primary key, or None for a forged or damaged token."""
    try:
        value = _serializer(settings).loads(token)
    except BadSignature:
        return None
    return value if isinstance(value, int) else None


@dataclass(frozen=True)
class MessageLinks:
    unsubscribe: str
    preferences: str
    checkin_ok: str
    checkin_worried: str
    unsubscribe_mailto: str

    def as_context(self) -> dict[str, str]:
        return {
            "unsubscribe": self.unsubscribe,
            "preferences": self.preferences,
            "checkin_ok": self.checkin_ok,
            "checkin_worried": self.checkin_worried,
        }


def links_for(settings: Settings, message_pk: int, sender_email: str) -> MessageLinks:
    base = settings.base_url.rstrip("/")
    token = make_token(settings, message_pk)
    mailbox = settings.unsubscribe_mailbox or f"unsubscribe@{_domain(sender_email, base)}"
    return MessageLinks(
        unsubscribe=f"{base}/u/{token}",
        preferences=f"{base}/p/{token}",
        checkin_ok=f"{base}/c/{token}/ok",
        checkin_worried=f"{base}/c/{token}/worried",
        unsubscribe_mailto=f"mailto:{mailbox}?subject=unsubscribe%20{token}",
    )


def _domain(sender_email: str, base_url: str) -> str:
    return sender_email.rpartition("@")[2] or urlsplit(base_url).hostname or "localhost"
