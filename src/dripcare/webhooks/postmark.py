"""Postmark webhooks. Postmark does not sign its requests: the webhook URL carries HTTP basic
auth credentials that the operator chose, and those are what is checked."""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from typing import Any

from dripcare.sending.feedback import FeedbackEvent, FeedbackKind
from dripcare.sending.transports import POSTMARK_METADATA_KEY
from dripcare.webhooks.signing import Rejected


def check_basic_auth(authorization: str | None, user: str, password: str) -> None:
    """Raise Rejected unless the Authorization header carries exactly these credentials."""
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        raise Rejected("no HTTP basic auth: put the credentials in the webhook's URL or settings")
    try:
        given_user, _, given_password = base64.b64decode(encoded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise Rejected("malformed basic auth credentials") from None
    # Both compared, always: which one was wrong must not show in the timing.
    user_ok = hmac.compare_digest(given_user.encode(), user.encode())
    password_ok = hmac.compare_digest(given_password.encode(), password.encode())
    if not (user_ok and password_ok):
        raise Rejected("wrong webhook user or password")


# Bounce types that say the address itself is bad; a 5.7.x code in Details still overrides.
PERMANENT = {"HardBounce", "BadEmailAddress"}
# Bounce types that are not about delivery at all (autoresponders, subscribe requests, …).
NOT_DELIVERY = {
    "AutoResponder",
    "Subscribe",
    "Unsubscribe",
    "AddressChange",
    "OpenRelayTest",
    "ChallengeVerification",
    "VirusNotification",
    "InboundError",
    "TemplateRenderingFailed",
    "SMTPApiError",
}
STATUS_CODE = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
MESSAGE_ID = re.compile(r"^Message-ID:\s*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)


def events(record: dict[str, Any]) -> list[FeedbackEvent]:
    """A Bounce, SpamComplaint or Delivery record as feedback; [] for other records."""
    kind, bounce_type = record.get("RecordType"), str(record.get("Type", ""))
    if kind == "Delivery":
        return [
            _event(
                record,
                FeedbackKind.DELIVERED,
                recipient=str(record.get("Recipient", "")),
                event_id=f"delivery:{record.get('MessageID')}:{record.get('Recipient')}",
            )
        ]
    if kind == "SpamComplaint" or bounce_type == "SpamComplaint":
        return [_event(record, FeedbackKind.COMPLAINT)]
    if kind != "Bounce" or bounce_type in NOT_DELIVERY:
        return []
    details = str(record.get("Details", ""))
    found = STATUS_CODE.search(details)
    if bounce_type == "Transient":
        return [_event(record, FeedbackKind.DELAY, status=found[1] if found else "")]
    return [
        _event(
            record,
            FeedbackKind.BOUNCE,
            permanent=bounce_type in PERMANENT,
            status=found[1] if found else "",
        )
    ]


def _event(
    record: dict[str, Any],
    kind: FeedbackKind,
    recipient: str | None = None,
    event_id: str | None = None,
    **fields: Any,
) -> FeedbackEvent:
    metadata = record.get("Metadata") or {}
    message_id = metadata.get(POSTMARK_METADATA_KEY)  # set by our SMTP header: every record type
    if not message_id and (found := MESSAGE_ID.search(str(record.get("Content") or ""))):
        message_id = found[1]  # only with "Include bounce content"
    diagnostic = " ".join(str(record.get(k) or "") for k in ("Description", "Details")).strip()
    return FeedbackEvent(
        kind,
        source="postmark",
        recipient=recipient if recipient is not None else str(record.get("Email", "")),
        diagnostic=diagnostic,
        message_id=message_id,
        provider_event_id=event_id or f"{record.get('RecordType')}:{record.get('ID')}",
        **fields,
    )
