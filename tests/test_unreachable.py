"""A patient whom aftercare emails can no longer reach: the clinic is alerted to phone them,
and the dashboard lists them, for a hard bounce and for a complaint alike."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, update

from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.models import AlertKind, AlertStatus, ClinicAlert, Message, MessageStatus, Patient
from dripcare.outbox import dashboard, suppression
from dripcare.outbox.dashboard import Scope
from dripcare.sending import alerts, unreachable
from dripcare.sending.feedback import Applied, FeedbackEvent, FeedbackKind, apply
from dripcare.sending.transports import SMTPTransport
from tests.factories import DAYTIME, make_clinic, make_enrollment
from tests.smtp_server import SMTPServer

pytestmark = pytest.mark.usefixtures("daytime")  # conftest: a working morning


def enrolled(settings: Settings, clinic: int, email: str) -> str:
    """Enroll a patient; returns the Message-ID of their first email."""
    enrollment = make_enrollment(settings, clinic, DAYTIME - timedelta(hours=3), email=email)
    with session_scope() as session:
        return (
            session.scalars(
                select(Message.message_id)
                .where(Message.enrollment_id == enrollment)
                .order_by(Message.due_at)
            ).first()
            or ""
        )


def report(kind: FeedbackKind, message_id: str, settings: Settings, **fields: object) -> Applied:
    event = FeedbackEvent(kind, "dsn", message_id=message_id, **fields)  # type: ignore[arg-type]
    with session_scope() as session:
        return apply(session, event, settings)


def unreachable_alerts() -> list[ClinicAlert]:
    with session_scope() as session:
        query = select(ClinicAlert).where(ClinicAlert.kind == AlertKind.UNREACHABLE)
        return list(session.scalars(query))


HARD = {"permanent": True, "status": "5.1.1", "diagnostic": "550 5.1.1 user unknown"}


def test_a_hard_bounce_with_aftercare_ahead_emails_the_clinic_to_phone_the_patient_once(
    settings: Settings, smtp_server: SMTPServer
) -> None:
    clinic = make_clinic(alert_email="nurse@riverside.example")
    pat = enrolled(settings, clinic, "pat@example.com")
    enrolled(settings, clinic, "sam@example.com")

    first = report(FeedbackKind.BOUNCE, pat, settings, **HARD)
    again = report(FeedbackKind.BOUNCE, pat, settings, **HARD)
    with httpx.Client() as http:
        delivered = alerts.deliver_due(
            session_scope, SMTPTransport("127.0.0.1", smtp_server.port), http
        )

    assert first.alerted and not again.alerted
    assert delivered == {"delivered": 1, "deferred": 0}
    (mail,) = smtp_server.recorder.messages
    text = mail.get_body(("plain",)).get_content()
    assert mail["To"] == "nurse@riverside.example"
    assert mail["Subject"].startswith("[Call the patient]")
    assert "pat@example.com" in text and "sam@example.com" not in text
    assert "550 5.1.1 user unknown" in text and f"Emails stopped: {first.cancelled}" in text
    assert [a.status for a in unreachable_alerts()] == [AlertStatus.DELIVERED]


def test_the_webhook_event_names_the_patient_by_id_only(settings: Settings) -> None:
    clinic = make_clinic(webhook_url="https://clinic.example/hook")
    pat = enrolled(settings, clinic, "pat@example.com")

    report(FeedbackKind.COMPLAINT, pat, settings)

    found = unreachable_alerts()
    assert sorted(a.channel for a in found) == ["email", "webhook"]
    with session_scope() as session:
        event = unreachable.event(session, session.get(ClinicAlert, found[0].id))  # type: ignore[arg-type]
    body = json.dumps({k: v for k, v in event.items() if not k.startswith("_")})
    assert event["type"] == "patient.unreachable" and event["data"]["cause"] == "complaint"
    assert "pat@example.com" not in body
    assert "marked one of the aftercare emails as spam" in event["_email"]["text"]


def test_no_alert_when_no_aftercare_was_ahead(settings: Settings) -> None:
    clinic = make_clinic()
    pat = enrolled(settings, clinic, "pat@example.com")
    with session_scope() as session:
        session.execute(update(Message).values(status=MessageStatus.SENT))

    done = report(FeedbackKind.BOUNCE, pat, settings, **HARD)

    assert done.suppressed and done.cancelled == 0 and not done.alerted
    assert unreachable_alerts() == []


def test_the_dashboard_lists_complaints_as_well_as_bounces(settings: Settings) -> None:
    clinic = make_clinic()
    pat = enrolled(settings, clinic, "pat@example.com")
    sam = enrolled(settings, clinic, "sam@example.com")
    enrolled(settings, clinic, "kim@example.com")

    report(FeedbackKind.BOUNCE, pat, settings, **HARD)
    report(FeedbackKind.COMPLAINT, sam, settings)

    with session_scope() as session:
        listed = dashboard.undeliverable(session, Scope(clinic))
    assert sorted(e.email for e in listed.entries) == ["pat@example.com", "sam@example.com"]
    assert listed.total == 2


def test_a_patient_who_resubscribes_after_a_complaint_gets_the_emails_still_ahead(
    settings: Settings,
) -> None:
    clinic = make_clinic()
    pat = enrolled(settings, clinic, "pat@example.com")
    stopped = report(FeedbackKind.COMPLAINT, pat, settings)

    with session_scope() as session:
        patient = session.scalars(select(Patient).where(Patient.email == "pat@example.com")).one()
        restored = suppression.resubscribe(session, clinic, patient, datetime.now(UTC))

    assert restored == stopped.cancelled - 1  # the day-0 email was due already: not ahead
    with session_scope() as session:
        assert not suppression.is_suppressed(session, clinic, "pat@example.com")
