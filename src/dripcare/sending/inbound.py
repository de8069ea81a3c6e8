"""Mail that comes back to dripcare: bounce and complaint reports (to the VERP bounce address),
and mail sent to the unsubscribe mailbox (the mailto: in List-Unsubscribe).

The mailto link pre-fills the subject `unsubscribe <token>`; the token is looked for in the
subject first, then in the plain-text body, since some clients drop or rewrite subjects.
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterable
from email.message import EmailMessage

from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.models import SuppressionSource
from dripcare.outbox.suppression import Unsubscribed, unsubscribe_by_message
from dripcare.people.links import message_for_token
from dripcare.sending import delivery_reports, feedback, verp

_CANDIDATE = re.compile(r"[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+")


def process_report(
    raw: bytes, settings: Settings, envelope_recipients: Iterable[str] = ()
) -> list[feedback.Applied] | None:
    """Apply a DSN or ARF report; None if the mail is no report (then it may be an unsubscribe).

    Other mail to the bounce address (out-of-office and other auto-replies go to the envelope
    sender) is ignored, never read as an unsubscribe: it often quotes the email, and with it
    the unsubscribe link's token.
    """
    events = delivery_reports.parse(raw, envelope_recipients)
    if events is None:
        addresses = delivery_reports.addressed_to(raw, envelope_recipients)
        return [] if any(verp.is_bounce_address(settings, a) for a in addresses) else None
    with session_scope() as session:
        return [feedback.apply(session, event, settings) for event in events]


def summary(applied: list[feedback.Applied]) -> dict[str, int]:
    """What `dripcare inbound` prints about a report. A report about no message of ours is
    not an error: failing would make the mail server bounce the bounce."""
    return {
        "reports": len(applied),
        "matched": sum(a.found for a in applied),
        "replays": sum(a.replay for a in applied),
        "suppressed": sum(a.suppressed for a in applied),
        "cancelled_messages": sum(a.cancelled for a in applied),
    }


def process_unsubscribe_mail(raw: bytes, settings: Settings) -> Unsubscribed | None:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    texts = (str(message.get("Subject", "")), _plain_body(message))
    with session_scope() as session:
        for candidate in (found for text in texts for found in _CANDIDATE.findall(text)):
            named = message_for_token(session, settings, candidate)
            if named is not None:
                return unsubscribe_by_message(session, named.id, SuppressionSource.MAILTO)
    return None


def _plain_body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    return part.get_content() if part is not None else ""
