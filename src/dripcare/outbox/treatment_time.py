"""When a treatment happened, as people type it: ISO dates and times, or "yesterday 14:30".

Relative words keep scripts and the README's examples true on any day; they are read on the
patient's wall clock, as a date-time without an offset is.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dripcare.errors import UserError

EARLIEST_TREATMENT = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_AHEAD = timedelta(days=366)
DATE_ONLY_TIME = time(12, 0)
_DAYS_BACK = {"today": 0, "yesterday": 1}
_RELATIVE = re.compile(r"(?P<day>today|yesterday)(?:[ t](?P<hh>\d{1,2}):(?P<mm>\d{2}))?|now")


def parse_treated_at(value: str | datetime, zone: str, now: datetime) -> datetime:
    """ISO date-time (with or without offset; without means the patient's zone), a date,
    `now`, or `today`/`yesterday` with an optional `HH:MM`.

    A date alone means noon local time: the day's first email then goes out that afternoon.
    """
    if isinstance(value, datetime):
        moment = value
    else:
        text = value.strip()
        moment = _parse_relative(text.lower(), ZoneInfo(zone), now) or _parse_iso(text)
    try:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo(zone))
        moment = moment.astimezone(UTC)
    except OverflowError:
        moment = datetime.max.replace(tzinfo=UTC)  # years away either way: out of range below
    if moment < EARLIEST_TREATMENT or moment > now + LATEST_AHEAD:
        raise UserError(
            f"treated_at {value!s} is out of range: it must be after 2000-01-01 and "
            "at most a year from now"
        )
    return moment


def _parse_relative(text: str, zone: ZoneInfo, now: datetime) -> datetime | None:
    match = _RELATIVE.fullmatch(text)
    if match is None:
        return None
    if text == "now":
        return now
    day = now.astimezone(zone).date() - timedelta(days=_DAYS_BACK[match["day"]])
    if match["hh"] is None:
        return datetime.combine(day, DATE_ONLY_TIME)
    try:
        return datetime.combine(day, time(int(match["hh"]), int(match["mm"])))
    except ValueError as exc:
        raise UserError(f"treated_at {text!r}: {exc}; use HH:MM, e.g. yesterday 14:30") from exc


def _parse_iso(text: str) -> datetime:
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), DATE_ONLY_TIME)
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise UserError(
            f"treated_at {text!r} is not an ISO date or date-time "
            "(e.g. 2026-11-24, 2026-11-24T14:30, 2026-11-24T14:30+01:00, or yesterday 14:30)"
        ) from exc
