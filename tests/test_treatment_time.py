"""Treatment times as people type them; `now` is always passed in, never read."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dripcare.errors import UserError
from dripcare.outbox.treatment_time import parse_treated_at

NOW = datetime(2026, 11, 25, 3, 30, tzinfo=UTC)  # 22:30 on 24 Nov in New York
NY = "America/New_York"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("today", datetime(2026, 11, 24, 17, 0, tzinfo=UTC)),  # noon on the patient's day
        ("yesterday", datetime(2026, 11, 23, 17, 0, tzinfo=UTC)),
        ("yesterday 14:30", datetime(2026, 11, 23, 19, 30, tzinfo=UTC)),
        ("Today 9:05", datetime(2026, 11, 24, 14, 5, tzinfo=UTC)),
        ("todayT09:05", datetime(2026, 11, 24, 14, 5, tzinfo=UTC)),
        ("now", NOW),
        ("2026-11-24T14:30", datetime(2026, 11, 24, 19, 30, tzinfo=UTC)),
        ("2026-11-24", datetime(2026, 11, 24, 17, 0, tzinfo=UTC)),
    ],
)
def test_relative_words_are_read_on_the_patients_wall_clock(text: str, expected: datetime) -> None:
    assert parse_treated_at(text, NY, NOW) == expected


def test_the_patients_day_decides_what_today_is() -> None:
    # At 03:30 UTC it is already the 25th in Tokyo but still the 24th in New York.
    assert parse_treated_at("today", "Asia/Tokyo", NOW).date().isoformat() == "2026-11-25"
    assert parse_treated_at("today", NY, NOW).date().isoformat() == "2026-11-24"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("last tuesday", "not an ISO date"),
        ("yesterday 25:00", "use HH:MM"),
        ("tomorrow", "not an ISO date"),
    ],
)
def test_other_words_are_refused_with_examples(text: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        parse_treated_at(text, NY, NOW)
