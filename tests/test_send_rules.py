"""Send-time rules: the patient's night and how late a step may still go out, checked as a
message is about to be sent (retries, backlogs), on both databases and a real SMTP server."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine
from sqlalchemy import select

from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.errors import UserError
from dripcare.models import Clinic, Enrollment, Message, MessageStatus
from dripcare.outbox.enrollment_changes import reschedule
from dripcare.outbox.enrollment_queries import get_enrollment
from dripcare.outbox.scheduling import StepTiming
from dripcare.people.clinics import set_quiet_hours
from dripcare.sending.send_rules import Hold, format_window, hold, parse_window
from tests.factories import make_clinic, make_enrollment, send_due
from tests.smtp_server import SMTPServer

NY = "America/New_York"
TREATED = datetime(2026, 11, 24, 19, 30, tzinfo=UTC)  # 14:30 in New York; day-0 due 16:30
DAY_0 = StepTiming(hours=2, send_until=timedelta(days=1))
DAY_1 = StepTiming(days=1, send_time=time(9, 0), send_until=timedelta(days=1))
RULES = Settings(quiet_hours="21:00-08:00", late_grace_hours=24)


def held(
    timing: StepTiming, now: datetime, treated: datetime = TREATED, quiet: str | None = None
) -> Hold | None:
    clinic = Clinic(quiet_hours=quiet)
    enrollment = Enrollment(treated_at=treated, timezone=NY)
    return hold(clinic, enrollment, timing, RULES, now)


# --- send_until ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "window"),
    [
        ("1d", timedelta(days=1)),
        ("36h", timedelta(hours=36)),
        ("2d12h", timedelta(days=2, hours=12)),
        ("90m", timedelta(minutes=90)),
        (" 1d 6h ", timedelta(days=1, hours=6)),
    ],
)
def test_send_until_reads_days_hours_and_minutes(text: str, window: timedelta) -> None:
    assert parse_window(text) == window
    assert parse_window(format_window(window)) == window


@pytest.mark.parametrize("text", ["", "0d", "1w", "-1d", "1.5d", "d", "1h1d", "١d"])
def test_send_until_refuses_anything_else_with_the_expected_shape(text: str) -> None:
    with pytest.raises(ValueError, match="send_until must"):
        parse_window(text)


# --- the rules, as pure functions ---------------------------------------------------------------


def test_a_message_due_in_the_daytime_goes_now() -> None:
    assert held(DAY_0, datetime(2026, 11, 24, 22, 0, tzinfo=UTC)) is None  # 17:00 local


def test_a_retry_that_lands_at_3am_local_waits_for_the_end_of_quiet_hours() -> None:
    verdict = held(DAY_0, datetime(2026, 11, 25, 8, 0, tzinfo=UTC))  # 03:00 in New York

    assert verdict is not None and verdict.status == MessageStatus.SCHEDULED
    assert verdict.due_at == datetime(2026, 11, 25, 13, 0, tzinfo=UTC)  # 08:00 local
    assert "quiet hours 21:00-08:00 in America/New_York" in verdict.reason


def test_the_clinics_own_quiet_hours_replace_the_global_ones() -> None:
    at = datetime(2026, 11, 25, 13, 30, tzinfo=UTC)  # 08:30 local: allowed globally
    assert held(DAY_0, at) is None

    verdict = held(DAY_0, at, quiet="22:00-09:00")

    assert verdict is not None and verdict.due_at == datetime(2026, 11, 25, 14, 0, tzinfo=UTC)


def test_a_backlog_of_a_day_goes_out_while_still_useful_and_skips_what_is_not() -> None:
    # Day-1 is planned for 09:00 on the 25th (14:00 UTC); the outage ends 23 h later, at night.
    night = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)  # 01:00 local
    verdict = held(DAY_1, night)
    assert verdict is not None and verdict.status == MessageStatus.SCHEDULED
    assert verdict.due_at == datetime(2026, 11, 26, 13, 0, tzinfo=UTC)  # 08:00, inside the day

    assert held(DAY_1, datetime(2026, 11, 26, 13, 59, tzinfo=UTC)) is None
    late = held(DAY_1, datetime(2026, 11, 26, 14, 1, tzinfo=UTC))
    assert late is not None and late.status == MessageStatus.SKIPPED
    assert late.reason == (
        "too late to be useful: planned for 2026-11-25 09:00 America/New_York, to be sent within 1d"
    )


def test_a_message_whose_night_outlasts_its_window_is_skipped_now_not_held() -> None:
    timing = StepTiming(days=1, send_time=time(9, 0), send_until=timedelta(hours=13))
    verdict = held(timing, datetime(2026, 11, 26, 2, 30, tzinfo=UTC))  # 21:30: closes at 22:00

    assert verdict is not None and verdict.status == MessageStatus.SKIPPED


def test_without_send_until_the_late_grace_setting_is_the_window() -> None:
    timing = StepTiming(days=1, send_time=time(9, 0))
    assert held(timing, datetime(2026, 11, 26, 13, 59, tzinfo=UTC)) is None
    verdict = held(timing, datetime(2026, 11, 26, 14, 1, tzinfo=UTC))
    assert verdict is not None and verdict.status == MessageStatus.SKIPPED


def test_quiet_hours_ending_in_a_spring_forward_gap_end_after_the_gap() -> None:
    # 2027-03-14 in New York: 02:00 EST jumps to 03:00 EDT, so 02:30 never happens.
    treated = datetime(2027, 3, 13, 20, 0, tzinfo=UTC)
    verdict = held(DAY_0, datetime(2027, 3, 14, 6, 0, tzinfo=UTC), treated, "22:00-02:30")

    assert verdict is not None and verdict.due_at == datetime(2027, 3, 14, 7, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "until"),
    [
        # 2026-11-01 in New York: 01:00-01:59 happens twice (EDT, then EST).
        (datetime(2026, 11, 1, 5, 0, tzinfo=UTC), datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),
        (datetime(2026, 11, 1, 6, 10, tzinfo=UTC), datetime(2026, 11, 1, 6, 30, tzinfo=UTC)),
    ],
    ids=["first 01:00 waits for the first 01:30", "repeated 01:10 waits for the second 01:30"],
)
def test_quiet_hours_ending_in_the_repeated_fall_back_hour(now: datetime, until: datetime) -> None:
    treated = datetime(2026, 10, 31, 20, 0, tzinfo=UTC)
    verdict = held(DAY_0, now, treated, "21:00-01:30")

    assert verdict is not None and verdict.due_at == until


# --- in the send path ---------------------------------------------------------------------------


def messages() -> dict[str, Message]:
    with session_scope() as session:
        found = session.scalars(select(Message)).all()
        return {m.step.key: m for m in found}


def test_a_retry_that_falls_in_the_night_is_held_without_counting_an_attempt(
    settings: Settings, smtp_server: SMTPServer
) -> None:
    # Given a day-0 email refused once at 20:59 local, retried about a minute later
    clinic = make_clinic()
    with time_machine.travel(TREATED, tick=False):
        make_enrollment(settings, clinic, TREATED)
    smtp_server.recorder.rcpt_replies["pat@example.com"] = "451 4.7.1 greylisted, try later"
    with time_machine.travel(datetime(2026, 11, 25, 1, 59, 30, tzinfo=UTC), tick=False):
        assert send_due(smtp_server)["deferred"] == 1
    smtp_server.recorder.rcpt_replies.clear()
    retry_at = messages()["day-0"].due_at

    # When the retry comes due at 21:00 local
    with time_machine.travel(retry_at + timedelta(seconds=1), tick=False):
        totals = send_due(smtp_server)

    # Then nothing is sent; it waits for 08:00 local, still on its first attempt
    day_0 = messages()["day-0"]
    assert (totals["sent"], totals["deferred"]) == (0, 1)
    assert smtp_server.recorder.messages == []
    assert (day_0.status, day_0.attempts) == (MessageStatus.SCHEDULED, 1)
    assert day_0.due_at == datetime(2026, 11, 25, 13, 0, tzinfo=UTC)
    assert day_0.status_reason.startswith("quiet hours 21:00-08:00 in America/New_York")
    with time_machine.travel(day_0.due_at + timedelta(seconds=1), tick=False):
        assert send_due(smtp_server)["sent"] == 1
    assert len(smtp_server.recorder.messages) == 1


def test_a_backlog_after_a_day_long_outage_skips_stale_steps_with_a_reason(
    settings: Settings, smtp_server: SMTPServer
) -> None:
    clinic = make_clinic()
    with time_machine.travel(TREATED, tick=False):
        make_enrollment(settings, clinic, TREATED)

    # The server comes back at 08:30 local on day 2: day-0 (16:30 on day 0) is past its day.
    with time_machine.travel(datetime(2026, 11, 26, 13, 30, tzinfo=UTC), tick=False):
        totals = send_due(smtp_server)

    found = messages()
    assert (totals["sent"], totals["skipped"]) == (1, 1)
    assert found["day-0"].status == MessageStatus.SKIPPED
    assert found["day-0"].status_reason.startswith("too late to be useful: planned for 2026-11-24")
    assert found["day-1"].status == MessageStatus.SENT


def test_a_clinic_with_later_mornings_holds_what_the_global_rule_would_send(
    settings: Settings, smtp_server: SMTPServer
) -> None:
    clinic = make_clinic()
    with session_scope() as session:
        set_quiet_hours(session.get_one(Clinic, clinic), " 22:00 - 09:30 ")
    with time_machine.travel(TREATED, tick=False):
        make_enrollment(settings, clinic, TREATED)

    with time_machine.travel(datetime(2026, 11, 25, 14, 0, tzinfo=UTC), tick=False):  # 09:00
        assert send_due(smtp_server)["sent"] == 0

    assert messages()["day-0"].due_at == datetime(2026, 11, 25, 14, 30, tzinfo=UTC)
    with session_scope() as session:
        assert session.get_one(Clinic, clinic).quiet_hours == "22:00-09:30"


def test_clinic_quiet_hours_refuse_a_typo_and_go_back_to_the_default(settings: Settings) -> None:
    clinic = make_clinic()
    with session_scope() as session:
        row = session.get_one(Clinic, clinic)
        with pytest.raises(UserError, match="must look like 21:00-08:00"):
            set_quiet_hours(row, "9pm-8am")
        with pytest.raises(UserError, match="start and end at the same time"):
            set_quiet_hours(row, "07:00-7:00")
        set_quiet_hours(row, "21:00-07:00")
        set_quiet_hours(row, "default")
        assert row.quiet_hours is None


def test_enrolling_and_rescheduling_schedule_by_the_clinics_quiet_hours(
    settings: Settings,
) -> None:
    clinic = make_clinic()
    with session_scope() as session:
        set_quiet_hours(session.get_one(Clinic, clinic), "22:00-09:30")
    with time_machine.travel(TREATED, tick=False):
        enrollment = make_enrollment(settings, clinic, TREATED)
    # day-1 at 09:00 in New York falls in the clinic's quiet hours: 09:30 (14:30 UTC)
    assert messages()["day-1"].due_at == datetime(2026, 11, 25, 14, 30, tzinfo=UTC)

    with time_machine.travel(TREATED, tick=False), session_scope() as session:
        moved = TREATED + timedelta(days=1)
        reschedule(session, get_enrollment(session, enrollment), moved, settings)
    assert messages()["day-1"].due_at == datetime(2026, 11, 26, 14, 30, tzinfo=UTC)
