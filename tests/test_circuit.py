"""The transport circuit breaker, against a real SMTP server: a refused sender pauses sending
for every worker, nothing is lost or counted, and one probe resumes it once the server works."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import time_machine
from sqlalchemy import select

from dripcare import tasks
from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.models import (
    AlertKind,
    ClinicAlert,
    Message,
    MessageStatus,
    Suppression,
    TransportCircuit,
)
from dripcare.outbox import dispatch
from dripcare.outbox.dispatch import claim_due
from dripcare.outbox.enrollment_changes import cancel
from dripcare.outbox.enrollment_queries import get_enrollment
from dripcare.sending import alerts, circuit, delivery
from dripcare.sending.smtp_replies import Stage
from dripcare.sending.transports import TransportFailure, transport_from_url
from tests.factories import DAYTIME, make_clinic, make_enrollment, send_due
from tests.smtp_server import SMTPServer


@pytest.fixture(autouse=True)
def daytime() -> Iterator[None]:
    with time_machine.travel(DAYTIME, tick=True):
        yield


def state() -> TransportCircuit | None:
    with session_scope() as session:
        return session.get(TransportCircuit, circuit.PLATFORM)


def refuse_login() -> None:
    """The platform's server has just refused its login: the circuit is open until its probe."""
    failure = TransportFailure("535 5.7.8 Authentication credentials invalid", 535, Stage.AUTH)
    with session_scope() as session:
        circuit.record_failure(session, circuit.PLATFORM, failure, datetime.now(UTC))


def due_now(settings: Settings, clinic: int, email: str) -> int:
    return make_enrollment(settings, clinic, datetime.now(UTC) - timedelta(hours=3), email=email)


