"""Tests for dripcare.outbox.scheduling.

Expected UTC instants are worked out by hand from the published DST rules (noted next to each
case), not by asking zoneinfo, so a wrong use of zoneinfo in the module shows up as a failure.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dripcare.outbox.scheduling import (
    DEFAULT_QUIET_HOURS,
    QuietHours,
    StepTiming,
    compute_due_at,
    local_to_utc,
    parse_local_time,
)
from tests.fast_loop import examples

# 2026 transitions, local wall clock:
# New York    EST -5 / EDT -4        03-08 02:00->03:00   11-01 02:00->01:00
# London      GMT / BST +1           03-29 01:00->02:00   10-25 02:00->01:00
# Lord Howe   +10:30 / +11           10-04 02:00->02:30   04-05 02:00->01:30
# Chatham     +12:45 / +13:45        09-27 02:45->03:45   04-05 03:45->02:45
# Kolkata     +5:30, no DST
NEW_YORK = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
KOLKATA = ZoneInfo("Asia/Kolkata")
CHATHAM = ZoneInfo("Pacific/Chatham")

NO_QUIET = None


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(zone: ZoneInfo, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=zone, fold=fold)


# --- parse_local_time -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("09:00", time(9, 0)),
        ("9:00", time(9, 0)),
        ("00:00", time(0, 0)),
        ("23:59", time(23, 59)),
        ("7:05", time(7, 5)),
        (" 21:30 ", time(21, 30)),
    ],
)
def test_parse_local_time_accepts(text: str, expected: time) -> None:
    assert parse_local_time(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "9", "900", "24:00", "09:60", "9:0", "09:00:00", "-1:00", "9h00", "09:00pm", "٠٩:٠٠", "x"],
)
def test_parse_local_time_rejects_with_clear_message(text: str) -> None:
    with pytest.raises(ValueError, match=r"local time must look like 09:00") as info:
        parse_local_time(text)
    assert repr(text) in str(info.value)


def test_parse_local_time_rejects_non_string() -> None:
    with pytest.raises(ValueError, match="local time must look like"):
        parse_local_time(900)  # type: ignore[arg-type]


# --- QuietHours -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("21:00-08:00", QuietHours(time(21, 0), time(8, 0))),
        ("12:00-13:00", QuietHours(time(12, 0), time(13, 0))),
        ("9:00-9:30", QuietHours(time(9, 0), time(9, 30))),
        (" 22:15 - 6:45 ", QuietHours(time(22, 15), time(6, 45))),
        ("00:00-00:00", QuietHours(time(0, 0), time(0, 0))),
    ],
)
def test_quiet_hours_parse_accepts(text: str, expected: QuietHours) -> None:
    assert QuietHours.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "x",
        "",
        "21:00",
        "21:00-",
        "-08:00",
        "21:00-25:00",
        "21:00–08:00",
        "21:00-08:00-09:00",
        "9-8",
    ],
)
def test_quiet_hours_parse_rejects_with_clear_message(text: str) -> None:
    expected = f"quiet hours must look like 21:00-08:00, got {text!r}"
    with pytest.raises(ValueError) as info:
        QuietHours.parse(text)
    assert str(info.value).startswith(expected)


def test_quiet_hours_parse_message_is_exact_for_garbage() -> None:
    with pytest.raises(ValueError) as info:
        QuietHours.parse("x")
    assert str(info.value) == "quiet hours must look like 21:00-08:00, got 'x'"


def test_default_quiet_hours_are_nine_pm_to_eight_am() -> None:
    assert QuietHours(time(21, 0), time(8, 0)) == DEFAULT_QUIET_HOURS


@pytest.mark.parametrize(
    ("at", "inside"),
    [
        (time(20, 59, 59), False),
        (time(21, 0), True),
        (time(23, 59, 59, 999999), True),
        (time(0, 0), True),
        (time(3, 0), True),
        (time(7, 59, 59), True),
        (time(8, 0), False),
        (time(12, 0), False),
    ],
)
def test_quiet_hours_wrapping_midnight(at: time, inside: bool) -> None:
    assert QuietHours(time(21, 0), time(8, 0)).contains(at) is inside


@pytest.mark.parametrize(
    ("at", "inside"),
    [
        (time(0, 0), False),
        (time(11, 59, 59), False),
        (time(12, 0), True),
        (time(12, 30), True),
        (time(13, 0), False),
        (time(23, 0), False),
    ],
)
def test_quiet_hours_not_wrapping(at: time, inside: bool) -> None:
    assert QuietHours(time(12, 0), time(13, 0)).contains(at) is inside


@pytest.mark.parametrize("at", [time(0, 0), time(9, 0), time(9, 0, 1), time(23, 59)])
def test_quiet_hours_with_equal_ends_are_disabled(at: time) -> None:
    assert QuietHours(time(9, 0), time(9, 0)).contains(at) is False


# --- StepTiming -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "parts", [{"days": -1, "hours": 3}, {"days": 1, "minutes": -5}, {"hours": -2, "minutes": 30}]
)
def test_step_timing_rejects_offsets_on_both_sides_of_the_treatment(parts: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="either before the treatment"):
        StepTiming(**parts)


@pytest.mark.parametrize(
    ("parts", "before"),
    [
        ({"days": -14}, True),
        ({"hours": -2, "minutes": -30}, True),
        ({"days": 3}, False),
        ({}, False),
    ],
)
def test_step_timing_knows_a_pre_care_step(parts: dict[str, int], before: bool) -> None:
    assert StepTiming(**parts).before_treatment is before


def test_step_timing_is_frozen_and_defaults_to_immediate() -> None:
    timing = StepTiming()
    assert (timing.days, timing.hours, timing.minutes, timing.send_time) == (0, 0, 0, None)
    with pytest.raises(AttributeError):
        timing.days = 1  # type: ignore[misc]


# --- local_to_utc -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day", "at", "expected"),
    [
        # ordinary days
        (NEW_YORK, date(2026, 1, 15), time(9, 0), utc(2026, 1, 15, 14, 0)),
        (NEW_YORK, date(2026, 7, 15), time(9, 0), utc(2026, 7, 15, 13, 0)),
        # New York spring-forward gap 02:00-03:00 EST: read at -5, i.e. pushed past the gap
        (NEW_YORK, date(2026, 3, 8), time(2, 0), utc(2026, 3, 8, 7, 0)),
        (NEW_YORK, date(2026, 3, 8), time(2, 30), utc(2026, 3, 8, 7, 30)),
        (NEW_YORK, date(2026, 3, 8), time(2, 59), utc(2026, 3, 8, 7, 59)),
        (NEW_YORK, date(2026, 3, 8), time(3, 0), utc(2026, 3, 8, 7, 0)),
        # New York fall-back: 01:00-02:00 happens twice; first (EDT, -4) wins
        (NEW_YORK, date(2026, 11, 1), time(1, 30), utc(2026, 11, 1, 5, 30)),
        (NEW_YORK, date(2026, 11, 1), time(1, 30, fold=1), utc(2026, 11, 1, 5, 30)),
        (NEW_YORK, date(2026, 11, 1), time(2, 0), utc(2026, 11, 1, 7, 0)),
        # London: gap 01:00-02:00 GMT, repeated 01:00-02:00 (BST first)
        (LONDON, date(2026, 3, 29), time(1, 30), utc(2026, 3, 29, 1, 30)),
        (LONDON, date(2026, 3, 29), time(2, 0), utc(2026, 3, 29, 1, 0)),
        (LONDON, date(2026, 10, 25), time(1, 30), utc(2026, 10, 25, 0, 30)),
        (LONDON, date(2026, 10, 25), time(2, 0), utc(2026, 10, 25, 2, 0)),
        # Lord Howe: 30-minute gap 02:00-02:30 (+10:30) and 30-minute repeat 01:30-02:00 (+11 first)
        (LORD_HOWE, date(2026, 10, 4), time(2, 15), utc(2026, 10, 3, 15, 45)),
        (LORD_HOWE, date(2026, 10, 4), time(2, 30), utc(2026, 10, 3, 15, 30)),
        (LORD_HOWE, date(2026, 4, 5), time(1, 45), utc(2026, 4, 4, 14, 45)),
        (LORD_HOWE, date(2026, 4, 5), time(2, 0), utc(2026, 4, 4, 15, 30)),
        # Kolkata: no DST at all, and a half-hour offset
        (KOLKATA, date(2026, 3, 8), time(2, 30), utc(2026, 3, 7, 21, 0)),
        (KOLKATA, date(2026, 11, 1), time(1, 30), utc(2026, 10, 31, 20, 0)),
        # Chatham: +12:45 with a gap 02:45-03:45 and a repeat 02:45-03:45 (+13:45 first)
        (CHATHAM, date(2026, 7, 1), time(9, 0), utc(2026, 6, 30, 20, 15)),
        (CHATHAM, date(2026, 9, 27), time(3, 0), utc(2026, 9, 26, 14, 15)),
        (CHATHAM, date(2026, 4, 5), time(3, 0), utc(2026, 4, 4, 13, 15)),
    ],
)
def test_local_to_utc(zone: ZoneInfo, day: date, at: time, expected: datetime) -> None:
    result = local_to_utc(day, at, zone)
    assert result == expected
    assert result.tzinfo is UTC


def test_local_to_utc_gap_lands_after_the_gap_by_its_length() -> None:
    result = local_to_utc(date(2026, 3, 8), time(2, 30), NEW_YORK).astimezone(NEW_YORK)
    assert (result.time(), result.utcoffset()) == (time(3, 30), timedelta(hours=-4))


def test_local_to_utc_ignores_tzinfo_on_the_time() -> None:
    assert local_to_utc(date(2026, 1, 15), time(9, 0, tzinfo=UTC), NEW_YORK) == utc(
        2026, 1, 15, 14, 0
    )


# --- compute_due_at: basics -------------------------------------------------------------------


def test_naive_treated_at_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        compute_due_at(datetime(2026, 6, 10, 12, 0), StepTiming(hours=1), NEW_YORK)


def test_immediate_step_is_due_at_treatment() -> None:
    treated = local(NEW_YORK, 2026, 6, 10, 12, 0)
    result = compute_due_at(treated, StepTiming(), NEW_YORK)
    assert result == utc(2026, 6, 10, 16, 0)
    assert result.tzinfo is UTC


def test_treated_at_in_another_zone_is_the_same_instant() -> None:
    timing = StepTiming(days=1, send_time=time(9, 0))
    in_new_york = local(NEW_YORK, 2026, 6, 10, 23, 30)
    in_tokyo = in_new_york.astimezone(ZoneInfo("Asia/Tokyo"))
    fixed = in_new_york.astimezone(timezone(timedelta(hours=5, minutes=45)))
    expected = utc(2026, 6, 11, 13, 0)
    assert compute_due_at(in_new_york, timing, NEW_YORK) == expected
    assert compute_due_at(in_tokyo, timing, NEW_YORK) == expected
    assert compute_due_at(fixed, timing, NEW_YORK) == expected


def test_hours_and_minutes_add_up() -> None:
    treated = local(NEW_YORK, 2026, 6, 10, 10, 0)
    result = compute_due_at(treated, StepTiming(hours=1, minutes=90), NEW_YORK)
    assert result == utc(2026, 6, 10, 16, 30)


def test_sub_second_precision_is_kept_without_send_time() -> None:
    treated = utc(2026, 6, 10, 14, 0, 5, 123456)
    assert compute_due_at(treated, StepTiming(minutes=1), NEW_YORK) == utc(
        2026, 6, 10, 14, 1, 5, 123456
    )


# --- compute_due_at: days on the wall clock, hours as elapsed time ----------------------------


@pytest.mark.parametrize(
    ("zone", "treated", "timing", "expected"),
    [
        # +1 day across New York spring-forward: 14:00 EST -> 14:00 EDT, only 23h later
        (NEW_YORK, local(NEW_YORK, 2026, 3, 7, 14), StepTiming(days=1), utc(2026, 3, 8, 18)),
        # +24 hours across it is elapsed time: 15:00 EDT
        (NEW_YORK, local(NEW_YORK, 2026, 3, 7, 14), StepTiming(hours=24), utc(2026, 3, 8, 19)),
        # +1 day across fall-back: 14:00 EDT -> 14:00 EST, 25h later
        (NEW_YORK, local(NEW_YORK, 2026, 10, 31, 14), StepTiming(days=1), utc(2026, 11, 1, 19)),
        (NEW_YORK, local(NEW_YORK, 2026, 10, 31, 14), StepTiming(hours=24), utc(2026, 11, 1, 18)),
        # days first, then hours: 00:30 EDT next day + 2h elapsed = 01:30 EST (06:30Z);
        # hours first would give 02:30 EST (07:30Z)
        (
            NEW_YORK,
            local(NEW_YORK, 2026, 10, 31, 0, 30),
            StepTiming(days=1, hours=2),
            utc(2026, 11, 1, 6, 30),
        ),
        # +1 day onto a wall time that falls in the gap: 02:30 -> 03:30 EDT
        (NEW_YORK, local(NEW_YORK, 2026, 3, 7, 2, 30), StepTiming(days=1), utc(2026, 3, 8, 7, 30)),
        # +1 day from the second 01:30 (EST) keeps wall 01:30 the next day
        (
            NEW_YORK,
            local(NEW_YORK, 2026, 11, 1, 1, 30, fold=1),
            StepTiming(days=1),
            utc(2026, 11, 2, 6, 30),
        ),
        # London both ways
        (LONDON, local(LONDON, 2026, 3, 28, 10), StepTiming(days=1), utc(2026, 3, 29, 9)),
        (LONDON, local(LONDON, 2026, 10, 24, 10), StepTiming(days=1), utc(2026, 10, 25, 10)),
        (LONDON, local(LONDON, 2026, 3, 22, 10), StepTiming(days=14), utc(2026, 4, 5, 9)),
        # Lord Howe: the day is only 23.5h long on 2026-10-04
        (LORD_HOWE, local(LORD_HOWE, 2026, 10, 3, 14), StepTiming(days=1), utc(2026, 10, 4, 3)),
        (
            LORD_HOWE,
            local(LORD_HOWE, 2026, 10, 3, 14),
            StepTiming(hours=24),
            utc(2026, 10, 4, 3, 30),
        ),
        # Kolkata: no DST, one day is always 24h
        (KOLKATA, local(KOLKATA, 2026, 3, 7, 14), StepTiming(days=1), utc(2026, 3, 8, 8, 30)),
        # Chatham across its spring-forward: 10:00 +12:45 -> 10:00 +13:45
        (CHATHAM, local(CHATHAM, 2026, 9, 26, 10), StepTiming(days=1), utc(2026, 9, 26, 20, 15)),
    ],
)
def test_days_are_wall_clock_hours_are_elapsed(
    zone: ZoneInfo, treated: datetime, timing: StepTiming, expected: datetime
) -> None:
    assert compute_due_at(treated, timing, zone, NO_QUIET) == expected


# --- compute_due_at: pre-care (negative offsets) ----------------------------------------------


def test_fourteen_days_before_at_ten_is_local_ten_across_dst_start() -> None:
    # Treatment 2026-03-20 14:00 EDT (-4); 14 days earlier is 03-06, still EST (-5).
    treated = local(NEW_YORK, 2026, 3, 20, 14)
    timing = StepTiming(days=-14, send_time=time(10, 0))
    assert compute_due_at(treated, timing, NEW_YORK) == utc(2026, 3, 6, 15, 0)


def test_seven_days_before_across_london_dst_end_keeps_wall_clock() -> None:
    # Treatment 2026-10-30 09:00 GMT; 7 days earlier is 10-23, still BST (+1): 10:00 BST.
    treated = local(LONDON, 2026, 10, 30, 9)
    timing = StepTiming(days=-7, send_time=time(10, 0))
    assert compute_due_at(treated, timing, LONDON) == utc(2026, 10, 23, 9, 0)


def test_days_before_without_send_time_keep_the_treatment_wall_time_across_dst() -> None:
    # 2026-03-09 12:00 EDT (16:00 UTC); one day before is 03-08 12:00 EDT, 16:00 UTC too;
    # two days before is 03-07 12:00 EST (17:00 UTC): 47 real hours, not 48.
    treated = local(NEW_YORK, 2026, 3, 9, 12)
    assert compute_due_at(treated, StepTiming(days=-2), NEW_YORK) == utc(2026, 3, 7, 17, 0)


def test_hours_before_count_real_time_across_dst() -> None:
    # 2026-03-08 04:00 EDT is 08:00 UTC; 3 real hours earlier is 05:00 UTC, 00:00 EST: quiet
    # hours push it to 08:00 EDT, after the treatment, so it goes before the night instead.
    treated = local(NEW_YORK, 2026, 3, 8, 4)
    timing = StepTiming(hours=-3)
    assert compute_due_at(treated, timing, NEW_YORK, NO_QUIET) == utc(2026, 3, 8, 5, 0)
    assert compute_due_at(treated, timing, NEW_YORK) == utc(2026, 3, 8, 1, 59)  # 20:59 EST


def test_day_before_send_time_after_an_early_treatment_is_still_the_day_before() -> None:
    # days=-1 at 17:00 for a 09:00 treatment: the evening before.
    treated = local(NEW_YORK, 2026, 11, 20, 9)
    timing = StepTiming(days=-1, send_time=time(17, 0))
    assert compute_due_at(treated, timing, NEW_YORK) == utc(2026, 11, 19, 22, 0)


def test_pre_care_send_time_that_would_reach_the_treatment_moves_a_day_earlier() -> None:
    # hours=-1 at 17:00 for a 10:00 treatment: 17:00 that day is after it, so 17:00 the day before.
    treated = local(NEW_YORK, 2026, 11, 20, 10)
    timing = StepTiming(hours=-1, send_time=time(17, 0))
    assert compute_due_at(treated, timing, NEW_YORK) == utc(2026, 11, 19, 22, 0)


def test_pre_care_in_quiet_hours_is_pushed_to_morning_when_still_before_treatment() -> None:
    treated = local(NEW_YORK, 2026, 11, 20, 14)
    timing = StepTiming(hours=-8)  # 06:00 local: quiet until 08:00, still before 14:00
    assert compute_due_at(treated, timing, NEW_YORK) == utc(2026, 11, 20, 13, 0)


@given(
    treated=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    days=st.integers(-30, 0),
    hours=st.integers(-48, 0),
    send_time=st.none() | st.times().map(lambda t: t.replace(second=0, microsecond=0)),
)
def test_a_pre_care_step_is_always_before_the_treatment(
    treated: datetime, days: int, hours: int, send_time: time | None
) -> None:
    assume(days or hours)
    timing = StepTiming(days=days, hours=hours, send_time=send_time)
    assert compute_due_at(treated, timing, NEW_YORK) < treated


# --- compute_due_at: send_time ----------------------------------------------------------------


def test_send_time_in_gap_moves_past_the_gap() -> None:
    treated = local(NEW_YORK, 2026, 3, 7, 12)
    timing = StepTiming(days=1, send_time=time(2, 30))
    assert compute_due_at(treated, timing, NEW_YORK, NO_QUIET) == utc(2026, 3, 8, 7, 30)


def test_send_time_in_fold_takes_first_occurrence() -> None:
    treated = local(NEW_YORK, 2026, 10, 31, 12)
    timing = StepTiming(days=1, send_time=time(1, 30))
    assert compute_due_at(treated, timing, NEW_YORK, NO_QUIET) == utc(2026, 11, 1, 5, 30)


def test_send_time_in_lord_howe_half_hour_gap() -> None:
    treated = local(LORD_HOWE, 2026, 10, 3, 12)
    timing = StepTiming(days=1, send_time=time(2, 15))
    assert compute_due_at(treated, timing, LORD_HOWE, NO_QUIET) == utc(2026, 10, 3, 15, 45)


def test_send_time_in_lord_howe_half_hour_fold() -> None:
    treated = local(LORD_HOWE, 2026, 4, 4, 12)
    timing = StepTiming(days=1, send_time=time(1, 45))
    assert compute_due_at(treated, timing, LORD_HOWE, NO_QUIET) == utc(2026, 4, 4, 14, 45)


def test_send_time_in_chatham() -> None:
    treated = local(CHATHAM, 2026, 9, 26, 10)
    timing = StepTiming(days=1, send_time=time(9, 0))
    assert compute_due_at(treated, timing, CHATHAM) == utc(2026, 9, 26, 19, 15)


def test_day_one_nine_am_for_late_evening_treatment() -> None:
    # 23:30 EDT is already the next day in UTC; "day 1" must still mean the patient's tomorrow
    treated = local(NEW_YORK, 2026, 6, 10, 23, 30)
    timing = StepTiming(days=1, send_time=time(9, 0))
    assert compute_due_at(treated, timing, NEW_YORK) == utc(2026, 6, 11, 13, 0)


def test_day_one_nine_am_for_late_evening_treatment_east_of_utc() -> None:
    # 00:30 IST is still the previous day in UTC
    treated = local(KOLKATA, 2026, 6, 11, 0, 30)
    timing = StepTiming(days=1, send_time=time(9, 0))
    assert compute_due_at(treated, timing, KOLKATA) == utc(2026, 6, 12, 3, 30)


def test_send_time_uses_date_after_hours_and_minutes() -> None:
    # 20:00 + 5h = 01:00 on the 11th, so 09:00 on the 11th
    treated = local(NEW_YORK, 2026, 6, 10, 20, 0)
    timing = StepTiming(hours=5, send_time=time(9, 0))
    assert compute_due_at(treated, timing, NEW_YORK) == utc(2026, 6, 11, 13, 0)


def test_send_time_before_treatment_moves_to_next_day() -> None:
    treated = local(NEW_YORK, 2026, 6, 10, 10, 0)
    timing = StepTiming(hours=2, send_time=time(9, 0))
    assert compute_due_at(treated, timing, NEW_YORK) == utc(2026, 6, 11, 13, 0)


def test_send_time_equal_to_treatment_is_kept() -> None:
    treated = local(NEW_YORK, 2026, 6, 10, 9, 0)
    timing = StepTiming(send_time=time(9, 0))
    assert compute_due_at(treated, timing, NEW_YORK) == utc(2026, 6, 10, 13, 0)


def test_send_time_after_treatment_is_kept_even_if_before_offset() -> None:
    # The documented simple rule: only "before the treatment" moves a send to the next day.
    treated = local(NEW_YORK, 2026, 6, 10, 8, 0)
    timing = StepTiming(hours=2, send_time=time(9, 0))
    assert compute_due_at(treated, timing, NEW_YORK) == utc(2026, 6, 10, 13, 0)


def test_send_time_first_occurrence_before_second_occurrence_treatment() -> None:
    # Treated at the second 01:40 (EST, 06:40Z); 01:50 means its first occurrence (05:50Z),
    # which is before the treatment, so the send moves to 01:50 EST on 11-02.
    treated = local(NEW_YORK, 2026, 11, 1, 1, 40, fold=1)
    timing = StepTiming(send_time=time(1, 50))
    assert compute_due_at(treated, timing, NEW_YORK, NO_QUIET) == utc(2026, 11, 2, 6, 50)


# --- compute_due_at: quiet hours --------------------------------------------------------------


def test_evening_treatment_two_hour_step_waits_until_eight() -> None:
    treated = local(NEW_YORK, 2026, 6, 10, 20, 30)  # + 2h = 22:30 local
    assert compute_due_at(treated, StepTiming(hours=2), NEW_YORK) == utc(2026, 6, 11, 12, 0)


def test_early_morning_quiet_push_stays_on_same_date() -> None:
    treated = local(NEW_YORK, 2026, 6, 6, 1, 0)  # + 2h = 03:00 on the 6th -> 08:00 on the 6th
    assert compute_due_at(treated, StepTiming(hours=2), NEW_YORK) == utc(2026, 6, 6, 12, 0)


def test_quiet_push_across_year_boundary() -> None:
    treated = local(NEW_YORK, 2026, 12, 31, 22, 0)
    assert compute_due_at(treated, StepTiming(minutes=30), NEW_YORK) == utc(2027, 1, 1, 13, 0)


def test_quiet_push_across_dst_start_night() -> None:
    # 22:30 EST on 03-07 -> 08:00 EDT on 03-08
    treated = local(NEW_YORK, 2026, 3, 7, 20, 30)
    assert compute_due_at(treated, StepTiming(hours=2), NEW_YORK) == utc(2026, 3, 8, 12, 0)


def test_quiet_hours_are_judged_on_the_patients_clock() -> None:
    # 10:00 IST is 04:30Z, which would be "quiet" if judged in UTC
    treated = local(KOLKATA, 2026, 6, 10, 10, 0)
    assert compute_due_at(treated, StepTiming(), KOLKATA) == utc(2026, 6, 10, 4, 30)


def test_quiet_hours_with_send_time_inside_window() -> None:
    treated = local(LONDON, 2026, 6, 10, 12, 0)
    timing = StepTiming(days=1, send_time=time(6, 0))
    assert compute_due_at(treated, timing, LONDON) == utc(2026, 6, 11, 7, 0)


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [
        (59, utc(2026, 6, 10, 15, 59)),  # 11:59 local: before the window
        (60, utc(2026, 6, 10, 17, 0)),  # 12:00 local: start is inside -> 13:00
        (75, utc(2026, 6, 10, 17, 0)),  # 12:15 local -> 13:00
        (120, utc(2026, 6, 10, 17, 0)),  # 13:00 local: end is outside
    ],
)
def test_quiet_hours_not_wrapping_midnight(minutes: int, expected: datetime) -> None:
    treated = local(NEW_YORK, 2026, 6, 10, 11, 0)
    lunch = QuietHours(time(12, 0), time(13, 0))
    assert compute_due_at(treated, StepTiming(minutes=minutes), NEW_YORK, lunch) == expected


def test_exactly_at_quiet_end_is_not_pushed() -> None:
    treated = local(NEW_YORK, 2026, 6, 10, 6, 0)
    assert compute_due_at(treated, StepTiming(hours=2), NEW_YORK) == utc(2026, 6, 10, 12, 0)


def test_exactly_at_quiet_start_is_pushed() -> None:
    treated = local(NEW_YORK, 2026, 6, 10, 19, 0)
    assert compute_due_at(treated, StepTiming(hours=2), NEW_YORK) == utc(2026, 6, 11, 12, 0)


@pytest.mark.parametrize("quiet", [None, QuietHours(time(9, 0), time(9, 0))])
def test_quiet_hours_can_be_disabled(quiet: QuietHours | None) -> None:
    treated = local(NEW_YORK, 2026, 6, 10, 20, 30)
    assert compute_due_at(treated, StepTiming(hours=2), NEW_YORK, quiet) == utc(2026, 6, 11, 2, 30)


def test_quiet_push_to_end_in_gap_uses_gap_rule() -> None:
    # quiet 00:00-02:30; 00:45 EST on 03-08 is pushed to 02:30, which does not exist -> 03:30 EDT
    treated = local(NEW_YORK, 2026, 3, 8, 0, 15)
    quiet = QuietHours(time(0, 0), time(2, 30))
    result = compute_due_at(treated, StepTiming(minutes=30), NEW_YORK, quiet)
    assert result == utc(2026, 3, 8, 7, 30)


def test_quiet_push_from_gap_stand_in_that_is_still_quiet() -> None:
    # quiet 03:00-02:30 (nearly all day). Pushing to 02:30 on 03-08 lands at 03:30 EDT, which is
    # inside the window again, so the send goes on to 02:30 EDT on 03-09 (06:30Z).
    treated = local(NEW_YORK, 2026, 3, 7, 23, 0)
    quiet = QuietHours(time(3, 0), time(2, 30))
    result = compute_due_at(treated, StepTiming(hours=1), NEW_YORK, quiet)
    assert result == utc(2026, 3, 9, 6, 30)
    assert not quiet.contains(result.astimezone(NEW_YORK).time())


def test_quiet_push_in_repeated_hour_never_moves_earlier() -> None:
    # quiet 21:00-01:30; at the second 01:10 (EST, 06:10Z) the next time the clock reads 01:30
    # is the second 01:30 (06:30Z), not the first one (05:30Z, before the treatment).
    treated = local(NEW_YORK, 2026, 11, 1, 1, 5, fold=1)
    quiet = QuietHours(time(21, 0), time(1, 30))
    result = compute_due_at(treated, StepTiming(minutes=5), NEW_YORK, quiet)
    assert result == utc(2026, 11, 1, 6, 30)


def test_quiet_push_in_first_of_repeated_hour_takes_first_end() -> None:
    treated = local(NEW_YORK, 2026, 11, 1, 1, 5)  # EDT, 05:05Z
    quiet = QuietHours(time(21, 0), time(1, 30))
    result = compute_due_at(treated, StepTiming(minutes=5), NEW_YORK, quiet)
    assert result == utc(2026, 11, 1, 5, 30)


def test_quiet_push_in_lord_howe_repeated_half_hour() -> None:
    # quiet 22:00-01:50; treated at the second 01:40 (+10:30, 15:10Z on 04-04)
    treated = local(LORD_HOWE, 2026, 4, 5, 1, 40, fold=1)
    quiet = QuietHours(time(22, 0), time(1, 50))
    result = compute_due_at(treated, StepTiming(), LORD_HOWE, quiet)
    assert treated.astimezone(UTC) == utc(2026, 4, 4, 15, 10)
    assert result == utc(2026, 4, 4, 15, 20)


def test_a_window_that_never_ends_fails_loudly_instead_of_hanging() -> None:
    class AlwaysQuiet(QuietHours):
        def contains(self, local: time) -> bool:
            return True

    with pytest.raises(RuntimeError, match="could not leave quiet hours"):
        compute_due_at(utc(2026, 6, 10, 12), StepTiming(), NEW_YORK, AlwaysQuiet(time(1), time(2)))


# --- properties -------------------------------------------------------------------------------

# Sorted so the strategy (and any failure it reports) is the same on every machine; "localtime"
# is dropped because it is a symlink to whatever zone the host happens to be configured with.
ZONE_NAMES = sorted(name for name in available_timezones() if name != "localtime")

# Uniformly random instants almost never hit the one or two hours a year that matter, so half
# of the examples are drawn around real transitions of zones with awkward ones: 30-minute and
# 2-hour shifts, transitions at midnight, negative DST (Dublin), a 45-minute offset.
AWKWARD_ZONE_NAMES = [
    "America/Asuncion",
    "America/Havana",
    "America/New_York",
    "America/Santiago",
    "Antarctica/Troll",
    "Asia/Beirut",
    "Australia/Lord_Howe",
    "Europe/Dublin",
    "Europe/London",
    "Pacific/Chatham",
]
SPAN = (datetime(2020, 1, 1, tzinfo=UTC), datetime(2036, 1, 1, tzinfo=UTC))


@functools.cache
def _transitions(name: str) -> tuple[datetime, ...]:
    """UTC instants in SPAN at which the zone's offset changes, found by scan and bisection."""
    zone, step, found = ZoneInfo(name), timedelta(hours=6), []
    at = SPAN[0]
    while at < SPAN[1]:
        if at.astimezone(zone).utcoffset() != (at + step).astimezone(zone).utcoffset():
            low, high = at, at + step
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                same = middle.astimezone(zone).utcoffset() == low.astimezone(zone).utcoffset()
                low, high = (middle, high) if same else (low, middle)
            found.append(high.replace(microsecond=0))
        at += step
    return tuple(found)


