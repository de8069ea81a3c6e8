"""Reading DSNs and ARF reports in the shapes Postfix, Exim, Gmail, Outlook, Yahoo and AOL send."""

from __future__ import annotations

import pytest

from dripcare.sending.delivery_reports import parse
from dripcare.sending.feedback import FeedbackEvent, FeedbackKind
from tests.report_samples import report_sample

TOKEN = "m7-abcdefghijklmnop"
VERP = f"bounces+{TOKEN}@bounce.riverside.example"
MESSAGE_ID = "<0a1b2c3d4e5f@riverside.example>"
RECIPIENT = "pat@example.com"


def sample(name: str) -> bytes:
    return report_sample(name, VERP, MESSAGE_ID, RECIPIENT)


def only(name: str) -> FeedbackEvent:
    events = parse(sample(name))
    assert events is not None and len(events) == 1, events
    return events[0]


@pytest.mark.parametrize(
    ("name", "status", "words"),
    [
        ("dsn_postfix_user_unknown.eml", "5.1.1", "User unknown in virtual mailbox table"),
        ("dsn_exim.eml", "5.1.1", "550 5.1.1 The email account that you tried to reach"),
        ("dsn_gmail.eml", "5.1.1", "550-5.1.1 The email account that you tried to reach does"),
        ("dsn_outlook.eml", "5.1.10", "RESOLVER.ADR.RecipientNotFound; Recipient not found"),
    ],
)
def test_hard_bounces_give_status_diagnostic_recipient_and_the_message(
    name: str, status: str, words: str
) -> None:
    event = only(name)

    assert (event.kind, event.source, event.permanent) == (FeedbackKind.BOUNCE, "dsn", True)
    assert event.status == status
    assert words in event.diagnostic and "\n" not in event.diagnostic
    assert event.recipient == RECIPIENT
    assert event.message_id == MESSAGE_ID
    expected_token = None if name == "dsn_outlook.eml" else TOKEN  # sent to the From address
    assert event.verp_token == expected_token


def test_a_postfix_delay_warning_is_a_delay_not_a_bounce() -> None:
    event = only("dsn_postfix_delayed.eml")

    assert (event.kind, event.permanent, event.status) == (FeedbackKind.DELAY, False, "4.4.1")
    assert event.diagnostic.startswith("connect to mx.example.com")
    assert event.verp_token == TOKEN and event.message_id == MESSAGE_ID


def test_a_dmarc_refusal_is_permanent_with_its_policy_code() -> None:
    event = only("dsn_gmail_dmarc_policy.eml")

    assert (event.kind, event.permanent, event.status) == (FeedbackKind.BOUNCE, True, "5.7.26")


def test_the_token_is_found_in_the_returned_return_path_when_the_to_header_lacks_it() -> None:
    raw = sample("dsn_exim.eml").replace(f"To: {VERP}".encode(), b"To: care@riverside.example")
    raw = raw.replace(f"Envelope-to: {VERP}".encode(), b"Envelope-to: x@y")

    [event] = parse(raw) or []

    assert event.verp_token == TOKEN


def test_the_envelope_recipient_from_the_mail_server_is_used() -> None:
    raw = sample("dsn_outlook.eml")

    [event] = parse(raw, [VERP]) or []

    assert event.verp_token == TOKEN


@pytest.mark.parametrize("name", ["arf_yahoo.eml", "arf_aol.eml"])
def test_feedback_loop_abuse_reports_are_complaints(name: str) -> None:
    event = only(name)

    assert (event.kind, event.source) == (FeedbackKind.COMPLAINT, "arf")
    assert event.message_id == MESSAGE_ID
    assert event.verp_token == (TOKEN if name == "arf_yahoo.eml" else None)
    assert "abuse" in event.diagnostic


def test_other_feedback_types_and_other_mail_are_not_complaints() -> None:
    not_spam = sample("arf_aol.eml").replace(b"Feedback-Type: abuse", b"Feedback-Type: not-spam")
    plain = b"From: pat@example.com\r\nSubject: unsubscribe abc.def\r\n\r\nstop\r\n"

    assert parse(not_spam) == []
    assert parse(plain) is None
