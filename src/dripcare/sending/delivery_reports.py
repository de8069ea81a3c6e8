"""Bounce and complaint reports that arrive by email, read into feedback events.

DSNs are RFC 3464 `multipart/report; report-type=delivery-status` (Postfix, Exim, Gmail,
Microsoft all send them); complaints from mailbox providers' feedback loops are RFC 5965 ARF,
`report-type=feedback-report` (Yahoo, AOL). Both are read with the stdlib email package: a
report names its message by the VERP address it was sent to (or, in an ARF report, the
original envelope sender), else by the Message-ID in the returned headers. flufl.bounce was
considered and not used: it guesses addresses from free text, keeps neither status nor
diagnostic, does not read ARF, and has had no release since 2020; with VERP there is nothing
to guess.
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterable, Iterator
from email.message import EmailMessage, Message
from email.parser import HeaderParser

from dripcare.sending.feedback import FeedbackEvent, FeedbackKind
from dripcare.sending.verp import token_in_address

_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_COMPLAINTS = {"abuse", "fraud", "virus"}  # not "not-spam", "auth-failure": not the patient's
_ACTIONS = {
    "failed": FeedbackKind.BOUNCE,
    "delayed": FeedbackKind.DELAY,
    "delivered": FeedbackKind.DELIVERED,
}
MAX_DIAGNOSTIC = 500


def parse(raw: bytes, envelope_recipients: Iterable[str] = ()) -> list[FeedbackEvent] | None:
    """The events a report carries ([] if none concern us); None if it is no report at all.

    `envelope_recipients`: where the MTA delivered it (e.g. Postfix's ${original_recipient}),
    which holds the VERP token even when the To header does not.
    """
    report = _parsed(raw)
    if report.get_content_type() != "multipart/report":
        return None
    kind = str(report.get_param("report-type", "")).lower()
    addressed = [*envelope_recipients, *_header_addresses(report)]
    if kind == "delivery-status":
        return list(_dsn_events(report, addressed))
    if kind == "feedback-report":
        return list(_arf_events(report, addressed))
    return None


def addressed_to(raw: bytes, envelope_recipients: Iterable[str] = ()) -> list[str]:
    """Where a mail was sent: the envelope recipients, then Delivered-To, X-Original-To, To."""
    return [*envelope_recipients, *_header_addresses(_parsed(raw))]


def _parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _dsn_events(report: EmailMessage, addressed: list[str]) -> Iterator[FeedbackEvent]:
    status_part = _part(report, "message/delivery-status")
    if status_part is None:
        return
    token, message_id = _names(report, addressed)
    for fields in _blocks(status_part)[1:]:  # the first block is about the whole message
        kind = _ACTIONS.get(str(fields.get("Action", "")).strip().lower())
        if kind is None:  # relayed, expanded: nothing happened to the recipient yet
            continue
        diagnostic = _diagnostic(str(fields.get("Diagnostic-Code", "")))
        status = _status(str(fields.get("Status", "")), diagnostic)
        yield FeedbackEvent(
            kind,
            "dsn",
            recipient=_address(str(fields.get("Final-Recipient", ""))),
            permanent=kind == FeedbackKind.BOUNCE and status.startswith("5."),
            status=status,
            diagnostic=diagnostic,
            verp_token=token,
            message_id=message_id,
        )


def _arf_events(report: EmailMessage, addressed: list[str]) -> Iterator[FeedbackEvent]:
    feedback = _part(report, "message/feedback-report")
    if feedback is None:
        return
    [fields] = _blocks(feedback)[:1] or [Message()]
    if str(fields.get("Feedback-Type", "")).strip().lower() not in _COMPLAINTS:
        return
    original_from = str(fields.get("Original-Mail-From", ""))
    token, message_id = _names(report, [original_from, *addressed])
    yield FeedbackEvent(
        FeedbackKind.COMPLAINT,
        "arf",
        recipient=_address(str(fields.get("Original-Rcpt-To", ""))),
        diagnostic=f"Feedback-Type: {fields.get('Feedback-Type')}",
        verp_token=token,
        message_id=message_id,
    )


def _names(report: EmailMessage, addressed: list[str]) -> tuple[str | None, str | None]:
    """The VERP token and the original Message-ID a report gives, as far as it gives them."""
    original = _returned_headers(report)
    if original is not None:
        addressed = [*addressed, str(original.get("Return-Path", ""))]
    token = next((t for a in addressed if (t := token_in_address(a)) is not None), None)
    message_id = str(original.get("Message-ID", "")).strip() if original is not None else ""
    return token, message_id or None


def _header_addresses(report: EmailMessage) -> list[str]:
    names = ("Delivered-To", "X-Original-To", "To")
    return [str(value) for name in names for value in report.get_all(name, [])]


def _returned_headers(report: EmailMessage) -> Message | None:
    """The headers of our original message, returned whole (message/rfc822) or alone."""
    for part in report.iter_parts():
        kind = part.get_content_type()
        payload = part.get_payload()
        if kind in ("message/rfc822", "message/global") and isinstance(payload, list):
            return next((m for m in payload if isinstance(m, Message)), None)
        if kind in ("text/rfc822-headers", "text/rfc822-header"):
            return HeaderParser(policy=email.policy.default).parsestr(str(payload))
    return None


def _part(report: EmailMessage, content_type: str) -> Message | None:
    return next((p for p in report.iter_parts() if p.get_content_type() == content_type), None)


def _blocks(part: Message) -> list[Message]:
    """The field blocks of a delivery-status or feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    parser = HeaderParser(policy=email.policy.default)
    text = str(payload).replace("\r\n", "\n")
    return [parser.parsestr(block) for block in text.split("\n\n") if block.strip()]


def _address(field: str) -> str:
    """`rfc822; pat@example.com` → `pat@example.com`."""
    return field.partition(";")[2].strip().strip("<>") if ";" in field else field.strip("<> ")


def _diagnostic(field: str) -> str:
    text = field.partition(";")[2] if ";" in field[:12] else field
    return " ".join(text.split())[:MAX_DIAGNOSTIC]


def _status(field: str, diagnostic: str) -> str:
    """The enhanced status code; from the remote's own words when the MTA only says X.0.0
    (Exim reports 5.0.0 for a remote 550 5.1.1)."""
    found = _ENHANCED.search(field)
    status = found.group(0) if found else ""
    if not status or status.endswith(".0.0"):
        said = _ENHANCED.search(diagnostic)
        if said is not None and said[1] == (status or said[1])[0]:
            return said.group(0)
    return status
