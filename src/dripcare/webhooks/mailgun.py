"""Mailgun webhooks: `signature` = hex HMAC-SHA256 of timestamp + token with the webhook
signing key. The signature does not cover the event itself, so a token is accepted once
(replays.first_use) and only with a recent timestamp."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any

from dripcare.webhooks.signing import Rejected, check_fresh


def verify(signing_key: str, signature: Any, now: datetime, max_age_seconds: int) -> str:
    """Raise Rejected unless Mailgun signed this `signature` object recently; return its token."""
    if not isinstance(signature, dict):
        raise Rejected("no 'signature' object in the payload")
    timestamp, token = str(signature.get("timestamp", "")), str(signature.get("token", ""))
    given = str(signature.get("signature", ""))
    expected = hmac.new(
        signing_key.encode(), (timestamp + token).encode(), hashlib.sha256
    ).hexdigest()
    if not token or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Rejected("the Mailgun signature does not match: check DRIPCARE_MAILGUN_SIGNING_KEY")
    check_fresh(timestamp, now, max_age_seconds)
    return token
