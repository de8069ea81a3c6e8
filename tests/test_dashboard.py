"""The dashboard's numbers: counts per local day, windows, clinic scoping, and what needs
attention. On SQLite and PostgreSQL; every function is given `now`, so no clock is read."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, update

from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.models import (
    AlertStatus,
    CheckIn,
    CheckInLevel,
    ClinicAlert,
    Enrollment,
    EnrollmentStatus,
    Message,
    MessageStatus,
    SubscriptionChange,
    SubscriptionEvent,
    Suppression,
)
from dripcare.outbox import dashboard
from dripcare.outbox.dashboard import Scope
from tests.factories import DAYTIME as NOW
from tests.factories import make_clinic, make_enrollment

NEW_YORK = "America/New_York"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def enrolled(settings: Settings, clinic_id: int, email: str = "pat@example.com") -> list[int]:
    """A patient's seven message ids (the shipped campaign), treated a week before NOW."""
    enrollment_id = make_enrollment(
        settings, clinic_id, NOW - timedelta(days=7), now=NOW - timedelta(days=7), email=email
    )
    with session_scope() as session:
        query = select(Message.id).where(Message.enrollment_id == enrollment_id)
        return list(session.scalars(query.order_by(Message.id)))


def mark(message_id: int, **values: object) -> None:
    with session_scope() as session:
        session.execute(update(Message).where(Message.id == message_id).values(**values))


def sent_at(message_id: int, at: datetime) -> None:
    mark(message_id, status=MessageStatus.SENT, sent_at=at, updated_at=at)


def check_in(message_pk: int, at: datetime, level: CheckInLevel = CheckInLevel.FINE) -> int:
    with session_scope() as session:
        message = session.get(Message, message_pk)
        assert message is not None
        row = CheckIn(
            clinic_id=message.clinic_id,
            enrollment_id=message.enrollment_id,
            message_pk=message.id,
            level=level,
            answers=[],
            created_at=at,
        )
        session.add(row)
        session.flush()
        return row.id


def count_on(activity: dashboard.Activity, series: str, day: date) -> int:
    return activity.series[series][activity.window.days.index(day)]


@pytest.fixture
def clinic(settings: Settings) -> int:
    return make_clinic(timezone=NEW_YORK)


# ---------------------------------------------------------------- per day


def test_a_day_is_the_clinics_local_day_not_the_utc_one(settings: Settings, clinic: int) -> None:
    ids = enrolled(settings, clinic)
    sent_at(ids[0], utc("2026-11-25T04:59:59.9"))  # 23:59:59 on the 24th in New York
    sent_at(ids[1], utc("2026-11-25T05:00:00"))  # midnight on the 25th in New York
    check_in(ids[0], utc("2026-11-25T04:30:00"))

    with session_scope() as session:
        local = dashboard.activity(session, Scope(clinic, NEW_YORK), 30, NOW)
        everywhere = dashboard.activity(session, Scope(None), 30, NOW)

    assert count_on(local, "sent", date(2026, 11, 24)) == 1
    assert count_on(local, "sent", date(2026, 11, 25)) == 1
    assert count_on(local, "check_ins", date(2026, 11, 24)) == 1
    assert count_on(everywhere, "sent", date(2026, 11, 25)) == 2  # all clinics: UTC days
    assert count_on(everywhere, "check_ins", date(2026, 11, 25)) == 1


def test_days_follow_the_clocks_across_the_end_of_daylight_saving(
    settings: Settings, clinic: int
) -> None:
    ids = enrolled(settings, clinic)
    sent_at(ids[0], utc("2026-11-01T03:59:00"))  # 23:59 EDT on 31 Oct
    sent_at(ids[1], utc("2026-11-01T04:00:00"))  # 00:00 EDT on 1 Nov
    sent_at(ids[2], utc("2026-11-02T04:59:00"))  # 23:59 EST on 1 Nov (clocks went back)
    sent_at(ids[3], utc("2026-11-02T05:00:00"))  # 00:00 EST on 2 Nov

    with session_scope() as session:
        days = dashboard.activity(session, Scope(clinic, NEW_YORK), 30, NOW)

    assert count_on(days, "sent", date(2026, 10, 31)) == 1
    assert count_on(days, "sent", date(2026, 11, 1)) == 2
    assert count_on(days, "sent", date(2026, 11, 2)) == 1