def test_a_refused_sender_opens_the_circuit_pauses_sending_then_one_probe_resumes_it(
    settings: Settings, smtp_server: SMTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    clinic = make_clinic()
    due_now(settings, clinic, "ann@example.com")
    smtp_server.recorder.replies["mail"] = "550 5.7.1 Sender address not verified"

    send_due(smtp_server)
    opened = state()
    smtp_server.recorder.replies.clear()  # fixed, but the circuit waits for its probe time
    late = due_now(settings, clinic, "bob@example.com")
    paused = send_due(smtp_server)
    arrived_while_paused = len(smtp_server.recorder.messages)
    with session_scope() as session:
        backlog = dispatch.paused_backlog(session)
    with session_scope() as session:
        held = session.scalars(
            select(Message).where(Message.enrollment_id == late).order_by(Message.due_at)
        ).first()
    assert held is not None
    assert opened is not None and opened.probe_at is not None
    with time_machine.travel(opened.probe_at + timedelta(hours=1)):
        resumed = send_due(smtp_server)

    assert opened.is_open and opened.stage == Stage.MAIL_FROM
    assert "550 5.7.1 Sender address not verified" in opened.last_error
    assert any(
        r.levelno == logging.ERROR and "transport platform paused at mail-from" in r.getMessage()
        for r in caplog.records
    )
    assert paused["sent"] == 0 and arrived_while_paused == 0
    assert (held.status, held.attempts) == (MessageStatus.SCHEDULED, 0)
    # left unclaimed, like the dispatcher does; `dripcare send` lists it with the reason
    assert [(b.transport, b.waiting) for b in backlog] == [(circuit.PLATFORM, 1)]
    assert "550 5.7.1 Sender address not verified" in backlog[0].reason
    assert resumed["sent"] == 2
    assert sorted(m["To"] for m in smtp_server.recorder.messages) == [
        "ann@example.com",
        "bob@example.com",
    ]
    assert len(set(smtp_server.recorder.message_ids())) == 2  # each exactly once
    closed = state()
    assert closed is not None and not closed.is_open
    with session_scope() as session:
        assert session.scalars(select(Suppression)).all() == []


def test_a_probe_that_fails_again_keeps_the_circuit_open_and_backs_off_further(
    settings: Settings, smtp_server: SMTPServer
) -> None:
    clinic = make_clinic()
    due_now(settings, clinic, "ann@example.com")
    smtp_server.recorder.replies["mail"] = "550 5.7.1 Sender address not verified"

    send_due(smtp_server)
    first = state()
    assert first is not None and first.probe_at is not None
    with time_machine.travel(first.probe_at + timedelta(hours=1)):
        send_due(smtp_server)
        second = state()

    assert second is not None and second.probe_at is not None
    assert (second.is_open, second.failures) == (True, 2)
    assert second.probe_at - (first.probe_at + timedelta(hours=1)) > timedelta(seconds=40)
    assert smtp_server.recorder.messages == []


def test_only_one_batch_at_a_time_probes_an_open_transport(settings: Settings) -> None:
    failure = TransportFailure("550 5.7.1 Sender address not verified", 550, Stage.MAIL_FROM)
    now = datetime.now(UTC)
    with session_scope() as session:
        circuit.record_failure(session, "smtp://mx.example", failure, now)
    later = now + timedelta(minutes=30)
    with session_scope() as session:
        gates = [circuit.gate(session, "smtp://mx.example", later) for _ in range(2)]
        other = circuit.gate(session, "smtp://other.example", later)

    assert gates == [circuit.Gate.PROBE, circuit.Gate.PAUSED]
    assert other == circuit.Gate.CLOSED  # circuits are per transport


def test_opening_tells_the_clinic_and_the_operator_once_through_the_alert_outbox(
    settings: Settings, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "operator_email", "ops@dripcare.example")
    clinic = make_clinic()
    due_now(settings, clinic, "ann@example.com")
    smtp_server.recorder.replies["mail"] = "550 5.7.1 Sender address not verified"

    send_due(smtp_server)
    due_now(settings, clinic, "bob@example.com")
    send_due(smtp_server)  # paused: no second alert
    with session_scope() as session:
        queued = session.scalars(select(ClinicAlert).order_by(ClinicAlert.id)).all()
    smtp_server.recorder.replies.clear()
    with httpx.Client() as http:
        delivered = alerts.deliver_due(session_scope, transport_from_url(smtp_server.url, 5), http)

    assert [(a.kind, a.channel) for a in queued] == [
        (AlertKind.TRANSPORT, "email"),
        (AlertKind.TRANSPORT, "operator"),
    ]
    assert delivered == {"delivered": 2, "deferred": 0}
    received = {m["To"]: m for m in smtp_server.recorder.messages}
    assert sorted(received) == ["care@riverside.example", "ops@dripcare.example"]
    body = received["care@riverside.example"].get_body(("plain",))
    assert body is not None
    assert "550 5.7.1 Sender address not verified" in body.get_content()
    assert "paused" in received["ops@dripcare.example"]["Subject"]


def test_the_dispatcher_claims_nothing_while_the_transport_waits_for_its_probe(
    settings: Settings,
) -> None:
    clinic = make_clinic()
    enrollment = due_now(settings, clinic, "ann@example.com")
    refuse_login()

    result = tasks.dispatch()

    assert result["claimed"] == 0
    with session_scope() as session:
        statuses = set(
            session.scalars(select(Message.status).where(Message.enrollment_id == enrollment))
        )
    assert statuses == {MessageStatus.SCHEDULED}


def test_a_probe_batch_that_reaches_no_server_leaves_the_probe_to_the_next_batch(
    settings: Settings, smtp_server: SMTPServer
) -> None:
    clinic = make_clinic()
    enrollment = due_now(settings, clinic, "ann@example.com")
    refuse_login()
    opened = state()
    assert opened is not None and opened.probe_at is not None
    later = opened.probe_at + timedelta(minutes=1)
    with time_machine.travel(later, tick=False):
        with session_scope() as session:
            claim = claim_due(session, limit=10, lease=timedelta(minutes=5))
            assert claim is not None
        with session_scope() as session:  # cancelled after the claim: the probe sends nothing
            cancel(session, get_enrollment(session, enrollment))
        transport = transport_from_url(smtp_server.url, 5)
        delivery.send_batch(session_scope, claim.token, claim.message_ids, transport, settings)
        given_back = state()
        due_now(settings, clinic, "bob@example.com")
        sent = send_due(smtp_server)

    assert given_back is not None and given_back.is_open
    assert given_back.probe_at is not None and given_back.probe_at <= later  # due: next batch
    assert sent["sent"] == 1
    closed = state()
    assert closed is not None and not closed.is_open