@dataclass(frozen=True)
class Scenario:
    treated: datetime
    zone: ZoneInfo
    timing: StepTiming
    quiet: QuietHours | None


minute_times = st.builds(time, st.integers(0, 23), st.integers(0, 59))


timings = st.builds(
    StepTiming,
    days=st.integers(0, 3) | st.integers(0, 60),
    hours=st.integers(0, 3) | st.integers(0, 72),
    minutes=st.integers(0, 10) | st.integers(0, 180),
)


@st.composite
def _random_start(
    draw: st.DrawFn, timing: StepTiming
) -> tuple[datetime, ZoneInfo, st.SearchStrategy[time]]:
    zone = ZoneInfo(draw(st.sampled_from(ZONE_NAMES)))
    treated = draw(
        st.datetimes(
            min_value=datetime(2020, 1, 1),
            max_value=datetime(2035, 12, 31, 23, 59, 59),
            timezones=st.sampled_from(ZONE_NAMES).map(ZoneInfo),
            allow_imaginary=False,
        )
    )
    return treated, zone, minute_times | st.times()


@st.composite
def _start_near_transition(
    draw: st.DrawFn, timing: StepTiming
) -> tuple[datetime, ZoneInfo, st.SearchStrategy[time]]:
    name = draw(st.sampled_from(AWKWARD_ZONE_NAMES))
    zone = ZoneInfo(name)
    instant = draw(st.sampled_from(_transitions(name)))
    # aim either the treatment or the offset it reaches at the transition, give or take
    jitter = timedelta(minutes=draw(st.integers(-180, 180) | st.integers(-3 * 1440, 1440)))
    offset = timedelta(days=timing.days, hours=timing.hours, minutes=timing.minutes)
    treated = instant + jitter - draw(st.sampled_from([timedelta(0), offset]))
    # wall times within two hours of the transition, as read on the clock just before it
    before = (instant - timedelta(seconds=1)).astimezone(zone).replace(tzinfo=None)
    near = st.integers(-120, 120).map(lambda m: (before + timedelta(minutes=m)).time())
    return treated, zone, near.map(lambda t: t.replace(second=0)) | minute_times


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    timing = draw(timings)
    treated, zone, wall_times = draw(_random_start(timing) | _start_near_transition(timing))
    timing = replace(timing, send_time=draw(st.none() | wall_times))
    quiet = draw(
        st.none()
        | st.just(DEFAULT_QUIET_HOURS)
        | st.builds(QuietHours, wall_times | minute_times, wall_times | minute_times)
    )
    return Scenario(treated, zone, timing, quiet)


