"""Enrolling, and cancel / reschedule / supersede, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, func, select

from dripcare.config import Settings
from dripcare.content.campaign_versions import import_campaign
from dripcare.content.campaigns import load_campaign_dir
from dripcare.db import session_scope
from dripcare.errors import NotFound, UserError
from dripcare.models import (
    Campaign,
    CampaignTemplate,
    CampaignVersion,
    Clinic,
    Enrollment,
    EnrollmentStatus,
    Message,
    MessageStatus,
    Patient,
    Step,
)
from dripcare.outbox.enrollment_changes import cancel, reschedule
from dripcare.outbox.enrollment_queries import get_enrollment
from dripcare.outbox.outbox_rows import REASON_LATE
from tests.campaign_fixtures import CAMPAIGN_DIR
from tests.factories import DAYTIME as NOW
from tests.factories import enroll_result, make_clinic, make_enrollment

NY = ZoneInfo("America/New_York")


def messages_of(enrollment_id: int) -> list[Message]:
    with session_scope() as session:
        rows = session.scalars(
            select(Message).where(Message.enrollment_id == enrollment_id).order_by(Message.due_at)
        ).all()
        for row in rows:
            _ = row.step.key
        return list(rows)


def count(model: type) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_enroll_schedules_the_whole_sequence_in_local_time(settings: Settings) -> None:
    clinic = make_clinic()
    enrollment = make_enrollment(settings, clinic, "2026-11-24T14:30", now=NOW)

    messages = messages_of(enrollment)

    assert [m.step.key for m in messages] == [
        "day-0",
        "day-1",
        "day-3",
        "day-7",
        "day-14",
        "day-28",
        "day-42",
    ]
    assert all(m.status == MessageStatus.SCHEDULED for m in messages)
    local = [m.due_at.astimezone(NY) for m in messages]
    assert local[0] == datetime(2026, 11, 24, 16, 30, tzinfo=NY)
    assert local[1] == datetime(2026, 11, 25, 9, 0, tzinfo=NY)
    assert local[5] == datetime(2026, 12, 22, 10, 0, tzinfo=NY)
    assert len({m.message_id for m in messages}) == 7
    assert all(m.message_id.endswith("@riverside.example>") for m in messages)


def test_patient_zone_overrides_the_clinic_zone(settings: Settings) -> None:
    clinic = make_clinic()
    enrollment = make_enrollment(
        settings, clinic, "2026-11-24T10:00", now=NOW, timezone="Europe/London"
    )

    day1 = messages_of(enrollment)[1]

    assert day1.due_at == datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def test_same_external_id_returns_the_existing_enrollment(settings: Settings) -> None:
    clinic = make_clinic()
    first = enroll_result(settings, clinic, "2026-11-24T14:30", NOW, external_id="bk-1")
    again = enroll_result(
        settings, clinic, "2026-11-20T09:00", NOW, external_id="bk-1", email="other@example.com"
    )

    assert again.created is False
    assert again.enrollment.id == first.enrollment.id
    assert count(Message) == 7
    assert count(Patient) == 1


def test_same_treatment_twice_without_external_id_is_not_duplicated(settings: Settings) -> None:
    clinic = make_clinic()
    first = enroll_result(settings, clinic, "2026-11-24T14:30", NOW)
    again = enroll_result(settings, clinic, "2026-11-24T14:30", NOW, email="PAT@Example.COM")

    assert (first.created, again.created) == (True, False)
    assert count(Enrollment) == 1


def test_late_treatment_skips_steps_past_the_grace_period(settings: Settings) -> None:
    clinic = make_clinic()
    enrollment = make_enrollment(settings, clinic, NOW - timedelta(days=3, hours=2), now=NOW)

    statuses = {m.step.key: (m.status, m.status_reason) for m in messages_of(enrollment)}

    assert statuses["day-0"] == (MessageStatus.SKIPPED, REASON_LATE)
    assert statuses["day-1"] == (MessageStatus.SKIPPED, REASON_LATE)
    assert statuses["day-3"][0] == MessageStatus.SCHEDULED  # within 24 h: still useful
    assert statuses["day-7"][0] == MessageStatus.SCHEDULED


def test_cancel_stops_unsent_messages_and_keeps_sent_ones(settings: Settings) -> None:
    clinic = make_clinic()
    enrollment_id = make_enrollment(settings, clinic, "2026-11-24T14:30", now=NOW)
    with session_scope() as session:
        first = session.scalars(
            select(Message).where(Message.enrollment_id == enrollment_id).order_by(Message.due_at)
        ).first()
        assert first is not None
        first.status = MessageStatus.SENT

    with session_scope() as session:
        stopped = cancel(session, get_enrollment(session, enrollment_id))
    with session_scope() as session:
        again = cancel(session, get_enrollment(session, enrollment_id))

    statuses = [m.status for m in messages_of(enrollment_id)]
    assert (stopped, again) == (6, 0)
    assert statuses == [MessageStatus.SENT] + [MessageStatus.CANCELLED] * 6


def test_reschedule_moves_unsent_messages_with_the_treatment(settings: Settings) -> None:
    clinic = make_clinic()
    enrollment_id = make_enrollment(settings, clinic, "2026-11-24T14:30", now=NOW)
    before = messages_of(enrollment_id)

    with session_scope() as session:
        moved = reschedule(
            session, get_enrollment(session, enrollment_id), "2026-11-26T14:30", settings, now=NOW
        )

    after = messages_of(enrollment_id)
    assert moved == 7
    assert [a.due_at - b.due_at for a, b in zip(after, before, strict=True)] == [
        timedelta(days=2)
    ] * 7


def test_reschedule_into_the_past_skips_and_back_restores(settings: Settings) -> None:
    clinic = make_clinic()
    enrollment_id = make_enrollment(settings, clinic, "2026-11-24T14:30", now=NOW)
    with session_scope() as session:
        reschedule(
            session, get_enrollment(session, enrollment_id), "2026-11-12T14:30", settings, now=NOW
        )
    skipped = [m.step.key for m in messages_of(enrollment_id) if m.status == MessageStatus.SKIPPED]
    with session_scope() as session:
        reschedule(
            session, get_enrollment(session, enrollment_id), "2026-11-24T14:30", settings, now=NOW
        )

    assert skipped == ["day-0", "day-1", "day-3", "day-7"]
    assert all(m.status == MessageStatus.SCHEDULED for m in messages_of(enrollment_id))


def test_new_treatment_of_the_same_kind_supersedes_the_old_sequence(settings: Settings) -> None:
    clinic = make_clinic()
    old = make_enrollment(settings, clinic, "2026-11-01T14:30", now=NOW)
    result = enroll_result(settings, clinic, "2026-11-24T14:30", NOW)

    with session_scope() as session:
        old_row = session.get(Enrollment, old)
        assert old_row is not None
        assert old_row.status == EnrollmentStatus.SUPERSEDED
        assert old_row.superseded_by_id == result.enrollment.id
    unsent_old = [m for m in messages_of(old) if m.status == MessageStatus.CANCELLED]
    assert result.superseded == [old]
    assert unsent_old and all("superseded" in m.status_reason for m in unsent_old)
    assert all(m.status == MessageStatus.SCHEDULED for m in messages_of(result.enrollment.id))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("email", "not-an-email", "invalid email address"),
        ("timezone", "Mars/Olympus", "unknown time zone"),
        ("campaign", "tattoo", "has no campaign 'tattoo'"),
        ("treated_at", "2026-13-45", "not an ISO date"),
        ("treated_at", "1999-12-31", "out of range"),
        ("treated_at", "2031-01-01", "out of range"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message_and_writes_nothing(
    settings: Settings, field: str, value: str, message: str
) -> None:
    clinic = make_clinic()
    fields = {"treated_at": "2026-11-24T14:30", field: value}
    treated_at = fields.pop("treated_at")

    with pytest.raises(UserError, match=message):
        enroll_result(settings, clinic, treated_at, NOW, **fields)

    assert (count(Enrollment), count(Message), count(Patient)) == (0, 0, 0)


def test_unknown_clinic_is_not_found(settings: Settings) -> None:
    with pytest.raises(NotFound, match="no clinic with id 99"):
        enroll_result(settings, 99, "2026-11-24", NOW)


def test_enrolling_again_updates_the_patient_only_with_what_is_given(settings: Settings) -> None:
    clinic = make_clinic()
    enroll_result(settings, clinic, "2026-11-24T14:30", NOW, first_name="Pat", last_name="Lee")
    enroll_result(
        settings,
        clinic,
        "2026-11-10T14:30",
        NOW,
        first_name="Patricia",
        last_name="",
        timezone="Europe/London",
    )

    with session_scope() as session:
        patient = session.scalars(select(Patient)).one()
        assert (patient.first_name, patient.last_name) == ("Patricia", "Lee")
        assert patient.timezone == "Europe/London"


def test_a_reimported_campaign_times_new_enrollments_by_its_new_steps(
    settings: Settings, tmp_path: Path
) -> None:
    clinic = make_clinic()
    before = make_enrollment(settings, clinic, "2026-11-24T14:30", now=NOW)
    copy = tmp_path / "microneedling"
    shutil.copytree(settings.templates_dir / "microneedling", copy)
    manifest = copy / "campaign.toml"
    text = manifest.read_text(encoding="utf-8")
    assert 'send_time = "09:00"' in text
    manifest.write_text(text.replace('send_time = "09:00"', 'send_time = "11:00"', 1))
    with session_scope() as session:
        import_campaign(session, session.get_one(Clinic, clinic), load_campaign_dir(copy))

    after = make_enrollment(settings, clinic, "2026-11-24T14:30", now=NOW, email="b@example.com")

    day1 = {e: messages_of(e)[1].due_at.astimezone(NY).hour for e in (before, after)}
    # A re-import publishes a new version: unsent emails already scheduled move with it.
    assert day1 == {before: 11, after: 11}


def with_second_campaign(clinic_id: int, default: str | None) -> None:
    """The clinic gets a second campaign (a copy of microneedling as "peel") and this default."""
    copy = dataclasses.replace(load_campaign_dir(CAMPAIGN_DIR), slug="peel", treatment="peel")
    with session_scope() as session:
        clinic = session.get_one(Clinic, clinic_id)
        import_campaign(session, clinic, copy)
        clinic.default_campaign = default


def campaign_of(enrollment_id: int) -> str:
    with session_scope() as session:
        return session.get_one(Enrollment, enrollment_id).campaign.slug


def test_without_a_campaign_the_clinics_default_is_followed(settings: Settings) -> None:
    clinic = make_clinic()
    with_second_campaign(clinic, default="peel")

    unnamed = make_enrollment(settings, clinic, "2026-11-24T14:30", NOW)
    named = make_enrollment(
        settings, clinic, "2026-11-24T14:30", NOW, campaign="microneedling", email="b@example.com"
    )

    assert (campaign_of(unnamed), campaign_of(named)) == ("peel", "microneedling")


def test_without_a_campaign_or_default_the_clinics_only_campaign_is_followed(
    settings: Settings,
) -> None:
    clinic = make_clinic(default_campaign=None)
    only_microneedling(clinic)

    enrollment = make_enrollment(settings, clinic, "2026-11-24T14:30", NOW)

    assert campaign_of(enrollment) == "microneedling"


def only_microneedling(clinic_id: int) -> None:
    """The clinic keeps one of the shipped campaigns."""
    with session_scope() as session:
        campaign = session.scalars(
            select(Campaign.id).where(
                Campaign.clinic_id == clinic_id, Campaign.slug != "microneedling"
            )
        ).all()
        for table in (Step, CampaignTemplate, CampaignVersion, Campaign):
            column = table.id if table is Campaign else table.campaign_id
            session.execute(delete(table).where(column.in_(campaign)))


def test_an_ambiguous_enrollment_is_refused_naming_the_clinics_campaigns(
    settings: Settings,
) -> None:
    clinic = make_clinic(default_campaign=None)
    only_microneedling(clinic)
    with_second_campaign(clinic, default=None)

    with pytest.raises(UserError) as info:
        enroll_result(settings, clinic, "2026-11-24T14:30", NOW)

    assert str(info.value).startswith("which campaign? this clinic has: microneedling, peel;")
    assert "--default-campaign" in str(info.value)
    assert (count(Enrollment), count(Message)) == (0, 0)


def test_a_default_campaign_the_clinic_lacks_is_refused_at_create(settings: Settings) -> None:
    with pytest.raises(UserError, match="has no campaign 'tattoo'"):
        make_clinic(default_campaign="tattoo")
