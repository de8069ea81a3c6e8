"""What the receiving side says about an email after it left: bounces, delays, complaints,
deliveries. One entry point, `apply`, for DSNs and ARF reports (`dripcare inbound`) and for
providers' webhooks.

Only a permanent bounce about the recipient (5.1.x bad mailbox, 5.2.1 disabled) or a complaint
stops a patient's emails. A 5.7.x policy refusal or a full mailbox says nothing about the
address: it is recorded and logged as a sending problem; a delay is only recorded. Any bounced
email becomes `failed`: it did not reach the patient. When emails were stopped, the clinic is
alerted to phone the patient (unreachable.py). Each applied
report is a row in the message's delivery attempts (the history the admin shows), keyed so
that a replayed webhook or a DSN fed twice changes nothing the second time.
"""

from __future__ import annotations

import enum
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dripcare.config import Settings
from dripcare.models import (
    AttemptOutcome,
    DeliveryAttempt,
    Enrollment,
    Message,
    MessageStatus,
    Patient,
    SuppressionSource,
    utcnow,
)
from dripcare.outbox import suppression
from dripcare.sending import smtp_replies, unreachable, verp

log = logging.getLogger(__name__)


class FeedbackKind(enum.StrEnum):
    BOUNCE = "bounce"
    DELAY = "delay"
    COMPLAINT = "complaint"
    DELIVERED = "delivered"


@dataclass(frozen=True)
class FeedbackEvent:
    kind: FeedbackKind
    source: str  # "dsn", "arf", "ses", "postmark", "sendgrid", "mailgun"
    recipient: str = ""  # the address the report is about
    permanent: bool = False  # a bounce that will not get better (5.x.x / hard)
    status: str = ""  # RFC 3463 enhanced code, e.g. "5.1.1"
    diagnostic: str = ""  # the remote server's words, trimmed, no patient data added
    verp_token: str | None = None
    message_id: str | None = None  # our Message-ID, with or without <>
    provider_event_id: str | None = None  # for replay detection


@dataclass(frozen=True)
class Applied:
    """What `apply` did. `found`: the report named one of our messages."""

    found: bool
    message_pk: int | None = None
    replay: bool = False  # already applied once: nothing changed
    suppressed: bool = False  # the address is now on the clinic's suppression list
    cancelled: int = 0  # the patient's unsent emails that were stopped
    alerted: bool = False  # the clinic is told to phone the patient


def apply(
    session: Session, event: FeedbackEvent, settings: Settings, now: datetime | None = None
) -> Applied:
    """Record one report against its message and act on it; unknown messages and replays are
    harmless. Flushes, never commits: the caller's transaction decides."""
    now = now or utcnow()
    message = _find(session, event, settings)
    if message is None:
        log.info("%s %s report names no message of ours; ignored", event.source, event.kind)
        return Applied(found=False)
    if not _record(session, message, event, now):
        return Applied(found=True, message_pk=message.id, replay=True)
    if event.kind == FeedbackKind.BOUNCE:
        _bounced_after_sending(message, event, now)
    if not stops_emails(event):
        return Applied(found=True, message_pk=message.id)
    patient_id, cancelled = _suppress(session, message, event, now)
    if cancelled:  # aftercare was still ahead: someone has to phone the patient
        unreachable.queue(session, message.clinic_id, patient_id, now)
    return Applied(
        found=True,
        message_pk=message.id,
        suppressed=True,
        cancelled=cancelled,
        alerted=bool(cancelled),
    )


def stops_emails(event: FeedbackEvent) -> bool:
    """A complaint, or a permanent bounce about the recipient itself."""
    if event.kind == FeedbackKind.COMPLAINT:
        return True
    return event.kind == FeedbackKind.BOUNCE and event.permanent and about_recipient(event.status)