PROPERTY_SETTINGS = settings(
    max_examples=examples(400),
    deadline=None,
    database=None,  # never write .hypothesis/ into the repo
    suppress_health_check=[HealthCheck.too_slow],
)


def _exists(day: date, at: time, zone: ZoneInfo) -> bool:
    naive = datetime.combine(day, at)
    round_trip = naive.replace(tzinfo=zone).astimezone(UTC).astimezone(zone)
    return round_trip.replace(tzinfo=None) == naive


def _in_window(at: time, quiet: QuietHours) -> bool:
    """Independent of QuietHours.contains: position within the window, counted from its start."""

    def micros(t: time) -> int:
        return ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000 + t.microsecond

    day = 24 * 3600 * 1_000_000
    length = (micros(quiet.end) - micros(quiet.start)) % day
    return (micros(at) - micros(quiet.start)) % day < length


def _moved_by_gap(wall: datetime, at: time, zone: ZoneInfo) -> bool:
    """`at` was skipped on the date it was meant for (the gap may cross midnight)."""
    meant_for = (wall.date(), wall.date() - timedelta(days=1))
    return any(not _exists(day, at, zone) for day in meant_for)


def _due(s: Scenario, **changes: object) -> datetime:
    s = replace(s, **changes)
    return compute_due_at(s.treated, s.timing, s.zone, s.quiet)


