"""An unacknowledged red flag is sent again to the escalation list, on the clinic's clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
import time_machine
from sqlalchemy import select

from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.errors import UserError
from dripcare.models import CheckIn, Clinic, ClinicAlert, Message, Step
from dripcare.outbox import checkins, red_flags
from dripcare.people import audit
from dripcare.sending import alerts, escalation
from dripcare.sending.transports import SMTPTransport
from tests.factories import make_clinic, make_enrollment
from tests.smtp_server import SMTPServer

OPEN = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # Wednesday 10:00 in New York
CLOSED = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)  # Wednesday 22:00 in New York


def red_flag_at(settings: Settings, at: datetime, **wanted: object) -> int:
    clinic_id = make_clinic(alert_email="desk@riverside.example")
    with session_scope() as session:
        clinic = session.get(Clinic, clinic_id)
        assert clinic is not None
        fields = {
            "open_hours": "Mon-Fri 09:00-18:00",
            "escalation_emails": ("lead@riverside.example",),
        } | wanted
        escalation.set_escalation(clinic, escalation.EscalationSettings(**fields))  # type: ignore[arg-type]
    enrollment = make_enrollment(settings, clinic_id, at - timedelta(days=1, hours=2), now=at)
    with time_machine.travel(at, tick=False), session_scope() as session:
        day1 = session.scalars(
            select(Message)
            .join(Message.step)
            .where(Step.key == "day-1", Message.enrollment_id == enrollment)
        ).one()
        return checkins.record(session, day1, worried=True, codes=["airway"]).id


def tick(settings: Settings, smtp_server: SMTPServer, at: datetime) -> list[str]:
    """The periodic alert task at `at`; returns the To of every email it sent."""
    before = len(smtp_server.recorder.messages)
    transport = SMTPTransport("127.0.0.1", smtp_server.port)
    with time_machine.travel(at, tick=False), httpx.Client(timeout=5) as http:
        alerts.deliver_due(session_scope, transport, http, settings=settings)
    return [m["To"] for m in smtp_server.recorder.messages[before:]]


def rows() -> list[tuple[int, str, str]]:
    with session_scope() as session:
        found = session.scalars(select(ClinicAlert).order_by(ClinicAlert.id))
        return [(a.escalation, a.channel, a.recipient) for a in found]


def test_not_acknowledged_within_the_window_is_escalated_and_again_every_window(
    settings: Settings, smtp_server: SMTPServer
) -> None:
    red_flag_at(settings, OPEN)

    first = tick(settings, smtp_server, OPEN)
    at_14 = tick(settings, smtp_server, OPEN + timedelta(minutes=14))
    at_15 = tick(settings, smtp_server, OPEN + timedelta(minutes=15))
    at_29 = tick(settings, smtp_server, OPEN + timedelta(minutes=29))
    at_30 = tick(settings, smtp_server, OPEN + timedelta(minutes=30))

    assert first == ["desk@riverside.example"]
    assert at_14 == [] and at_29 == []
    assert at_15 == at_30 == ["lead@riverside.example"]
    assert rows() == [
        (0, "email", ""),
        (1, "email", "lead@riverside.example"),
        (2, "email", "lead@riverside.example"),
    ]
    assert "(escalation 2)" in smtp_server.recorder.messages[-1]["Subject"]


def test_acknowledged_at_ten_minutes_is_not_escalated(
    settings: Settings, smtp_server: SMTPServer
) -> None:
    check_in_id = red_flag_at(settings, OPEN)
    tick(settings, smtp_server, OPEN)

    with time_machine.travel(OPEN + timedelta(minutes=10), tick=False), session_scope() as session:
        check_in = session.get(CheckIn, check_in_id)
        assert check_in is not None
        red_flags.acknowledge(session, check_in, audit.Actor.cli())
    later = [tick(settings, smtp_server, OPEN + timedelta(minutes=m)) for m in (15, 30, 600)]

    assert later == [[], [], []]
    assert rows() == [(0, "email", "")]


def test_outside_opening_hours_the_after_hours_contact_is_alerted_at_once(
    settings: Settings, smtp_server: SMTPServer
) -> None:
    red_flag_at(settings, CLOSED, after_hours_email="oncall@riverside.example")

    first = tick(settings, smtp_server, CLOSED)

    assert sorted(first) == [
        "desk@riverside.example",
        "lead@riverside.example",
        "oncall@riverside.example",
    ]
    assert (1, "email", "oncall@riverside.example") in rows()


def test_an_escalation_webhook_gets_each_round(settings: Settings, smtp_server: SMTPServer) -> None:
    from tests.test_checkins import Webhook

    hook = Webhook(failures=0)
    try:
        red_flag_at(settings, CLOSED, escalation_emails=(), escalation_webhook=hook.url)
        tick(settings, smtp_server, CLOSED)
    finally:
        hook.server.shutdown()

    ((_, body),) = hook.requests
    assert body["type"] == "check_in.red_flag_escalated"
    assert body["data"]["shown_to_patient"] == "Call 911 now"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("weekdays 9 to 6", "must look like 'Mon-Fri 09:00-18:00'"),
        ("Mon-Fri 9-18", "local time must look like 09:00"),
        ("Mon-Fry 09:00-18:00", "days are mon"),
        ("Sat 14:00-10:00", "the end must be after the start"),
    ],
)
def test_opening_hours_that_cannot_be_read_are_refused_with_what_to_write(
    text: str, problem: str
) -> None:
    with pytest.raises(UserError, match=problem):
        escalation.parse_opening_hours(text)


def test_opening_hours_ranges_and_wrapping_weeks() -> None:
    from zoneinfo import ZoneInfo

    hours = escalation.parse_opening_hours("Fri-Mon 09:00-12:00; Wed 14:00-18:00")
    zone = ZoneInfo("America/New_York")

    assert sorted(hours.ranges) == [0, 2, 4, 5, 6]
    assert not hours.is_open(OPEN, zone)  # Wednesday 10:00
    assert hours.is_open(OPEN + timedelta(hours=5), zone)  # Wednesday 15:00


def test_the_cli_sets_and_shows_the_escalation_settings(settings: Settings) -> None:
    import json

    from click.testing import CliRunner

    from dripcare.cli import main

    clinic_id = make_clinic()
    runner = CliRunner()
    args = ["clinic", "red-flags", str(clinic_id), "--ack-minutes", "10"]
    args += ["--open-hours", "Mon-Fri 08:00-17:00", "--escalate-to", "Lead@Riverside.example"]
    changed = runner.invoke(main, [*args, "--json"])
    refused = runner.invoke(main, ["clinic", "red-flags", str(clinic_id), "--open-hours", "always"])

    assert changed.exit_code == 0, changed.output
    data = json.loads(changed.output)
    assert (data["ack_minutes"], data["escalation_emails"]) == (10, ["lead@riverside.example"])
    assert refused.exit_code != 0 and "must look like 'Mon-Fri 09:00-18:00'" in refused.output