def about_recipient(status: str) -> bool:
    """Whether an enhanced status code (RFC 3463) blames the address, by the same rule as
    replies during sending (smtp_replies.blames_recipient). No code at all, as some
    providers' hard bounces come, is taken as the provider's word that the address is bad."""
    if not status:
        return True
    code = smtp_replies.enhanced_code(status)
    return code is not None and code[0] == 5 and smtp_replies.blames_recipient(*code[1:])


def _find(session: Session, event: FeedbackEvent, settings: Settings) -> Message | None:
    if event.verp_token:
        message_pk = verp.read_token(settings, event.verp_token)
        found = session.get(Message, message_pk) if message_pk is not None else None
        if found is not None:
            return found
    if event.message_id:
        bare = event.message_id.strip().strip("<>")
        return session.scalar(select(Message).where(Message.message_id == f"<{bare}>"))
    return None


def _key(event: FeedbackEvent) -> str:
    """Names the report: the provider's event id, else what it says (a DSN fed twice)."""
    if event.provider_event_id:
        return f"{event.source}:{event.provider_event_id}"[:200]
    said = "\0".join((event.kind, event.status, event.recipient.lower(), event.diagnostic))
    return f"{event.source}:{hashlib.sha256(said.encode()).hexdigest()}"


def _record(session: Session, message: Message, event: FeedbackEvent, now: datetime) -> bool:
    """Add the report to the message's history; False when it is there already."""
    key = _key(event)
    taken = select(DeliveryAttempt.id).where(
        DeliveryAttempt.message_pk == message.id, DeliveryAttempt.feedback_key == key
    )
    if session.scalar(taken) is not None:
        return False
    words = " ".join(part for part in (event.status, event.diagnostic[:500]) if part)
    attempt = DeliveryAttempt(
        message_pk=message.id,
        at=now,
        outcome=AttemptOutcome(event.kind),
        detail=f"{event.source}: {words}" if words else event.source,
        feedback_key=key,
    )
    try:
        with session.begin_nested():  # the same report applied at once by another process
            session.add(attempt)
    except IntegrityError:
        return False
    return True


def _bounced_after_sending(message: Message, event: FeedbackEvent, now: datetime) -> None:
    """The email was accepted and then bounced: it did not reach the patient, so it is failed,
    as the outbox and the dashboard's failed emails show. A bounce that is not about the
    address (policy, authentication, a relay giving up) is a sending problem a person must fix.
    """
    if not stops_emails(event):
        log.warning(
            "message %s bounced after it was sent, not because of the address (%s %s): "
            "check the sending setup (SPF, DKIM, DMARC, the relay)",
            message.id,
            event.source,
            event.status or "no status",
        )
    if message.status != MessageStatus.SENT:
        return
    message.status = MessageStatus.FAILED
    message.status_reason = f"bounced after it was sent ({event.status or event.source})"
    message.last_error = event.diagnostic  # erasure clears it; it may quote the address
    message.updated_at = now


def _suppress(
    session: Session, message: Message, event: FeedbackEvent, now: datetime
) -> tuple[int, int]:
    """Suppress the address; returns the patient and how many unsent emails were stopped."""
    patient_id, email = session.execute(
        select(Patient.id, Patient.email)
        .join(Enrollment, Enrollment.patient_id == Patient.id)
        .where(Enrollment.id == message.enrollment_id)
    ).one()
    complaint = event.kind == FeedbackKind.COMPLAINT
    source = SuppressionSource.COMPLAINT if complaint else SuppressionSource.BOUNCE
    reason = _reason(event)
    suppression.add(session, [suppression.Entry(message.clinic_id, email, reason, source)], now)
    return patient_id, suppression.cancel_unsent(session, patient_id, unreachable.STOPPED[source])


def _reason(event: FeedbackEvent) -> str:
    if event.kind == FeedbackKind.COMPLAINT:
        return f"marked as spam ({event.source})"
    words = " ".join(part for part in (event.status, event.diagnostic) if part)
    return f"bounced ({event.source}): {words}" if words else f"bounced ({event.source})"