def test_transition_search_finds_known_transitions() -> None:
    # guards the strategy above: if it found nothing, the "near transition" half would be empty
    assert utc(2026, 3, 8, 7, 0) in _transitions("America/New_York")
    assert utc(2026, 11, 1, 6, 0) in _transitions("America/New_York")
    assert utc(2026, 10, 3, 15, 30) in _transitions("Australia/Lord_Howe")
    # all had DST in 2020-2023 (Asuncion dropped it in late 2024; later tzdata may drop more)
    assert all(len(_transitions(name)) >= 8 for name in AWKWARD_ZONE_NAMES)


@PROPERTY_SETTINGS
@given(s=scenarios())
def test_result_is_utc_aware_and_not_before_treatment(s: Scenario) -> None:
    result = _due(s)
    assert result.tzinfo is UTC
    assert result >= s.treated


@PROPERTY_SETTINGS
@given(s=scenarios())
def test_result_is_never_inside_quiet_hours(s: Scenario) -> None:
    result = _due(s)
    if s.quiet is not None:
        assert not _in_window(result.astimezone(s.zone).time(), s.quiet)


@PROPERTY_SETTINGS
@given(s=scenarios())
def test_quiet_push_only_delays_and_lands_on_the_end(s: Scenario) -> None:
    unquiet = _due(s, quiet=None)
    result = _due(s)
    assert result >= unquiet
    if result != unquiet:
        assert s.quiet is not None
        assert _in_window(unquiet.astimezone(s.zone).time(), s.quiet)
        assert result - unquiet < timedelta(days=2)
        wall = result.astimezone(s.zone)
        assert wall.time() == s.quiet.end or _moved_by_gap(wall, s.quiet.end, s.zone)


