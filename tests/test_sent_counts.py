"""`sent_counts` (emails sent per clinic and quarter hour, kept by triggers on `messages`) stays
exactly what counting `messages` gives, through the real send path (send, retry, permanent
failure, cancel) and through any other write (an UPDATE of sent_at, a delete). On SQLite and
PostgreSQL; the clock is the `daytime` fixture's, or travelled with time-machine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import delete, func, select, update

from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.models import Message, MessageStatus, SentCount
from dripcare.outbox.dashboard import QUARTER, quarter_hour
from dripcare.outbox.enrollment_changes import cancel
from dripcare.outbox.enrollment_queries import get_enrollment
from tests.factories import make_clinic, make_enrollment, send_due
from tests.smtp_server import SMTPServer

pytestmark = pytest.mark.usefixtures("daytime")  # conftest: a working morning


def kept() -> dict[tuple[int, int], int]:
    """sent_counts, without the quarters whose count went back to 0."""
    with session_scope() as session:
        rows = session.execute(select(SentCount.clinic_id, SentCount.quarter, SentCount.sent))
        return {(clinic, quarter): n for clinic, quarter, n in rows if n}


def counted() -> dict[tuple[int, int], int]:
    """The same counted from messages, the way the dashboard counted before the table."""
    bucket = quarter_hour(Message.sent_at)
    query = (
        select(Message.clinic_id, bucket, func.count())
        .where(Message.sent_at.is_not(None))
        .group_by(Message.clinic_id, bucket)
    )
    with session_scope() as session:
        return {(clinic, quarter): n for clinic, quarter, n in session.execute(query)}


def sent_total() -> int:
    assert kept() == counted()
    return sum(kept().values())


def test_send_retry_failure_and_cancel_keep_the_counts_exact(
    settings: Settings, smtp_server: SMTPServer
) -> None:
    clinic, other = make_clinic(), make_clinic(name="Other Clinic")
    three_hours_ago = datetime.now(UTC) - timedelta(hours=3)
    make_enrollment(settings, clinic, three_hours_ago, email="sent@example.com")
    make_enrollment(settings, other, three_hours_ago, email="sent@example.com")
    make_enrollment(settings, clinic, three_hours_ago, email="later@example.com")
    make_enrollment(settings, clinic, three_hours_ago, email="gone@example.com")
    cancelled = make_enrollment(settings, clinic, three_hours_ago, email="cancel@example.com")
    smtp_server.recorder.rcpt_replies["later@example.com"] = "451 4.7.1 greylisted, try later"
    smtp_server.recorder.rcpt_replies["gone@example.com"] = "550 5.1.1 no such user"
    assert sent_total() == 0

    first = send_due(smtp_server)
    assert (first["sent"], first["deferred"], first["failed"]) == (3, 1, 1)
    assert sent_total() == 3  # sent, sent at the other clinic, cancel (not cancelled yet)
    assert {c for c, _ in kept()} == {clinic, other}

    with session_scope() as session:
        cancel(session, get_enrollment(session, cancelled))
    smtp_server.recorder.rcpt_replies.clear()
    with time_machine.travel(datetime.now(UTC) + timedelta(hours=1)):
        assert send_due(smtp_server)["sent"] == 1  # the retry
    assert sent_total() == 4


def test_any_write_of_sent_at_moves_the_count(settings: Settings) -> None:
    clinic = make_clinic()
    enrollment = make_enrollment(settings, clinic, datetime.now(UTC) - timedelta(hours=3))
    with session_scope() as session:
        ids = list(session.scalars(select(Message.id).where(Message.enrollment_id == enrollment)))
    at = datetime(2026, 11, 30, 10, 7, tzinfo=UTC)

    def write(where: list[int], **values: object) -> int:
        with session_scope() as session:
            session.execute(update(Message).where(Message.id.in_(where)).values(**values))
        return sent_total()

    assert write(ids[:3], status=MessageStatus.SENT, sent_at=at) == 3
    assert kept() == {(clinic, int(at.timestamp()) // QUARTER): 3}
    assert write(ids[:1], sent_at=at + timedelta(minutes=15)) == 3  # to the next quarter
    assert write(ids[1:2], status=MessageStatus.SCHEDULED, sent_at=None) == 2
    assert write(ids[2:3], status_reason="only another column") == 2
    with session_scope() as session:  # retention or erasure deleting sent rows
        session.execute(delete(Message).where(Message.id.in_(ids[:1])))
    assert sent_total() == 1
