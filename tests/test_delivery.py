"""Sending, against a real SMTP server: order, dates, retries, bounces, exactly-once."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select, update

from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.models import DeliveryAttempt, Message, MessageStatus, Patient
from dripcare.outbox.dispatch import claim_due
from dripcare.outbox.enrollment_changes import cancel
from dripcare.outbox.enrollment_queries import get_enrollment
from dripcare.sending import delivery
from dripcare.sending.transports import transport_from_url
from tests.conftest import free_port
from tests.factories import make_clinic, make_enrollment, send_due
from tests.smtp_server import SMTPServer

TREATED = datetime(2026, 11, 24, 19, 30, tzinfo=UTC)  # 14:30 in New York


pytestmark = pytest.mark.usefixtures("daytime")  # conftest: a working morning


def rows(enrollment_id: int | None = None) -> list[Message]:
    with session_scope() as session:
        query = select(Message).order_by(Message.due_at)
        if enrollment_id is not None:
            query = query.where(Message.enrollment_id == enrollment_id)
        found = list(session.scalars(query))
        for row in found:
            _ = row.step.key
        return found


def test_whole_sequence_arrives_in_order_at_the_right_times(
    settings: Settings, smtp_server: SMTPServer
) -> None:
    with time_machine.travel(TREATED, tick=False):
        clinic = make_clinic()
        enrollment = make_enrollment(settings, clinic, TREATED, first_name="Dana")
    planned = rows(enrollment)

    for index, message in enumerate(planned):
        with time_machine.travel(message.due_at - timedelta(seconds=1), tick=False):
            assert send_due(smtp_server)["sent"] == 0  # not a second early
        with time_machine.travel(message.due_at, tick=False):
            assert send_due(smtp_server)["sent"] == 1
        assert len(smtp_server.recorder.messages) == index + 1

    received = smtp_server.recorder.messages
    assert [m["Message-ID"] for m in received] == [m.message_id for m in planned]
    assert [email.utils.parsedate_to_datetime(m["Date"]) for m in received] == [
        m.due_at.replace(microsecond=0) for m in planned
    ]
    assert [m["Subject"] for m in received] == [m.step.subject for m in planned]
    assert all(m["To"] == "pat@example.com" for m in received)
    assert all("Dana" in m.get_body(("plain",)).get_content() for m in received)
    assert all(m.status == MessageStatus.SENT for m in rows(enrollment))


def test_headers_carry_one_click_unsubscribe_and_the_clinic_as_sender(
    settings: Settings, smtp_server: SMTPServer
) -> None:
    clinic = make_clinic(name="Skin & Co")
    make_enrollment(settings, clinic, datetime.now(UTC) - timedelta(hours=3))

    send_due(smtp_server)

    received = smtp_server.recorder.messages[0]
    unsubscribe = received["List-Unsubscribe"]
    (sender,) = received["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Skin & Co", "care@riverside.example")
    assert unsubscribe.startswith("<https://care.test/u/")
    assert "<mailto:unsubscribe@riverside.example?subject=unsubscribe" in unsubscribe
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert received.get_content_type() == "multipart/alternative"
    assert "Skin &amp; Co" in received.get_body(("html",)).get_content()
    assert "Skin & Co" in received.get_body(("plain",)).get_content()


@pytest.mark.parametrize(
    ("alert_email", "reply_to"),
    [
        ("front-desk@riverside.example", "front-desk@riverside.example"),
        ("", "care@riverside.example"),
    ],
)
def test_a_patient_reply_goes_to_the_clinic_staff(
    settings: Settings, smtp_server: SMTPServer, alert_email: str, reply_to: str
) -> None:
    make_enrollment(
        settings, make_clinic(alert_email=alert_email), datetime.now(UTC) - timedelta(hours=3)
    )

    send_due(smtp_server)

    assert smtp_server.recorder.messages[0]["Reply-To"] == reply_to


def test_a_sent_message_is_never_sent_again(settings: Settings, smtp_server: SMTPServer) -> None:
    clinic = make_clinic()
    make_enrollment(settings, clinic, datetime.now(UTC) - timedelta(hours=3))

    first, second = send_due(smtp_server), send_due(smtp_server)

    assert (first["sent"], second["sent"]) == (1, 0)
    assert len(smtp_server.recorder.messages) == 1


def test_smtp_down_defers_everything_then_sends_when_it_returns(
    settings: Settings, smtp_server: SMTPServer
) -> None:
    clinic = make_clinic()
    make_enrollment(settings, clinic, datetime.now(UTC) - timedelta(hours=3), email="a@example.com")
    make_enrollment(settings, clinic, datetime.now(UTC) - timedelta(hours=3), email="b@example.com")

    down = send_due(f"smtp://127.0.0.1:{free_port()}")
    waiting = [m for m in rows() if m.step.key == "day-0"]
    with time_machine.travel(datetime.now(UTC) + timedelta(hours=2)):
        up = send_due(smtp_server)

    assert down["deferred"] == 2 and down["sent"] == 0
    assert all(m.status == MessageStatus.SCHEDULED for m in waiting)
    assert all(m.due_at > datetime.now(UTC) for m in waiting)  # backed off, not hammering
    assert all("cannot reach SMTP server" in m.last_error for m in waiting)
    assert up["sent"] == 2
    assert sorted(smtp_server.recorder.message_ids()) == sorted(m.message_id for m in waiting)


def test_temporary_refusal_retries_with_backoff_and_keeps_the_message_id(
    settings: Settings, smtp_server: SMTPServer
) -> None:
    clinic = make_clinic()
    make_enrollment(settings, clinic, datetime.now(UTC) - timedelta(hours=3))
    smtp_server.recorder.rcpt_replies["pat@example.com"] = "451 4.7.1 greylisted, try later"

    assert send_due(smtp_server)["deferred"] == 1
    (deferred,) = [m for m in rows() if m.attempts]
    smtp_server.recorder.rcpt_replies.clear()
    with time_machine.travel(deferred.due_at + timedelta(seconds=1)):
        assert send_due(smtp_server)["sent"] == 1

    delay = deferred.due_at - deferred.updated_at
    (received,) = smtp_server.recorder.messages
    assert timedelta(seconds=40) < delay < timedelta(seconds=80)  # 60 s base ± 25 % jitter
    assert deferred.last_error.startswith("451")
    assert received["Message-ID"] == deferred.message_id
    with session_scope() as session:
        outcomes = session.scalars(
            select(DeliveryAttempt.outcome).order_by(DeliveryAttempt.id)
        ).all()
    assert outcomes == ["scheduled", "sent"]


def test_temporary_refusals_give_up_after_max_attempts(
    settings: Settings, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "max_attempts", 3)
    clinic = make_clinic()
    make_enrollment(settings, clinic, datetime.now(UTC) - timedelta(hours=3))
    smtp_server.recorder.rcpt_replies["pat@example.com"] = "452 4.2.2 mailbox full"

    later = datetime.now(UTC)
    for _ in range(3):
        later += timedelta(hours=2)
        with time_machine.travel(later):
            send_due(smtp_server)

    (failed,) = [m for m in rows() if m.attempts]
    assert (failed.status, failed.attempts) == (MessageStatus.FAILED, 3)
    assert failed.status_reason == "gave up after temporary failures"


def test_cancel_after_claim_stops_the_send(settings: Settings, smtp_server: SMTPServer) -> None:
    clinic = make_clinic()
    enrollment = make_enrollment(settings, clinic, datetime.now(UTC) - timedelta(hours=3))
    with session_scope() as session:
        claim = claim_due(session, limit=10, lease=timedelta(minutes=5))
    assert claim is not None
    with session_scope() as session:
        cancel(session, get_enrollment(session, enrollment))

    result = delivery.send_batch(
        session_scope, claim.token, claim.message_ids, transport_from_url(smtp_server.url), settings
    )

    assert result.sent == 0
    assert smtp_server.recorder.messages == []


def test_an_email_that_cannot_be_built_fails_alone_and_is_logged_without_the_address(
    settings: Settings, smtp_server: SMTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A stored address that slipped past validation (edited in the database) breaks one email."""
    clinic = make_clinic()
    broken = make_enrollment(settings, clinic, datetime.now(UTC) - timedelta(hours=3))
    make_enrollment(
        settings, clinic, datetime.now(UTC) - timedelta(hours=3), email="fine@example.com"
    )
    with session_scope() as session:
        session.execute(
            update(Patient)
            .where(Patient.id == get_enrollment(session, broken).patient_id)
            .values(email="pat@example.com\r\nBcc: eve@example.com")
        )

    result = send_due(smtp_server)

    assert (result["sent"], result["failed"]) == (1, 1)
    assert [m["To"] for m in smtp_server.recorder.messages] == ["fine@example.com"]
    (failed,) = [m for m in rows(broken) if m.status == MessageStatus.FAILED]
    assert failed.status_reason == "could not build the email"
    assert f"could not build message {failed.id}" in caplog.text
    assert "message withheld" in caplog.text
    assert "example.com" not in caplog.text