def test_30_and_90_days_end_today_and_leave_out_what_is_older(
    settings: Settings, clinic: int
) -> None:
    ids = enrolled(settings, clinic)
    sent_at(ids[0], NOW - timedelta(days=40))
    sent_at(ids[1], NOW - timedelta(days=100))
    sent_at(ids[2], NOW)

    with session_scope() as session:
        month = dashboard.activity(session, Scope(clinic, NEW_YORK), 30, NOW)
        quarter = dashboard.activity(session, Scope(clinic, NEW_YORK), 90, NOW)

    assert len(month.window.days) == 30 and len(quarter.window.days) == 90
    assert month.window.days[-1] == quarter.window.days[-1] == date(2026, 11, 25)
    assert month.window.days[0] == date(2026, 10, 27)
    assert month.totals()["sent"] == 1 and quarter.totals()["sent"] == 2
    assert month.window.start == utc("2026-10-27T04:00:00")  # local midnight, still EDT


def test_failed_bounced_and_unsubscribed_are_counted_on_their_day(
    settings: Settings, clinic: int
) -> None:
    ids = enrolled(settings, clinic)
    day = utc("2026-11-20T15:00:00")
    mark(ids[0], status=MessageStatus.FAILED, updated_at=day)
    mark(ids[1], status=MessageStatus.CANCELLED, updated_at=day)  # not a failure
    with session_scope() as session:
        message = session.get(Message, ids[0])
        assert message is not None
        patient_id = message.enrollment.patient_id
        session.add_all(
            [
                Suppression(
                    clinic_id=clinic, email="a@x.example", reason="hard bounce", source="bounce"
                ),
                Suppression(clinic_id=clinic, email="b@x.example", reason="u", source="web"),
                SubscriptionEvent(
                    clinic_id=clinic,
                    patient_id=patient_id,
                    change=SubscriptionChange.UNSUBSCRIBED,
                    source="one-click",
                    at=day,
                ),
                SubscriptionEvent(
                    clinic_id=clinic,
                    patient_id=patient_id,
                    change=SubscriptionChange.RESUBSCRIBED,
                    source="preferences",
                    at=day,
                ),
            ]
        )
        session.flush()
        session.execute(update(Suppression).values(created_at=day))

    with session_scope() as session:
        days = dashboard.activity(session, Scope(clinic, NEW_YORK), 30, NOW)

    on_the_20th = {name: count_on(days, name, date(2026, 11, 20)) for name in dashboard.SERIES}
    assert on_the_20th == {"sent": 0, "failed": 1, "bounced": 1, "unsubscribed": 1, "check_ins": 0}
    assert days.totals() == on_the_20th


def test_a_clinic_sees_only_its_own_numbers(settings: Settings, clinic: int) -> None:
    other = make_clinic(name="Other", sender="care@other.example", timezone="Europe/Paris")
    mine, theirs = enrolled(settings, clinic), enrolled(settings, other, "other@example.com")
    sent_at(mine[0], NOW - timedelta(hours=1))
    for message_id in theirs[:3]:
        sent_at(message_id, NOW - timedelta(hours=1))
    check_in(theirs[0], NOW - timedelta(hours=1))

    with session_scope() as session:
        own = dashboard.activity(session, Scope(clinic, NEW_YORK), 30, NOW).totals()
        everyone = dashboard.activity(session, Scope(None), 30, NOW).totals()

    assert (own["sent"], own["check_ins"]) == (1, 0)
    assert (everyone["sent"], everyone["check_ins"]) == (4, 1)


# ---------------------------------------------------------------- needs attention


