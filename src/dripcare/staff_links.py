"""The one-click acknowledgement link in a red-flag alert email: for clinic staff only.

Unlike a patient's links (links.py), this one carries a separate salt, so no patient token
can ever be read as one, and it expires (ACK_LINK_MAX_AGE): alert emails get forwarded and
sit in shared inboxes. It names the check-in and a random id (`CheckIn.ack_jti`) that is
used once. Opening the link (GET) only shows a confirmation; the POST acknowledges, so a mail
scanner that prefetches links acknowledges nothing.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from dripcare.config import Settings
from dripcare.models import CheckIn

SALT = "dripcare.staff-ack.v1"
ACK_LINK_MAX_AGE = timedelta(hours=72)


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt=SALT)


def new_jti() -> str:
    return secrets.token_hex(16)


def ack_url(settings: Settings, check_in: CheckIn) -> str:
    token = _serializer(settings).dumps([check_in.id, check_in.ack_jti])
    return f"{settings.base_url.rstrip('/')}/ack/{token}"


def check_in_for_token(session: Session, settings: Settings, token: str) -> CheckIn | None:
    """The check-in the link names, unless forged, expired or already used."""
    try:
        value = _serializer(settings).loads(token, max_age=int(ACK_LINK_MAX_AGE.total_seconds()))
    except BadSignature:  # SignatureExpired is one
        return None
    match value:
        case [int() as pk, str() as jti] if jti:
            pass
        case _:
            return None
    check_in = session.get(CheckIn, pk)
    if check_in is None or check_in.ack_jti != jti or check_in.ack_jti_used:
        return None
    return check_in


def use(check_in: CheckIn) -> None:
    check_in.ack_jti_used = True
