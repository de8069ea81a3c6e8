"""A circuit per transport, against real SMTP servers: a clinic's own server refusing us pauses
that clinic only, alerts reach people through a transport that works (the operator through a
webhook), and sending resumes with each email sent once."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import time_machine
from sqlalchemy import select

from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.models import (
    AlertKind,
    AlertStatus,
    Clinic,
    ClinicAlert,
    Message,
    MessageStatus,
    TransportCircuit,
)
from dripcare.outbox import checkins
from dripcare.outbox.dispatch import Claim, dispatch_tick
from dripcare.sending import alerts, circuit, clinic_transports, delivery, transport_alerts
from dripcare.sending.smtp_replies import Stage
from dripcare.sending.transports import TransportFailure, transport_from_url
from tests.conftest import free_port
from tests.factories import make_clinic, make_enrollment, send_due
from tests.smtp_server import SMTPServer
from tests.test_checkins import Webhook

pytestmark = pytest.mark.usefixtures("daytime")  # conftest: a working morning
REFUSED = "550 5.7.1 Sender address not verified"


@pytest.fixture
def own_server() -> Iterator[SMTPServer]:
    server = SMTPServer(free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def operator_hook(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Webhook]:
    hook = Webhook(failures=0)
    monkeypatch.setattr(settings, "operator_webhook_url", hook.url)
    monkeypatch.setattr(settings, "operator_webhook_secret", "operator-secret")
    yield hook
    hook.server.shutdown()


def own_clinic(settings: Settings, server: SMTPServer, slug: str) -> int:
    clinic_id = make_clinic(name=f"Clinic {slug.upper()}", sender=f"care@{slug}.example")
    with session_scope() as session:
        clinic = session.get(Clinic, clinic_id)
        assert clinic is not None
        clinic_transports.set_smtp_url(session, settings, clinic, server.url)
    return clinic_id


def due_now(settings: Settings, clinic: int, email: str) -> int:
    return make_enrollment(settings, clinic, datetime.now(UTC) - timedelta(hours=3), email=email)


def deliver_alerts(settings: Settings, platform: SMTPServer) -> dict[str, int]:
    with httpx.Client() as http:
        transport = transport_from_url(platform.url, 5)
        return alerts.deliver_due(session_scope, transport, http, settings=settings)


def circuits() -> dict[str, TransportCircuit]:
    with session_scope() as session:
        return {c.transport: c for c in circuit.circuits(session)}


def messages_of(clinic: int) -> list[Message]:
    with session_scope() as session:
        return list(session.scalars(select(Message).where(Message.clinic_id == clinic)))


def alert_rows() -> list[ClinicAlert]:
    with session_scope() as session:
        return list(session.scalars(select(ClinicAlert).order_by(ClinicAlert.id)))


def test_a_clinic_server_refusing_our_sender_pauses_that_clinic_only_until_it_works(
    settings: Settings,
    smtp_server: SMTPServer,
    own_server: SMTPServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "operator_email", "ops@dripcare.example")
    a = own_clinic(settings, own_server, "a")
    b = make_clinic(name="Clinic B", sender="care@b.example")
    due_now(settings, a, "ann@example.com")
    due_now(settings, b, "bea@example.com")
    own_server.recorder.replies["mail"] = REFUSED

    first = send_due(smtp_server)  # one batch: A's and B's emails together
    opened = circuits()
    waiting = [(m.status, m.attempts) for m in messages_of(a) if m.last_error]
    alerted = deliver_alerts(settings, smtp_server)
    to_platform = {m["To"]: m for m in smtp_server.recorder.messages}

    due_now(settings, a, "amy@example.com")
    due_now(settings, b, "ben@example.com")
    claims: list[Claim] = []
    dispatch_tick(
        session_scope, claims.append, batch_size=100, max_per_tick=100, lease=timedelta(minutes=5)
    )
    claimed_clinics = {m.clinic_id for m in messages_of(a) + messages_of(b) if m.lease_token}

    own_server.recorder.replies.clear()
    probe_at = opened[circuit.key_for(a)].probe_at
    assert probe_at is not None
    platform = transport_from_url(smtp_server.url, 5)
    for claim in claims:  # as a worker would: B's emails go out, A's still wait for the probe
        delivery.send_batch(session_scope, claim.token, claim.message_ids, platform, settings)
    with time_machine.travel(probe_at + timedelta(minutes=1), tick=True):
        resumed = send_due(smtp_server)
        after = circuits()
        told = [(r.kind, r.clinic_id, r.channel) for r in alert_rows()]

    assert first["sent"] == 1 and first["deferred"] == 1
    assert set(opened) == {f"clinic:{a}"}  # the platform's circuit never opened
    assert opened[f"clinic:{a}"].stage == Stage.MAIL_FROM
    assert REFUSED in opened[f"clinic:{a}"].last_error
    assert waiting == [(MessageStatus.SCHEDULED, 0)]  # held: no attempt counted, not cancelled
    assert alerted == {"delivered": 2, "deferred": 0}
    assert "bea@example.com" in to_platform
    assert sorted(to_platform) == ["bea@example.com", "care@a.example", "ops@dripcare.example"]
    body = to_platform["care@a.example"].get_body(("plain",))
    assert body is not None and REFUSED in body.get_content()  # through the platform's server
    assert f"clinic:{a}" in body.get_content()
    assert claimed_clinics == {b}  # the paused clinic's rows are left alone
    assert resumed["sent"] >= 2 and not after[f"clinic:{a}"].is_open
    sent_a = [m for m in messages_of(a) if m.status == MessageStatus.SENT]
    ids = own_server.recorder.message_ids()
    assert len(sent_a) == 2 and sorted(ids) == sorted(m.message_id for m in sent_a)  # once each
    assert (AlertKind.RESUMED, a, "email") in told and (AlertKind.RESUMED, None, "operator") in told
    assert all(m["To"] != "bea@example.com" for m in own_server.recorder.messages)


def test_while_the_platform_refuses_us_the_operator_hears_by_webhook_and_clinics_by_their_own(
    settings: Settings,
    smtp_server: SMTPServer,
    own_server: SMTPServer,
    operator_hook: Webhook,
) -> None:
    a = own_clinic(settings, own_server, "a")
    b = make_clinic(name="Clinic B", sender="care@b.example")
    due_now(settings, a, "ann@example.com")
    due_now(settings, b, "bea@example.com")
    smtp_server.recorder.replies["mail"] = REFUSED

    sent = send_due(smtp_server)
    with session_scope() as session:  # A's patient reports a red flag while the platform is down
        message = session.scalars(
            select(Message).where(Message.clinic_id == a, Message.status == MessageStatus.SENT)
        ).one()
        checkins.record(session, message, worried=True, codes=["eye"])
    delivered = deliver_alerts(settings, smtp_server)
    rows = alert_rows()

    assert sent == {**sent, "sent": 1, "deferred": 1}  # A's own server took A's email
    assert set(circuits()) == {circuit.PLATFORM}
    assert [(r.kind, r.clinic_id, r.channel, r.status) for r in rows] == [
        (AlertKind.TRANSPORT, b, "email", AlertStatus.PENDING),  # waits for the platform
        (AlertKind.TRANSPORT, None, "operator-hook", AlertStatus.DELIVERED),
        (AlertKind.RED_FLAG, a, "email", AlertStatus.DELIVERED),
    ]
    assert delivered == {"delivered": 2, "deferred": 1}
    assert [m["To"] for m in own_server.recorder.messages] == ["ann@example.com", "care@a.example"]
    assert smtp_server.recorder.messages == []
    [(headers, event)] = operator_hook.requests
    raw = json.dumps(event).encode()
    signature = hmac.new(b"operator-secret", raw, hashlib.sha256).hexdigest()
    assert headers["Dripcare-Signature"] == f"sha256={signature}"
    assert event["type"] == "transport.paused" and event["data"]["clinic_id"] is None
    assert event["data"]["detail"].startswith("transport platform refused us at mail-from: 550")


def test_a_transports_password_never_reaches_an_alert_or_the_circuit(settings: Settings) -> None:
    clinic = make_clinic()
    failure = TransportFailure("cannot log in to smtp://ops:hunter2@mx.example:587", None, None)
    now = datetime.now(UTC)
    with session_scope() as session:
        circuit.record_failure(session, circuit.key_for(clinic), failure, now)
        transport_alerts.queue(session, circuit.key_for(clinic), failure, [clinic], now, settings)

    stored = [r.detail for r in alert_rows()] + [c.last_error for c in circuits().values()]
    assert stored and all("hunter2" not in text and "ops:***@mx" in text for text in stored)


def test_while_the_platform_waits_for_its_probe_the_dispatcher_claims_only_clinics_with_their_own(
    settings: Settings, own_server: SMTPServer
) -> None:
    a = own_clinic(settings, own_server, "a")
    b = make_clinic(name="Clinic B", sender="care@b.example")
    due_now(settings, a, "ann@example.com")
    due_now(settings, b, "bea@example.com")
    failure = TransportFailure("535 5.7.8 Authentication credentials invalid", 535, Stage.AUTH)
    with session_scope() as session:
        circuit.record_failure(session, circuit.PLATFORM, failure, datetime.now(UTC))

    claims: list[Claim] = []
    dispatch_tick(
        session_scope, claims.append, batch_size=100, max_per_tick=100, lease=timedelta(minutes=5)
    )

    claimed = {m.clinic_id for m in messages_of(a) + messages_of(b) if m.lease_token}
    assert len(claims) == 1 and claimed == {a}


def test_a_clinic_back_on_the_platforms_server_leaves_its_pause_behind(
    settings: Settings, own_server: SMTPServer
) -> None:
    a = own_clinic(settings, own_server, "a")
    failure = TransportFailure("535 5.7.8 Authentication credentials invalid", 535, Stage.AUTH)
    with session_scope() as session:
        circuit.record_failure(session, circuit.key_for(a), failure, datetime.now(UTC))
    with session_scope() as session:
        clinic = session.get(Clinic, a)
        assert clinic is not None
        clinic_transports.clear_smtp_url(session, clinic)

    assert circuits() == {}


def test_dripcare_send_sends_everything_that_can_go_and_lists_what_stayed_paused(
    settings: Settings,
    smtp_server: SMTPServer,
    own_server: SMTPServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from click.testing import CliRunner

    from dripcare.cli import main

    # Given clinic A's own server refusing us (its circuit open) and one email per batch
    monkeypatch.setattr(settings, "smtp_url", smtp_server.url)
    monkeypatch.setattr(settings, "batch_size", 1)
    a = own_clinic(settings, own_server, "a")
    b = make_clinic(name="Clinic B", sender="care@b.example")
    own_server.recorder.replies["mail"] = REFUSED
    due_now(settings, a, "ann@example.com")
    send_due(smtp_server)
    # When A has more due, oldest first, ahead of B's emails
    due_now(settings, a, "amy@example.com")
    due_now(settings, b, "bea@example.com")
    due_now(settings, b, "ben@example.com")
    result = CliRunner().invoke(main, ["send", "--json"], catch_exceptions=False)

    # Then B's emails all went, A's wait with the reason, and the exit status says so
    report = json.loads(result.output)
    assert result.exit_code == 1
    assert report["sent"] == 2
    assert sorted(m["To"] for m in smtp_server.recorder.messages if "b.example" in m["From"]) == [
        "bea@example.com",
        "ben@example.com",
    ]
    (paused,) = report["paused"]
    assert paused["transport"] == f"clinic:{a}" and paused["waiting"] == 1  # amy; ann backs off
    assert REFUSED in paused["reason"]
    assert {m.status for m in messages_of(a) if m.due_at <= datetime.now(UTC)} == {
        MessageStatus.SCHEDULED
    }


def test_dripcare_send_exits_0_when_nothing_is_paused(
    settings: Settings, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from dripcare.cli import main

    monkeypatch.setattr(settings, "smtp_url", smtp_server.url)
    due_now(settings, make_clinic(), "ann@example.com")

    result = CliRunner().invoke(main, ["send"], catch_exceptions=False)

    assert result.exit_code == 0
    assert "sent: 1" in result.output and "paused" not in result.output