def test_late_emails_are_those_due_past_the_threshold_and_not_sent(
    settings: Settings, clinic: int
) -> None:
    ids = enrolled(settings, clinic)
    mark(ids[0], status=MessageStatus.SCHEDULED, due_at=NOW - timedelta(hours=2))
    mark(ids[1], status=MessageStatus.QUEUED, due_at=NOW - timedelta(hours=1))
    mark(ids[2], status=MessageStatus.SCHEDULED, due_at=NOW - timedelta(minutes=10))
    mark(ids[3], status=MessageStatus.SENT, due_at=NOW - timedelta(hours=3))
    mark(ids[4], status=MessageStatus.CANCELLED, due_at=NOW - timedelta(hours=3))
    for message_id in ids[5:]:
        mark(message_id, status=MessageStatus.SCHEDULED, due_at=NOW + timedelta(days=3))

    with session_scope() as session:
        late = dashboard.late_emails(session, Scope(clinic), NOW)
        first = dashboard.late_emails(session, Scope(clinic), NOW, limit=1)

    assert [e.message_pk for e in late.entries] == [ids[0], ids[1]]
    assert late.total == 2 and first.total == 2 and len(first.entries) == 1
    assert late.entries[0].email == "pat@example.com"
    assert late.entries[0].since == NOW - timedelta(hours=2)


def test_undeliverable_patients_are_bounced_ones_still_in_aftercare(
    settings: Settings, clinic: int
) -> None:
    enrolled(settings, clinic, "bounced@example.com")
    enrolled(settings, clinic, "finished@example.com")
    enrolled(settings, clinic, "unsubscribed@example.com")
    with session_scope() as session:
        session.add_all(
            Suppression(clinic_id=clinic, email=email, reason=f"hard bounce: {email}", source=src)
            for email, src in [
                ("bounced@example.com", "bounce"),
                ("finished@example.com", "bounce"),
                ("unsubscribed@example.com", "one-click"),
            ]
        )
        session.execute(
            update(Enrollment)
            .where(Enrollment.patient.has(email="finished@example.com"))
            .values(status=EnrollmentStatus.CANCELLED)
        )

    with session_scope() as session:
        found = dashboard.undeliverable(session, Scope(clinic))
        elsewhere = dashboard.undeliverable(session, Scope(clinic + 1))

    assert [e.email for e in found.entries] == ["bounced@example.com"]
    assert found.entries[0].what == "hard bounce: bounced@example.com"
    assert elsewhere.total == 0


def test_red_flags_stay_until_an_alert_about_them_is_delivered(
    settings: Settings, clinic: int
) -> None:
    ids = enrolled(settings, clinic)
    pending = check_in(ids[0], NOW - timedelta(hours=2), CheckInLevel.EMERGENCY)
    delivered = check_in(ids[1], NOW - timedelta(hours=1), CheckInLevel.URGENT)
    check_in(ids[2], NOW - timedelta(hours=1), CheckInLevel.EXPECTED)
    old = check_in(ids[3], NOW - timedelta(days=60), CheckInLevel.URGENT)
    with session_scope() as session:
        session.add_all(
            [
                ClinicAlert(
                    clinic_id=clinic,
                    check_in_id=pending,
                    channel="email",
                    attempts=3,
                    last_error="SMTP unreachable",
                ),
                ClinicAlert(clinic_id=clinic, check_in_id=delivered, channel="email"),
                ClinicAlert(
                    clinic_id=clinic,
                    check_in_id=delivered,
                    channel="webhook",
                    status=AlertStatus.DELIVERED,
                ),
                ClinicAlert(clinic_id=clinic, check_in_id=old, channel="email"),
            ]
        )

    with session_scope() as session:
        month = dashboard.unalerted_red_flags(session, Scope(clinic), NOW - timedelta(days=30))
        quarter = dashboard.unalerted_red_flags(session, Scope(None), NOW - timedelta(days=90))

    assert [e.what for e in month.entries] == [
        "emergency: email alert pending, 3 attempts: SMTP unreachable"
    ]
    assert quarter.total == 2


def test_needs_attention_gathers_the_three_lists(settings: Settings, clinic: int) -> None:
    ids = enrolled(settings, clinic)
    for message_id in ids[1:]:
        mark(message_id, status=MessageStatus.SENT)
    mark(ids[0], status=MessageStatus.SCHEDULED, due_at=NOW - timedelta(hours=2))

    with session_scope() as session:
        found = dashboard.needs_attention(session, Scope(clinic), NOW - timedelta(days=30), NOW)

    assert (found.late.total, found.red_flags.total, found.undeliverable.total) == (1, 0, 0)
