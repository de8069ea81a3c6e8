"""The one-click acknowledgement link in a red-flag alert email: for clinic staff only.

Unlike a patient's links (links.py), this one carries a separate salt, so no patient token
can ever be read as one, and it expires (ACK_LINK_MAX_AGE): alert emails get forwarded and
sit in shared inboxes. It names the check-in and a random id (`CheckIn.ack_jti`) that is
used once. Opening the link (GET) only shows a confirmation; the POST acknowledges, so a mail
scanner that prefetches links acknowledges nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from dripcare.config import Settings
from dripcare.models import ActorKind, CheckIn
from dripcare.people.audit import Actor

SALT = "dripcare.staff-ack.v1"
ACK_LINK_MAX_AGE = timedelta(hours=72)


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt=SALT)


def new_jti() -> str:
    return secrets.token_hex(16)


def ack_url(settings: Settings, check_in: CheckIn, recipient: str) -> str:
    """`recipient`, the address the alert went to, names who acknowledged in the audit log."""
    token = _serializer(settings).dumps([check_in.id, check_in.ack_jti, recipient])
    return f"{settings.base_url.rstrip('/')}/ack/{token}"


@dataclass(frozen=True)
class AckLink:
    check_in: CheckIn
    recipient: str

    @property
    def actor(self) -> Actor:
        return Actor(ActorKind.EMAIL_LINK, self.recipient)


def read(session: Session, settings: Settings, token: str) -> AckLink | None:
    """What the link names, unless forged, expired or already used."""
    try:
        value = _serializer(settings).loads(token, max_age=int(ACK_LINK_MAX_AGE.total_seconds()))
    except BadSignature:  # SignatureExpired is one
        return None
    match value:
        case [int() as pk, str() as jti, str() as recipient] if jti:
            pass
        case _:
            return None
    check_in = session.get(CheckIn, pk)
    if check_in is None or check_in.ack_jti != jti or check_in.ack_jti_used:
        return None
    return AckLink(check_in, recipient)


def use(check_in: CheckIn) -> None:
    check_in.ack_jti_used = True
