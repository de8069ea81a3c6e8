"""Amazon SES notifications (the JSON inside an SNS message) as feedback events.

Both shapes are read: identity notifications (`notificationType`) and configuration-set event
publishing (`eventType`). SES reports the envelope sender as `mail.source`, so a VERP address
names the message even when SES replaced the Message-ID.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from dripcare.sending.feedback import FeedbackEvent, FeedbackKind
from dripcare.sending.verp import token_in_address


def events(notification: dict[str, Any]) -> list[FeedbackEvent]:
    """One event per recipient the notification names; [] for types dripcare does not use."""
    kind = notification.get("notificationType") or notification.get("eventType")
    mail = notification.get("mail") or {}
    shared = FeedbackEvent(  # what every event of this notification has in common
        FeedbackKind.DELIVERED,
        source="ses",
        message_id=_message_id(mail),
        verp_token=token_in_address(str(mail.get("source", ""))),
    )
    if kind == "Bounce":
        bounce = notification.get("bounce") or {}
        permanent = bounce.get("bounceType") == "Permanent"
        return [
            replace(
                shared,
                kind=FeedbackKind.BOUNCE,
                recipient=str(r.get("emailAddress", "")),
                permanent=permanent,
                status=str(r.get("status", "")),
                diagnostic=str(r.get("diagnosticCode", "")),
                provider_event_id=f"{bounce.get('feedbackId')}:{r.get('emailAddress')}",
            )
            for r in bounce.get("bouncedRecipients", [])
        ]
    if kind == "Complaint":
        complaint = notification.get("complaint") or {}
        return [
            replace(
                shared,
                kind=FeedbackKind.COMPLAINT,
                recipient=str(r.get("emailAddress", "")),
                diagnostic=str(complaint.get("complaintFeedbackType", "")),
                provider_event_id=f"{complaint.get('feedbackId')}:{r.get('emailAddress')}",
            )
            for r in complaint.get("complainedRecipients", [])
        ]
    if kind == "Delivery":
        delivery = notification.get("delivery") or {}
        return [
            replace(
                shared,
                kind=FeedbackKind.DELIVERED,
                recipient=str(address),
                diagnostic=str(delivery.get("smtpResponse", "")),
                provider_event_id=f"{mail.get('messageId')}:delivery:{address}",
            )
            for address in delivery.get("recipients", [])
        ]
    if kind == "DeliveryDelay":
        delay = notification.get("deliveryDelay") or {}
        return [
            replace(
                shared,
                kind=FeedbackKind.DELAY,
                recipient=str(r.get("emailAddress", "")),
                status=str(r.get("status", "")),
                diagnostic=str(r.get("diagnosticCode", delay.get("delayType", ""))),
                provider_event_id=f"{mail.get('messageId')}:delay:{delay.get('timestamp')}",
            )
            for r in delay.get("delayedRecipients", [])
        ]
    return []


def _message_id(mail: dict[str, Any]) -> str | None:
    """Our Message-ID, from the original headers (SES includes them unless turned off)."""
    for header in mail.get("headers") or []:
        if str(header.get("name", "")).lower() == "message-id":
            return str(header.get("value"))
    common = mail.get("commonHeaders") or {}
    return str(common["messageId"]) if common.get("messageId") else None
