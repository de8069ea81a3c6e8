"""Signed links in emails. A token names one message and nothing about the patient.

Tokens never expire (an unsubscribe link must work months later) but are signed with the
secret key, so they cannot be guessed or altered. They are revocable per patient: a token
carries the patient's `link_epoch` at sending time (left out while it is 0, so tokens issued
before revocation existed stay valid and short), and bumping the epoch voids every link the
patient was sent before.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeSerializer
from itsdangerous.encoding import base64_encode
from sqlalchemy import select
from sqlalchemy.orm import Session

from dripcare.config import Settings
from dripcare.models import Enrollment, Message, Patient
from dripcare.outbox.message_ids import sender_domain

SALT = "dripcare.links.v1"


def _serializer(settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(settings.secret_key, salt=SALT)


def make_token(settings: Settings, message_pk: int, epoch: int = 0) -> str:
    return _minter(settings.secret_key)([message_pk, epoch] if epoch else message_pk)


class _Minter:
    """URLSafeSerializer.dumps for our small payloads, with the signing key derived once.

    itsdangerous derives the key (one more HMAC) and builds its signer on every call: ~175 us,
    the largest single cost of rendering an email. The bytes are the same (checked on
    creation, else the serializer itself is used), so read_token verifies them as before.
    """

    def __init__(self, secret_key: str) -> None:
        self.serializer = URLSafeSerializer(secret_key, salt=SALT)
        self.key = self.serializer.make_signer(SALT).derive_key()
        samples: list[int | list[int]] = [1, 123456789, [42, 7]]
        self.same = all(self.fast(v) == self.serializer.dumps(v) for v in samples)

    def fast(self, value: int | list[int]) -> str:
        payload = base64_encode(json.dumps(value, separators=(",", ":")).encode())
        signature = base64_encode(hmac.new(self.key, payload, hashlib.sha1).digest())
        return (payload + b"." + signature).decode("ascii")

    def __call__(self, value: int | list[int]) -> str:
        return self.fast(value) if self.same else self.serializer.dumps(value)


@lru_cache(maxsize=4)
def _minter(secret_key: str) -> _Minter:
    return _Minter(secret_key)


@dataclass(frozen=True)
class LinkRef:
    message_pk: int
    epoch: int


def read_token(settings: Settings, token: str) -> LinkRef | None:
    """What a token names, or None for a forged, damaged or non-canonical token.

    Base64 ignores the spare low bits of a token's last character, so a few altered tokens
    still carry a valid signature; only the exact token we issued is accepted.
    """
    try:
        value = _serializer(settings).loads(token)
    except BadSignature:
        return None
    match value:
        case int() as pk if not isinstance(pk, bool):
            ref = LinkRef(pk, 0)
        case [int() as pk, int() as epoch] if epoch > 0:
            ref = LinkRef(pk, epoch)
        case _:
            return None
    return ref if make_token(settings, ref.message_pk, ref.epoch) == token else None


def message_for_token(session: Session, settings: Settings, token: str) -> Message | None:
    """The message a token names, unless the token is forged or its links were revoked."""
    ref = read_token(settings, token)
    if ref is None:
        return None
    found = session.execute(
        select(Message, Patient.link_epoch)
        .join(Enrollment, Message.enrollment_id == Enrollment.id)
        .join(Patient, Enrollment.patient_id == Patient.id)
        .where(Message.id == ref.message_pk)
    ).first()
    if found is None or found[1] != ref.epoch:
        return None
    return found[0]


def revoke(session: Session, patient: Patient) -> int:
    """Void every link sent to this patient so far; emails sent from now on carry new ones.

    For a forwarded email or a shared inbox: whoever holds an old link can no longer
    unsubscribe the patient, change their preferences or answer a check-in. Returns the new
    epoch.
    """
    patient.link_epoch += 1
    session.flush()
    return patient.link_epoch


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


def links_for(
    settings: Settings, message_pk: int, sender_email: str, epoch: int = 0
) -> MessageLinks:
    base = settings.base_url.rstrip("/")
    token = make_token(settings, message_pk, epoch)
    mailbox = settings.unsubscribe_mailbox or f"unsubscribe@{_domain(sender_email, base)}"
    return MessageLinks(
        unsubscribe=f"{base}/u/{token}",
        preferences=f"{base}/p/{token}",
        checkin_ok=f"{base}/c/{token}/ok",
        checkin_worried=f"{base}/c/{token}/worried",
        unsubscribe_mailto=f"mailto:{mailbox}?subject=unsubscribe%20{token}",
    )


def _domain(sender_email: str, base_url: str) -> str:
    return sender_domain(sender_email, "") or urlsplit(base_url).hostname or "localhost"
