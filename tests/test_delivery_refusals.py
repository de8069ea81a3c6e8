"""Refusals at each SMTP stage, against a real SMTP server: only a recipient's own refusal
suppresses; a refusal of our sender or login pauses sending and loses nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.models import Message, MessageStatus, Suppression
from tests.factories import make_clinic, make_enrollment, send_due
from tests.smtp_server import SMTPServer

pytestmark = pytest.mark.usefixtures("daytime")  # conftest: a working morning


def messages() -> list[Message]:
    with session_scope() as session:
        return list(session.scalars(select(Message).order_by(Message.id)))


def suppressed() -> list[str]:
    with session_scope() as session:
        return list(session.scalars(select(Suppression.email)))


def three_patients(settings: Settings) -> None:
    clinic = make_clinic()
    for name in ("ann", "bob", "cy"):
        treated = datetime.now(UTC) - timedelta(hours=3)
        make_enrollment(settings, clinic, treated, email=f"{name}@example.com")


def test_no_such_user_at_rcpt_suppresses_only_that_patient(
    settings: Settings, smtp_server: SMTPServer
) -> None:
    three_patients(settings)
    smtp_server.recorder.rcpt_replies["bob@example.com"] = "550 5.1.1 no such user"

    result = send_due(smtp_server.url)

    assert (result["sent"], result["failed"]) == (2, 1)
    assert suppressed() == ["bob@example.com"]
    assert sorted(m["To"] for m in smtp_server.recorder.messages) == [
        "ann@example.com",
        "cy@example.com",
    ]


@pytest.mark.parametrize(
    ("stage", "reply"),
    [
        ("connect", "554 5.7.1 Your IP address is listed"),
        ("ehlo", "550 5.7.1 Hostname refused"),
        ("starttls", "454 4.7.0 TLS not available due to local problem"),
        ("mail", "550 5.7.1 Sender address not verified"),
        ("mail", "553 5.1.8 Domain of sender address does not exist"),
        ("auth", "535 5.7.8 Authentication credentials invalid"),
        ("rcpt", "550 5.7.26 Unauthenticated email from riverside.example is not accepted"),
    ],
)
def test_a_refused_sender_or_login_suppresses_nobody_and_sends_each_once_when_fixed(
    settings: Settings, smtp_server: SMTPServer, stage: str, reply: str
) -> None:
    three_patients(settings)
    smtp_server.recorder.replies[stage] = reply
    url = {
        "auth": smtp_server.login_url(),
        "starttls": f"{smtp_server.url}?starttls=true",
    }.get(stage, smtp_server.url)
    # Fixed: by the server's admin, or for TLS by the operator's URL (this server has none).
    fixed_url = smtp_server.url if stage == "starttls" else url

    refused = send_due(url)
    waiting = [m for m in messages() if m.due_at <= datetime.now(UTC) or m.last_error]
    smtp_server.recorder.replies.clear()
    with time_machine.travel(datetime.now(UTC) + timedelta(hours=2)):
        fixed = send_due(fixed_url)

    assert (refused["sent"], refused["failed"], refused["cancelled"]) == (0, 0, 0)
    assert suppressed() == []
    assert len(waiting) == 3
    assert all(m.status == MessageStatus.SCHEDULED for m in waiting)
    assert all(m.attempts == 0 for m in waiting)  # the transport failed, not the messages
    assert all(reply[:3] in m.last_error for m in waiting)
    assert fixed["sent"] == 3
    assert sorted(smtp_server.recorder.message_ids()) == sorted(m.message_id for m in waiting)


def test_repeated_temporary_refusals_fail_the_message_without_suppressing(
    settings: Settings, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "max_attempts", 3)
    three_patients(settings)
    smtp_server.recorder.rcpt_replies["bob@example.com"] = "450 4.2.1 mailbox busy, try later"

    later = datetime.now(UTC)
    for _ in range(3):
        later += timedelta(hours=2)
        with time_machine.travel(later):
            send_due(smtp_server.url)

    (failed,) = [m for m in messages() if m.status == MessageStatus.FAILED]
    assert failed.attempts == 3
    assert failed.status_reason == "gave up after temporary failures"
    assert failed.last_error.startswith("450 4.2.1")
    assert suppressed() == []


def test_content_refused_at_data_fails_those_messages_and_suppresses_nobody(
    settings: Settings, smtp_server: SMTPServer
) -> None:
    three_patients(settings)
    smtp_server.recorder.replies["data"] = "554 5.6.0 Message content rejected"

    result = send_due(smtp_server.url)

    assert (result["sent"], result["failed"], result["deferred"]) == (0, 3, 0)
    failed = [m for m in messages() if m.status == MessageStatus.FAILED]
    assert all(m.last_error.startswith("554 5.6.0") for m in failed)
    assert suppressed() == []
