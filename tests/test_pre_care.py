"""Pre-care steps (negative offsets), the late-booking merge, skip conditions and treatment
attributes, through campaign.toml, enrolling and rescheduling, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from click.testing import CliRunner
from sqlalchemy import select

from dripcare.cli import main
from dripcare.config import Settings
from dripcare.content.campaign_versions import import_campaign
from dripcare.content.campaigns import load_campaign_dir
from dripcare.db import session_scope
from dripcare.errors import UserError
from dripcare.models import Clinic, Enrollment, Message, MessageStatus, StopCause
from dripcare.outbox.csv_import import import_file
from dripcare.outbox.enrollment_changes import reschedule
from dripcare.outbox.enrollment_marks import set_mark
from dripcare.outbox.enrollment_queries import get_enrollment
from dripcare.outbox.scheduling import StepTiming
from dripcare.outbox.skip_conditions import SkipCondition
from dripcare.sending.send_rules import hold
from tests.factories import make_clinic, make_enrollment

SAMPLE = Path(__file__).parent / "samples" / "precare"
NY = ZoneInfo("America/New_York")
NOW = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)  # Monday 10:00 in New York
SUPERFICIAL = {"peel_depth": "superficial"}


def campaign_dir(tmp_path: Path, settings: Settings, replace: tuple[str, str] = ("", "")) -> Path:
    """The sample campaign with the default layout and red-flag block (safety check)."""
    target = tmp_path / "precare"
    shutil.copytree(SAMPLE, target)
    for layout in (settings.templates_dir / "microneedling").glob("_*.mjml"):
        shutil.copy(layout, target)
    manifest = target / "campaign.toml"
    manifest.write_text(manifest.read_text(encoding="utf-8").replace(*replace), encoding="utf-8")
    return target


@pytest.fixture
def clinic(settings: Settings, tmp_path: Path) -> int:
    clinic_id = make_clinic()
    with session_scope() as session:
        spec = load_campaign_dir(campaign_dir(tmp_path, settings))
        import_campaign(session, session.get_one(Clinic, clinic_id), spec)
    return clinic_id


def rows(enrollment_id: int) -> dict[str, Message]:
    with session_scope() as session:
        found = session.scalars(select(Message).where(Message.enrollment_id == enrollment_id))
        result = {m.step.key: m for m in found}
        session.expunge_all()
        return result


def enroll_peel(settings: Settings, clinic: int, treated_at: str, **extra: object) -> int:
    fields: dict[str, object] = {"campaign": "precare", "attributes": SUPERFICIAL} | extra
    return make_enrollment(settings, clinic, treated_at, now=NOW, **fields)


# ---- campaign.toml --------------------------------------------------------------------------


def test_the_sample_reads_its_pre_care_keys(settings: Settings, tmp_path: Path) -> None:
    spec = load_campaign_dir(campaign_dir(tmp_path, settings))

    steps = {s.key: s for s in spec.steps}
    assert (steps["pre-14"].offset_days, steps["pre-14"].stop_now) == (-14, True)
    assert steps["late-booking"].late_booking and not steps["pre-1"].stop_now
    assert steps["rebook"].skip_if == ("next_session_booked", "one_off")
    assert spec.requires == {"peel_depth": ["superficial"]}


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("offset = { days = -14 }", "offset = { days = -14, hours = 2 }", "either before"),
        ('skip_if = ["next_session_booked", "one_off"]', 'skip_if = ["booked"]', "unknown cond"),
        ("stop_now = true", 'stop_now = "yes"', "stop_now must be true or false"),
        (
            "late_booking = true\nsubject",
            "late_booking = true\nsend_time = '09:00'\nsubject",
            "sent at enroll",
        ),
        ('peel_depth = ["superficial"]', "peel_depth = []", "must list the accepted values"),
        ("offset = { days = -14 }", "offset = { days = 3 }", "stop_now is for pre-care"),
    ],
)
def test_a_wrong_pre_care_key_is_refused_with_what_to_write(
    settings: Settings, tmp_path: Path, old: str, new: str, message: str
) -> None:
    with pytest.raises(UserError, match=message):
        load_campaign_dir(campaign_dir(tmp_path, settings, (old, new)))


# ---- enrolling at booking -------------------------------------------------------------------


def test_an_early_booking_gets_every_pre_care_email_and_no_merged_one(
    settings: Settings, clinic: int
) -> None:
    enrollment = enroll_peel(settings, clinic, "2026-11-20T09:00")  # 18 days ahead

    got = rows(enrollment)

    local = {k: m.due_at.astimezone(NY) for k, m in got.items()}
    assert local["pre-14"] == datetime(2026, 11, 6, 10, 0, tzinfo=NY)
    assert local["pre-7"] == datetime(2026, 11, 13, 10, 0, tzinfo=NY)
    assert local["pre-1"] == datetime(2026, 11, 19, 17, 0, tzinfo=NY)
    assert all(got[k].status == MessageStatus.SCHEDULED for k in ("pre-14", "pre-7", "pre-1"))
    assert got["late-booking"].status == MessageStatus.SKIPPED
    assert got["late-booking"].stop_cause == StopCause.NOTHING_MISSED


def test_a_late_booking_merges_the_missed_stop_now_emails_into_one_sent_now(
    settings: Settings, clinic: int
) -> None:
    enrollment = enroll_peel(settings, clinic, "2026-11-07T09:00")  # 5 days ahead

    got = rows(enrollment)

    assert got["pre-14"].status == got["pre-7"].status == MessageStatus.SKIPPED
    assert got["pre-14"].stop_cause == StopCause.LATE
    assert got["pre-1"].status == MessageStatus.SCHEDULED
    assert got["late-booking"].status == MessageStatus.SCHEDULED
    assert got["late-booking"].due_at == NOW
    with session_scope() as session:
        assert get_enrollment(session, enrollment).missed_steps == ["pre-14", "pre-7"]


def test_only_the_stop_now_emails_actually_missed_are_listed(
    settings: Settings, clinic: int
) -> None:
    enrollment = enroll_peel(settings, clinic, "2026-11-12T09:00")  # pre-7 still ahead

    got = rows(enrollment)

    assert got["pre-7"].status == MessageStatus.SCHEDULED
    with session_scope() as session:
        assert get_enrollment(session, enrollment).missed_steps == ["pre-14"]


def test_a_treatment_already_done_gets_no_merged_pre_care_email(
    settings: Settings, clinic: int
) -> None:
    enrollment = enroll_peel(settings, clinic, "2026-11-01T09:00")

    merged = rows(enrollment)["late-booking"]

    assert merged.status == MessageStatus.SKIPPED
    assert "treatment time has passed" in merged.status_reason


def test_rescheduling_moves_pre_care_and_merges_what_is_now_missed(
    settings: Settings, clinic: int
) -> None:
    enrollment = enroll_peel(settings, clinic, "2026-11-30T09:00")
    assert rows(enrollment)["late-booking"].status == MessageStatus.SKIPPED

    with session_scope() as session:
        reschedule(session, get_enrollment(session, enrollment), "2026-11-10T09:00", settings, NOW)

    got = rows(enrollment)
    assert got["pre-14"].stop_cause == StopCause.LATE
    assert got["pre-7"].due_at.astimezone(NY) == datetime(2026, 11, 3, 10, 0, tzinfo=NY)
    assert got["late-booking"].status == MessageStatus.SCHEDULED
    with session_scope() as session:
        assert get_enrollment(session, enrollment).missed_steps == ["pre-14"]


# ---- treatment attributes -------------------------------------------------------------------


@pytest.mark.parametrize("attributes", [{}, {"peel_depth": "medium"}, {"peel_depth": "deep"}])
def test_a_peel_not_marked_superficial_is_refused_and_nothing_written(
    settings: Settings, clinic: int, attributes: dict[str, str]
) -> None:
    with pytest.raises(UserError, match=r"superficial peels only.*physician's own"):
        enroll_peel(settings, clinic, "2026-11-20T09:00", attributes=attributes)

    with session_scope() as session:
        assert session.scalars(select(Enrollment)).first() is None


def test_a_superficial_peel_is_stored_with_its_attributes(settings: Settings, clinic: int) -> None:
    enrollment = enroll_peel(
        settings, clinic, "2026-11-20T09:00", attributes={"peel_depth": "Superficial"}
    )

    with session_scope() as session:
        assert get_enrollment(session, enrollment).attributes == {"peel_depth": "superficial"}


# ---- skip conditions ------------------------------------------------------------------------


def test_marking_the_next_session_booked_skips_the_rebooking_email_and_unmarking_restores_it(
    settings: Settings, clinic: int
) -> None:
    enrollment = enroll_peel(settings, clinic, "2026-11-20T09:00")
    booked = SkipCondition.NEXT_SESSION_BOOKED

    with session_scope() as session:
        assert set_mark(session, get_enrollment(session, enrollment), booked, True, settings, NOW)
    skipped = rows(enrollment)["rebook"]
    assert (skipped.status, skipped.stop_cause) == (MessageStatus.SKIPPED, StopCause.CONDITION)
    assert skipped.status_reason == "skipped: the next session is booked"
    assert rows(enrollment)["pre-1"].status == MessageStatus.SCHEDULED

    with session_scope() as session:
        assert set_mark(session, get_enrollment(session, enrollment), booked, False, settings, NOW)
    restored = rows(enrollment)["rebook"]
    assert (restored.status, restored.due_at) == (MessageStatus.SCHEDULED, skipped.due_at)


def test_unmarking_one_condition_keeps_the_email_skipped_while_another_holds(
    settings: Settings, clinic: int
) -> None:
    enrollment = enroll_peel(settings, clinic, "2026-11-20T09:00")
    with session_scope() as session:
        e = get_enrollment(session, enrollment)
        set_mark(session, e, SkipCondition.ONE_OFF, True, settings, NOW)
        set_mark(session, e, SkipCondition.NEXT_SESSION_BOOKED, True, settings, NOW)
        set_mark(session, e, SkipCondition.NEXT_SESSION_BOOKED, False, settings, NOW)

    assert rows(enrollment)["rebook"].stop_cause == StopCause.CONDITION


def test_unmarking_after_the_email_would_be_too_late_does_not_send_it(
    settings: Settings, clinic: int
) -> None:
    enrollment = enroll_peel(settings, clinic, "2026-11-20T09:00")
    booked = SkipCondition.NEXT_SESSION_BOOKED
    with session_scope() as session:
        set_mark(session, get_enrollment(session, enrollment), booked, True, settings, NOW)
    later = NOW + timedelta(days=61)

    with session_scope() as session:
        restored = set_mark(
            session, get_enrollment(session, enrollment), booked, False, settings, later
        )

    assert restored == 0
    assert rows(enrollment)["rebook"].stop_cause == StopCause.LATE


# ---- CLI and CSV ----------------------------------------------------------------------------


def test_the_cli_takes_the_peel_depth_and_refuses_a_deep_peel(
    settings: Settings, clinic: int
) -> None:
    args = ["enroll", "--clinic", str(clinic), "--email", "pat@example.com", "--json"]
    args += ["--treatment", "precare", "--treated-at", "2026-11-20T09:00"]

    with time_machine.travel(NOW, tick=True):
        refused = CliRunner().invoke(main, [*args, "--peel-depth", "deep"])
        accepted = CliRunner().invoke(main, [*args, "--peel-depth", "superficial"])

    assert refused.exit_code == 2
    assert "superficial peels only" in refused.stderr
    assert accepted.exit_code == 0, accepted.output
    status = {m["step"]: m["status"] for m in json.loads(accepted.stdout)["messages"]}
    assert status["pre-14"] == status["pre-7"] == status["pre-1"] == "scheduled"


def test_a_csv_peel_depth_column_is_checked_row_by_row(
    settings: Settings, clinic: int, tmp_path: Path
) -> None:
    rows_file = tmp_path / "bookings.csv"
    rows_file.write_text(
        "email,treated_at,treatment,peel_depth\n"
        "a@example.com,2026-11-20T09:00,precare,superficial\n"
        "b@example.com,2026-11-20T09:00,precare,medium\n",
        encoding="utf-8",
    )

    with time_machine.travel(NOW, tick=True):
        report = import_file(rows_file, clinic, settings)

    assert report.created == 1
    assert [e.line for e in report.errors] == [3]
    assert "physician's own aftercare protocol" in report.errors[0].reason


def test_a_pre_care_email_is_never_sent_once_the_treatment_time_is_reached(
    settings: Settings,
) -> None:
    treated = datetime(2026, 11, 20, 19, 0, tzinfo=UTC)  # 14:00 in New York
    enrollment = Enrollment(treated_at=treated, timezone="America/New_York")
    timing = StepTiming(days=-1, send_time=time(17, 0))  # 16 h before: inside its 24 h window

    before = hold(
        Clinic(quiet_hours=None), enrollment, timing, settings, treated - timedelta(hours=2)
    )
    after = hold(
        Clinic(quiet_hours=None), enrollment, timing, settings, treated + timedelta(hours=1)
    )

    assert before is None
    assert after is not None and after.status == MessageStatus.SKIPPED
    assert "treatment time has passed" in after.reason


def test_publishing_a_new_late_booking_step_adds_no_email_to_existing_enrollments(
    settings: Settings, tmp_path: Path
) -> None:
    clinic_id = make_clinic()
    without = ('key = "late-booking"\nlate_booking = true\n', 'key = "plain"\n')
    with session_scope() as session:
        spec = load_campaign_dir(campaign_dir(tmp_path / "v1", settings, without))
        import_campaign(session, session.get_one(Clinic, clinic_id), spec)
    enrollment = enroll_peel(settings, clinic_id, "2026-11-07T09:00")  # pre-14, pre-7 missed
    assert "late-booking" not in rows(enrollment)

    spec = load_campaign_dir(campaign_dir(tmp_path / "v2", settings))
    with time_machine.travel(NOW, tick=True), session_scope() as session:
        import_campaign(session, session.get_one(Clinic, clinic_id), spec)

    assert "late-booking" not in rows(enrollment)  # it would have gone at the treatment time
