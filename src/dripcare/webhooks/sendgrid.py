"""SendGrid's Signed Event Webhook: an ECDSA P-256 (SHA-256) signature over the timestamp
header followed by the raw body, checked with the public key SendGrid shows for the webhook."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from dripcare.sending.feedback import FeedbackEvent, FeedbackKind
from dripcare.webhooks.signing import Rejected, b64decode, check_fresh

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"


@lru_cache(maxsize=4)  # parsed once, not per request
def load_public_key(setting: str) -> ec.EllipticCurvePublicKey:
    """The key as SendGrid shows it: base64 DER, with or without PEM armour."""
    body = "".join(line for line in setting.strip().splitlines() if not line.startswith("-----"))
    key = load_der_public_key(b64decode(body, "DRIPCARE_SENDGRID_WEBHOOK_PUBLIC_KEY"))
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("DRIPCARE_SENDGRID_WEBHOOK_PUBLIC_KEY is not an ECDSA public key")
    return key


def verify(
    public_key: str,
    signature: str | None,
    timestamp: str | None,
    body: bytes,
    now: datetime,
    max_age_seconds: int,
) -> None:
    """Raise Rejected unless SendGrid signed this body, recently."""
    if not signature or not timestamp:
        raise Rejected(f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER}")
    check_fresh(timestamp, now, max_age_seconds)
    try:
        load_public_key(public_key).verify(
            b64decode(signature, SIGNATURE_HEADER),
            timestamp.encode() + body,
            ec.ECDSA(hashes.SHA256()),
        )
    except InvalidSignature:
        raise Rejected("the SendGrid signature does not match the body") from None


def events(batch: Any) -> list[FeedbackEvent]:
    """SendGrid posts a JSON array of events; those about delivery become feedback."""
    if not isinstance(batch, list):
        raise ValueError("a SendGrid event webhook body is a JSON array")
    return [event for item in batch if isinstance(item, dict) for event in _event(item)]


def _event(item: dict[str, Any]) -> list[FeedbackEvent]:
    name = item.get("event")
    if name == "bounce":
        # type "blocked": refused for the sender or content, not the address.
        kind, permanent = FeedbackKind.BOUNCE, item.get("type", "bounce") == "bounce"
    elif name == "dropped":  # SendGrid did not send it (its own suppression list)
        kind, permanent = FeedbackKind.BOUNCE, False
    elif name == "deferred":
        kind, permanent = FeedbackKind.DELAY, False
    elif name == "delivered":
        kind, permanent = FeedbackKind.DELIVERED, False
    elif name == "spamreport":
        kind, permanent = FeedbackKind.COMPLAINT, False
    else:
        return []
    return [
        FeedbackEvent(
            kind,
            source="sendgrid",
            recipient=str(item.get("email", "")),
            permanent=permanent,
            status=str(item.get("status", "")) if kind == FeedbackKind.BOUNCE else "",
            diagnostic=str(item.get("reason") or item.get("response") or ""),
            message_id=item.get("smtp-id"),
            provider_event_id=item.get("sg_event_id"),
        )
    ]