@st.composite
def _in_repeated_hour(draw: st.DrawFn) -> tuple[datetime, ZoneInfo, QuietHours, int]:
    """Treated during the second pass of a fall-back, with quiet hours ending later in it."""
    name = draw(st.sampled_from(AWKWARD_ZONE_NAMES))
    zone = ZoneInfo(name)
    fall_backs = [t for t in _transitions(name) if _offset_change(t, zone) < timedelta(0)]
    instant = draw(st.sampled_from(fall_backs))
    repeated = int(-_offset_change(instant, zone).total_seconds()) // 60
    into = draw(st.integers(0, repeated - 2))
    until_end = draw(st.integers(1, repeated - 1 - into))
    treated = instant + timedelta(minutes=into)
    wall = treated.astimezone(zone).replace(tzinfo=None)
    start = wall - timedelta(minutes=draw(st.integers(1, 600)))
    quiet = QuietHours(start.time(), (wall + timedelta(minutes=until_end)).time())
    return treated, zone, quiet, until_end


def _offset_change(instant: datetime, zone: ZoneInfo) -> timedelta:
    after = instant.astimezone(zone).utcoffset()
    before = (instant - timedelta(seconds=1)).astimezone(zone).utcoffset()
    assert after is not None and before is not None
    return after - before


@PROPERTY_SETTINGS
@given(case=_in_repeated_hour())
def test_quiet_end_in_repeated_hour_is_its_next_reading(
    case: tuple[datetime, ZoneInfo, QuietHours, int],
) -> None:
    # the first reading of `end` is already in the past: taking it would send before treatment
    treated, zone, quiet, until_end = case
    result = compute_due_at(treated, StepTiming(), zone, quiet)
    assert result == treated + timedelta(minutes=until_end)


