"""Retention: `dripcare purge` and the nightly task delete old finished rows, a batch per
transaction, and keep suppressions and everything of a treatment still being followed.

On SQLite and PostgreSQL. The data is made 500 days ago (time_machine), so the suite means the
same with the clock a year ahead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from click.testing import CliRunner
from sqlalchemy import func, select

from dripcare.cli import main
from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.errors import UserError
from dripcare.models import (
    AlertKind,
    AlertStatus,
    AuditEvent,
    CheckIn,
    ClinicAlert,
    DeliveryAttempt,
    Enrollment,
    IdempotentRequest,
    LoginFailure,
    Message,
    MessageStatus,
    SubscriptionEvent,
    Suppression,
)
from dripcare.outbox import checkins, enrollment_changes, retention
from dripcare.outbox.suppression import unsubscribe_by_message
from dripcare.people.audit import SYSTEM
from dripcare.sending.delivery import send_due
from dripcare.sending.transports import transport_from_url
from tests.conftest import configure
from tests.factories import make_clinic, make_enrollment


def long_ago() -> datetime:
    """500 days before now, at 15:00 UTC (10:00 in New York: no quiet hours)."""
    return (datetime.now(UTC) - timedelta(days=500)).replace(hour=15, minute=0, second=0)


@dataclass(frozen=True)
class History:
    finished_id: int  # every email sent or cancelled, long ago
    following_id: int  # one email sent long ago, the others still scheduled
    clinic_id: int


def make_history(settings: Settings) -> History:
    then = long_ago()
    clinic = make_clinic()
    with time_machine.travel(then, tick=False):
        finished = make_enrollment(settings, clinic, then - timedelta(hours=3), email="a@x.example")
        following = make_enrollment(
            settings, clinic, then - timedelta(hours=3), email="b@x.example"
        )
        assert send_due(session_scope, settings, transport_from_url(settings.smtp_url))["sent"] == 2
        with session_scope() as session:
            enrollment = session.get(Enrollment, finished)
            assert enrollment is not None
            sent = enrollment.messages[0]
            checkins.record(session, sent, worried=False, codes=[])
            unsubscribe_by_message(session, sent.id, "web")  # suppressed, history recorded
            enrollment_changes.cancel(session, enrollment)
            session.add(
                IdempotentRequest(
                    clinic_id=clinic, key="k", fingerprint="f", status_code=201, body="{}"
                )
            )
            session.add(LoginFailure(key="email:x@y.example"))
    return History(finished, following, clinic)


def count(model: type, *where: object) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0  # type: ignore[arg-type]


def messages_of(enrollment_id: int) -> int:
    return count(Message, Message.enrollment_id == enrollment_id)


def test_purge_deletes_finished_rows_and_keeps_followed_treatments_and_suppressions(
    settings: Settings,
) -> None:
    history = make_history(settings)
    finished, followed = messages_of(history.finished_id), messages_of(history.following_id)
    cutoff = datetime.now(UTC) - timedelta(days=400)

    preview = retention.purge(session_scope, cutoff, batch_size=2, actor=SYSTEM, dry_run=True)
    done = retention.purge(session_scope, cutoff, batch_size=2, actor=SYSTEM)

    assert done.counts == preview.counts
    assert done.counts["messages"] == finished and messages_of(history.finished_id) == 0
    assert messages_of(history.following_id) == followed  # one still to send: all kept
    assert done.counts["check_ins"] == 1 and count(CheckIn) == 0
    assert done.counts["delivery_attempts"] >= 1
    assert count(DeliveryAttempt) == 1  # the following treatment's sent email's attempt
    assert done.counts["idempotent_requests"] == 1 and count(IdempotentRequest) == 0
    assert done.counts["login_failures"] == 1 and count(LoginFailure) == 0
    assert count(Suppression) == 1  # still never mailed again
    assert count(SubscriptionEvent, SubscriptionEvent.message_pk.is_(None)) == 1  # kept, unlinked
    assert count(Enrollment) == 2
    assert count(AuditEvent, AuditEvent.action == "data.purge") == 1


def test_purge_with_a_recent_cutoff_deletes_nothing_and_records_nothing(
    settings: Settings,
) -> None:
    make_history(settings)
    before = count(Message)

    done = retention.purge(
        session_scope, long_ago() - timedelta(days=1), batch_size=100, actor=SYSTEM
    )

    assert done.total == 0 and count(Message) == before
    assert count(AuditEvent, AuditEvent.action == "data.purge") == 0


def test_purge_command_dry_run_prints_counts_and_deletes_nothing(settings: Settings) -> None:
    make_history(settings)
    before = count(Message)

    dry = CliRunner().invoke(main, ["purge", "--older-than", "400d", "--dry-run", "--json"])
    real = CliRunner().invoke(main, ["purge", "--older-than", "57w", "--batch-size", "3"])

    assert dry.exit_code == 0, dry.output
    counts = json.loads(dry.stdout)["counts"]
    assert counts["messages"] >= 1 and count(Message) < before
    assert f"deleted {counts['messages']}\tmessages" in real.stdout


def test_purge_command_refuses_an_unreadable_age(settings: Settings) -> None:
    result = CliRunner().invoke(main, ["purge", "--older-than", "a year"])

    assert result.exit_code == 2
    assert "give a number of days, e.g. 400d" in result.output


@pytest.mark.parametrize(("text", "days"), [("400d", 400), ("58w", 406), ("30", 30)])
def test_parse_age_reads_days_and_weeks(text: str, days: int) -> None:
    assert retention.parse_age(text) == timedelta(days=days)


def test_parse_age_refuses_zero() -> None:
    with pytest.raises(UserError):
        retention.parse_age("0d")


def test_the_nightly_task_does_nothing_unless_retention_is_set(settings: Settings) -> None:
    from dripcare import tasks

    make_history(settings)
    before = count(Message)

    assert tasks.purge() == {}
    assert count(Message) == before
    assert count(Message, Message.status == MessageStatus.SCHEDULED) > 0


def test_the_nightly_task_purges_with_the_configured_retention(
    database: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from dripcare import tasks

    settings = configure(
        monkeypatch, tmp_path, DRIPCARE_DATABASE_URL=database, DRIPCARE_RETENTION_DAYS="400"
    )
    history = make_history(settings)

    counts = tasks.purge()

    assert counts["messages"] >= 1 and messages_of(history.finished_id) == 0
    assert messages_of(history.following_id) > 0


def test_beat_schedules_the_purge_only_when_retention_is_set(
    database: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from dripcare.celery_app import create_app

    off = create_app().conf.beat_schedule
    configure(monkeypatch, tmp_path, DRIPCARE_DATABASE_URL=database, DRIPCARE_RETENTION_DAYS="400")
    on = create_app().conf.beat_schedule

    assert "purge-old-data" not in off
    assert on["purge-old-data"]["task"] == "dripcare.purge"


def test_an_email_whose_check_in_alert_is_still_pending_is_kept(settings: Settings) -> None:
    then = long_ago()
    clinic = make_clinic()
    with time_machine.travel(then, tick=False):
        enrollment_id = make_enrollment(settings, clinic, then - timedelta(hours=3))
        send_due(session_scope, settings, transport_from_url(settings.smtp_url))
        with session_scope() as session:
            enrollment = session.get(Enrollment, enrollment_id)
            assert enrollment is not None
            checkins.record(session, enrollment.messages[0], worried=True, codes=["eye"])
            enrollment_changes.cancel(session, enrollment)
    cutoff = datetime.now(UTC) - timedelta(days=400)

    done = retention.purge(session_scope, cutoff, batch_size=100, actor=SYSTEM)

    assert count(CheckIn) == 1 and done.counts["clinic_alerts"] == 0
    assert messages_of(enrollment_id) == 1  # the cancelled ones went, the alerted one stays


def test_delivered_unreachable_and_transport_alerts_go_and_undelivered_or_recent_ones_stay(
    settings: Settings,
) -> None:
    clinic = make_clinic()
    old, recent = long_ago(), datetime.now(UTC) - timedelta(days=10)

    def alert(
        kind: AlertKind, clinic_id: int | None, channel: str, delivered: datetime | None
    ) -> ClinicAlert:
        status = AlertStatus.DELIVERED if delivered else AlertStatus.PENDING
        return ClinicAlert(
            clinic_id=clinic_id,
            kind=kind,
            channel=channel,
            status=status,
            due_at=old,
            delivered_at=delivered,
            detail="transport platform refused us",
        )

    with session_scope() as session:
        session.add_all(
            [
                alert(AlertKind.TRANSPORT, clinic, "email", old),
                alert(AlertKind.RESUMED, None, "operator", old),
                alert(AlertKind.UNREACHABLE, clinic, "email", old),
                alert(AlertKind.TRANSPORT, None, "operator-hook", None),  # never delivered
                alert(AlertKind.TRANSPORT, clinic, "email", recent),
            ]
        )
    cutoff = datetime.now(UTC) - timedelta(days=400)

    preview = retention.purge(session_scope, cutoff, batch_size=2, actor=SYSTEM, dry_run=True)
    done = retention.purge(session_scope, cutoff, batch_size=2, actor=SYSTEM)

    assert preview.counts["clinic_alerts"] == done.counts["clinic_alerts"] == 3
    with session_scope() as session:
        left = session.execute(select(ClinicAlert.channel, ClinicAlert.status)).all()
    assert sorted(left) == [
        ("email", AlertStatus.DELIVERED),
        ("operator-hook", AlertStatus.PENDING),
    ]
