"""Test data builders: real rows through the real domain functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import Message
from typing import Any

import time_machine
from sqlalchemy import select
from sqlalchemy.orm import Session

from dripcare.config import Settings, get_settings
from dripcare.db import session_scope
from dripcare.models import Clinic, Step
from dripcare.models import Message as MessageRow
from dripcare.outbox.enrollment_input import EnrollRequest
from dripcare.outbox.enrollments import EnrollResult, enroll
from dripcare.people.clinic_setup import create_clinic
from dripcare.sending import delivery
from dripcare.sending.transports import transport_from_url
from tests.smtp_server import SMTPServer

# 10:00 in New York (no quiet hours), a Wednesday: travel here and the day-0 email is due.
DAYTIME = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def make_clinic(**overrides: Any) -> int:
    fields = {
        "name": "Riverside Skin Clinic",
        "sender": "care@riverside.example",
        "phone": "+1 555 010 0100",
        "timezone": "America/New_York",
        "default_campaign": "microneedling",
    } | overrides
    with session_scope() as session:
        return create_clinic(session, **fields).id


def uk_clinic(name: str = "Harbour Dermatology", settings: dict[str, Any] | None = None) -> Clinic:
    """A UK clinic as an unsaved row, for renders that need its number, NHS 111 and logo."""
    return Clinic(
        name=name,
        phone="020 7946 0000",
        timezone="Europe/London",
        brand_color="#1e3a8a",
        logo_url="https://harbour.example/logo.png",
        opening_hours="Tuesday to Saturday, 10am to 6pm",
        after_hours="call NHS 111 for advice",
        country="GB",
        emergency_override="",
        settings=settings or {},
    )


def make_enrollment(
    settings: Settings,
    clinic_id: int,
    treated_at: str | datetime,
    now: datetime | None = None,
    **overrides: Any,
) -> int:
    return enroll_result(settings, clinic_id, treated_at, now, **overrides).enrollment.id


def enroll_result(
    settings: Settings,
    clinic_id: int,
    treated_at: str | datetime,
    now: datetime | None = None,
    **overrides: Any,
) -> EnrollResult:
    fields = {"email": "pat@example.com", "first_name": "Pat"} | overrides
    with session_scope() as session:
        return enroll(
            session,
            EnrollRequest(clinic_id=clinic_id, treated_at=treated_at, **fields),
            settings,
            now,
        )


def step_message(session: Session, enrollment_id: int, key: str) -> MessageRow:
    """The outbox row of one step of an enrollment, e.g. its "day-1" email."""
    return session.scalars(
        select(MessageRow)
        .join(MessageRow.step)
        .where(Step.key == key, MessageRow.enrollment_id == enrollment_id)
    ).one()


def first_sent_links(settings: Settings, smtp_server: SMTPServer) -> tuple[str, str]:
    """Enroll, send the day-0 email for real, and read its List-Unsubscribe targets."""
    clinic = make_clinic()
    make_enrollment(settings, clinic, DAYTIME - timedelta(hours=3))
    send_due(smtp_server)
    return unsubscribe_targets(smtp_server.recorder.messages[0])


def send_due(to: SMTPServer | str, days_later: int = 0) -> dict[str, int]:
    """Send what is due, for real, through a test SMTP server or to an SMTP URL; now, or
    `days_later` days (and two hours) after DAYTIME.

    The 5-second timeout makes a test whose server never answers fail instead of hang.
    """
    transport = transport_from_url(to if isinstance(to, str) else to.url, 5)
    if not days_later:
        return delivery.send_due(session_scope, get_settings(), transport)
    with time_machine.travel(DAYTIME + timedelta(days=days_later, hours=2)):
        return delivery.send_due(session_scope, get_settings(), transport)


def unsubscribe_targets(email: Message) -> tuple[str, str]:
    """The https and mailto URLs of an email's List-Unsubscribe header."""
    https, mailto = (part.strip(" <>") for part in str(email["List-Unsubscribe"]).split(","))
    return https, mailto