@PROPERTY_SETTINGS
@given(s=scenarios())
def test_default_quiet_push_is_at_most_one_night(s: Scenario) -> None:
    unquiet = _due(s, quiet=None)
    result = _due(s, quiet=DEFAULT_QUIET_HOURS)
    # 11 wall-clock hours, plus at most a 2-hour DST change (Antarctica/Troll)
    assert result - unquiet <= timedelta(hours=13)


@PROPERTY_SETTINGS
@given(s=scenarios())
def test_send_time_is_kept_unless_it_is_in_a_gap(s: Scenario) -> None:
    send_time = s.timing.send_time
    assume(send_time is not None)
    result = _due(s, quiet=None)
    wall = result.astimezone(s.zone)
    assert wall.time() == send_time or _moved_by_gap(wall, send_time, s.zone)
    # on the local date the offset reaches, or the day after if that preceded the treatment
    plain = _due(s, quiet=None, timing=replace(s.timing, send_time=None))
    day = plain.astimezone(s.zone).date()
    readings = [local_to_utc(day + timedelta(days=k), send_time, s.zone) for k in range(3)]
    assert result == next(r for r in readings if r >= s.treated)


@PROPERTY_SETTINGS
@given(at=st.times(), quiet=st.builds(QuietHours, st.times(), st.times()))
def test_quiet_hours_contains_matches_an_independent_definition(
    at: time, quiet: QuietHours
) -> None:
    assert quiet.contains(at) is _in_window(at, quiet)


