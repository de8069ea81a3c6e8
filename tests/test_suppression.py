"""The suppression list keeps its stored source strings; an unknown source is refused; a hard
bounce suppresses the address for its clinic only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.models import MessageStatus, Suppression, SuppressionSource
from dripcare.outbox import suppression
from tests.factories import make_clinic, make_enrollment, send_due
from tests.smtp_server import SMTPServer
from tests.test_delivery import rows


def test_sources_are_stored_as_the_same_strings_as_before(settings: Settings) -> None:
    clinic = make_clinic()
    entries = [
        suppression.Entry(clinic, "a@example.com", "hard bounce", SuppressionSource.BOUNCE),
        suppression.Entry(clinic, "b@example.com", "spam report", "complaint"),  # type: ignore[arg-type]
    ]
    with session_scope() as session:
        suppression.add(session, entries)
    with session_scope() as session:
        stored = session.execute(select(Suppression.email, Suppression.source)).all()

    assert sorted(stored) == [("a@example.com", "bounce"), ("b@example.com", "complaint")]
    assert {s.value for s in SuppressionSource} >= {
        "bounce",
        "complaint",
        "unsubscribe",
        "one-click",
        "web",
        "mailto",
        "preferences",
        "erasure",
    }


def test_an_unknown_source_is_refused(settings: Settings) -> None:
    clinic = make_clinic()
    with session_scope() as session, pytest.raises(ValueError, match="not a valid"):
        suppression.add(session, [suppression.Entry(clinic, "c@example.com", "?", "typo")])  # type: ignore[arg-type]


@pytest.mark.usefixtures("daytime")  # conftest: a working morning
def test_permanent_refusal_fails_and_suppresses_the_address_for_the_clinic(
    settings: Settings, smtp_server: SMTPServer
) -> None:
    clinic = make_clinic()
    other_clinic = make_clinic(name="Other", sender="hi@other.example")
    enrollment = make_enrollment(settings, clinic, datetime.now(UTC) - timedelta(hours=3))
    smtp_server.recorder.rcpt_replies["pat@example.com"] = "550 5.1.1 no such user"

    assert send_due(smtp_server)["failed"] == 1
    smtp_server.recorder.rcpt_replies.clear()
    with time_machine.travel(datetime.now(UTC) + timedelta(days=1, hours=12)):
        later = send_due(smtp_server)
    make_enrollment(settings, other_clinic, datetime.now(UTC) - timedelta(hours=3))
    elsewhere = send_due(smtp_server)

    statuses = {m.step.key: m for m in rows(enrollment)}
    assert statuses["day-0"].status == MessageStatus.FAILED
    assert statuses["day-0"].last_error.startswith("550 5.1.1")
    assert later["cancelled"] == 1 and later["sent"] == 0
    assert statuses["day-1"].status == MessageStatus.CANCELLED
    assert statuses["day-1"].status_reason.startswith("address suppressed: hard bounce")
    assert elsewhere["sent"] == 1  # suppression is per clinic
    with session_scope() as session:
        assert session.scalars(select(Suppression.email)).all() == ["pat@example.com"]
