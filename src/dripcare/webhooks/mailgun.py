"""Mailgun webhooks: `signature` = hex HMAC-SHA256 of timestamp + token with the webhook
signing key. The signature does not cover the event itself, so a token is accepted once
(replays.first_use) and only with a recent timestamp."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime
from typing import Any

from dripcare.sending.feedback import FeedbackEvent, FeedbackKind
from dripcare.sending.verp import token_in_address
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


STATUS_CODE = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")


def events(payload: dict[str, Any]) -> list[FeedbackEvent]:
    """The `event-data` of a failed, delivered or complained event as feedback."""
    data = payload.get("event-data") or {}
    name = data.get("event")
    if name == "failed":
        permanent = data.get("severity") == "permanent"
        kind = FeedbackKind.BOUNCE if permanent else FeedbackKind.DELAY
    elif name == "delivered":
        kind, permanent = FeedbackKind.DELIVERED, False
    elif name == "complained":
        kind, permanent = FeedbackKind.COMPLAINT, False
    else:
        return []
    status = data.get("delivery-status") or {}
    words = " ".join(str(status.get(k) or "") for k in ("code", "message", "description"))
    found = STATUS_CODE.search(str(status.get("enhanced-code") or "") or words)
    headers = (data.get("message") or {}).get("headers") or {}
    sender = str((data.get("envelope") or {}).get("sender", ""))
    return [
        FeedbackEvent(
            kind,
            source="mailgun",
            recipient=str(data.get("recipient", "")),
            permanent=permanent,
            status=found[1] if found and kind != FeedbackKind.DELIVERED else "",
            diagnostic=words.strip() or str(data.get("reason", "")),
            verp_token=token_in_address(sender),
            message_id=headers.get("message-id"),
            provider_event_id=data.get("id"),
        )
    ]