@PROPERTY_SETTINGS
@given(s=scenarios())
def test_days_keep_the_local_wall_time(s: Scenario) -> None:
    days = s.timing.days
    result = _due(s, quiet=None, timing=StepTiming(days=days)).astimezone(s.zone)
    start = s.treated.astimezone(s.zone)
    target = start.date() + timedelta(days=days)
    if _exists(target, start.time(), s.zone):
        assert (result.date(), result.time()) == (target, start.time())
        assert result.fold == 0 or days == 0
    else:
        assert result.replace(tzinfo=None) > datetime.combine(target, start.time())


@PROPERTY_SETTINGS
@given(s=scenarios(), hours=st.integers(0, 500), minutes=st.integers(0, 5000))
def test_hours_and_minutes_are_elapsed_time(s: Scenario, hours: int, minutes: int) -> None:
    result = _due(s, quiet=None, timing=StepTiming(hours=hours, minutes=minutes))
    assert result - s.treated == timedelta(hours=hours, minutes=minutes)


@PROPERTY_SETTINGS
@given(s=scenarios(), other=st.sampled_from(ZONE_NAMES).map(ZoneInfo))
def test_result_is_deterministic_and_independent_of_treated_at_zone(
    s: Scenario, other: ZoneInfo
) -> None:
    first = _due(s)
    assert _due(s) == first
    assert _due(s, treated=s.treated.astimezone(other)) == first
    assert _due(s, treated=s.treated.astimezone(UTC)) == first


@PROPERTY_SETTINGS
@given(s=scenarios(), at=st.times())
def test_local_to_utc_round_trips_or_moves_forward(s: Scenario, at: time) -> None:
    day = s.treated.astimezone(s.zone).date()
    result = local_to_utc(day, at, s.zone)
    assert result.tzinfo is UTC
    wall = result.astimezone(s.zone)
    naive = datetime.combine(day, at)
    if _exists(day, at, s.zone):
        assert wall.replace(tzinfo=None) == naive
        assert wall.fold == 0  # first occurrence of an ambiguous time
        second = datetime.combine(day, at, tzinfo=s.zone).replace(fold=1).astimezone(UTC)
        assert result <= second
    else:
        assert wall.replace(tzinfo=None) > naive
