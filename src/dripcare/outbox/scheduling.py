"""When an aftercare step is due, as a pure function of the treatment and the step's timing.

Kept free of I/O so the rules that decide what a patient receives at 3 a.m. can be tested
exhaustively against the tz database without a clock, a database or a mail server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = [
    "DEFAULT_QUIET_HOURS",
    "QuietHours",
    "StepTiming",
    "compute_due_at",
    "local_to_utc",
    "next_allowed",
    "parse_local_time",
]

_ONE_DAY = timedelta(days=1)
_MAX_QUIET_PUSHES = 8
# ASCII only: str.isdigit()/\d accept Arabic-Indic and other digits, which int() would
# silently turn into a plausible-looking time.
_LOCAL_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})", re.ASCII)
_QUIET_HOURS = re.compile(r"\s*([0-9]{1,2}:[0-9]{2})\s*-\s*([0-9]{1,2}:[0-9]{2})\s*", re.ASCII)


@dataclass(frozen=True)
class StepTiming:
    """Offset of a step from the treatment, plus an optional local send time.

    Days count on the patient's wall clock so "day 1" means tomorrow at the same time even
    across a DST change; hours and minutes count real elapsed time because "2 hours after"
    must be two hours of the patient's life, not of the clock face.
    """

    days: int = 0
    hours: int = 0
    minutes: int = 0
    send_time: time | None = None
    # How long after its planned time the step is still worth sending (send_rules.py).
    send_until: timedelta | None = None

    def __post_init__(self) -> None:
        # Mixed signs ("-1 day +3 hours") would make it unclear which side of the treatment
        # the step is on, and so which way a send time or quiet hours may move it.
        parts = (self.days, self.hours, self.minutes)
        if min(parts) < 0 < max(parts):
            raise ValueError(
                f"a step is either before the treatment (every offset ≤ 0) or after it "
                f"(every offset ≥ 0), got days={self.days} hours={self.hours} "
                f"minutes={self.minutes}"
            )

    @property
    def before_treatment(self) -> bool:
        """A pre-care step: due before the treatment, never after it."""
        return min(self.days, self.hours, self.minutes) < 0


@dataclass(frozen=True)
class QuietHours:
    """Local wall-clock window in which no email may arrive; [start, end), may wrap midnight."""

    start: time
    end: time

    def contains(self, local: time) -> bool:
        """Half-open so that a send exactly at `end` is allowed and pushes terminate there."""
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """Clinic staff type this into settings; say exactly what shape we expected."""
        message = f"quiet hours must look like 21:00-08:00, got {text!r}"
        match = _QUIET_HOURS.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(message)
        try:
            return cls(parse_local_time(match[1]), parse_local_time(match[2]))
        except ValueError as exc:
            raise ValueError(f"{message} ({exc})") from exc


DEFAULT_QUIET_HOURS = QuietHours(time(21, 0), time(8, 0))


def parse_local_time(text: str) -> time:
    """Accept the "9:00" people actually type, reject anything that is not clearly a time."""
    match = _LOCAL_TIME.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValueError(f"local time must look like 09:00 (00:00-23:59), got {text!r}")
    return time(int(match[1]), int(match[2]))


def local_to_utc(day: date, at: time, zone: ZoneInfo) -> datetime:
    """Pin a local wall time to one UTC instant, even on DST-change days.

    Always uses fold=0 (PEP 495), which settles both awkward cases:

    * a time in a gap (02:30 on a spring-forward day in New York) is read with the offset in
      force before the gap, which lands after it by the gap's length (03:30 EDT, 07:30 UTC),
      so the step is still sent rather than skipped;
    * an ambiguous time (01:30 on a fall-back day) takes its first occurrence, so there is
      exactly one instant and the step cannot be sent twice.

    Any fold or tzinfo on `at` is ignored so callers cannot opt out of those guarantees.
    """
    naive = datetime.combine(day, at.replace(tzinfo=None, fold=0))
    return naive.replace(tzinfo=zone).astimezone(UTC)


def compute_due_at(
    treated_at: datetime,
    timing: StepTiming,
    zone: ZoneInfo,
    quiet: QuietHours | None = DEFAULT_QUIET_HOURS,
) -> datetime:
    """UTC instant at which a step is due, never in quiet hours; an aftercare step never
    before `treated_at`, a pre-care step (negative offset) always before it.

    `zone` is the patient's zone: every wall-clock rule (days, send time, quiet hours) is
    about the patient's clock, not the server's or the clinic's.
    """
    if treated_at.tzinfo is None or treated_at.utcoffset() is None:
        raise ValueError(f"treated_at must be timezone-aware, got naive {treated_at!r}")
    treated_utc = treated_at.astimezone(UTC)
    due = _apply_offset(treated_utc, timing, zone)
    if timing.before_treatment:
        return _pre_care_due(due, timing, zone, quiet, treated_utc)
    if timing.send_time is not None:
        due = _at_send_time(due, timing.send_time, zone, not_before=treated_utc)
    if quiet is not None:
        due = _outside_quiet_hours(due, quiet, zone)
    return due


def _pre_care_due(
    due: datetime, timing: StepTiming, zone: ZoneInfo, quiet: QuietHours | None, treated: datetime
) -> datetime:
    """Like an aftercare step, mirrored: the send time snaps to a day earlier, not later, when
    it would reach the treatment; quiet hours push forward as usual, but if that reaches the
    treatment (an early-morning treatment) the email goes just before the night instead."""
    if timing.send_time is not None:
        day = due.astimezone(zone).date()
        due = local_to_utc(day, timing.send_time, zone)
        while due >= treated:
            day -= _ONE_DAY
            due = local_to_utc(day, timing.send_time, zone)
    if quiet is None:
        return due
    pushed = _outside_quiet_hours(due, quiet, zone)
    if pushed < treated:
        return pushed
    return _last_minute_before_quiet(due, quiet, zone)


def _last_minute_before_quiet(inside: datetime, quiet: QuietHours, zone: ZoneInfo) -> datetime:
    """One minute before the start of the quiet window that `inside` falls in."""
    local = inside.astimezone(zone)
    day = local.date()
    if quiet.start > quiet.end and local.time() < quiet.end:  # after midnight in a wrapping night
        day -= _ONE_DAY
    return local_to_utc(day, quiet.start, zone) - timedelta(minutes=1)


def next_allowed(at: datetime, quiet: QuietHours, zone: ZoneInfo) -> datetime:
    """`at` itself, or the end of the quiet hours it falls in on the patient's clock.

    The send-time twin of the rule compute_due_at applies when scheduling: a retry or a
    backlog after an outage obeys the same night as the original schedule did.
    """
    return _outside_quiet_hours(at.astimezone(UTC), quiet, zone)


def _apply_offset(treated_utc: datetime, timing: StepTiming, zone: ZoneInfo) -> datetime:
    """Days on the wall clock first, then hours and minutes as real time (see StepTiming)."""
    due = treated_utc
    if timing.days:
        local = treated_utc.astimezone(zone)
        due = local_to_utc(local.date() + timedelta(days=timing.days), local.time(), zone)
    return due + timedelta(hours=timing.hours, minutes=timing.minutes)


def _at_send_time(due: datetime, send_time: time, zone: ZoneInfo, not_before: datetime) -> datetime:
    """Snap to `send_time` on the local date reached; a day later if that precedes treatment."""
    day = due.astimezone(zone).date()
    candidate = local_to_utc(day, send_time, zone)
    while candidate < not_before:  # at most a day or two: each step moves ~24h forward
        day += _ONE_DAY
        candidate = local_to_utc(day, send_time, zone)
    return candidate


def _outside_quiet_hours(due: datetime, quiet: QuietHours, zone: ZoneInfo) -> datetime:
    """Push out of the window, more than once if a push into a DST gap lands back inside it.

    Bounded so that a broken window (or a QuietHours subclass) fails loudly instead of hanging
    a worker; two pushes are the most real zones need, because gaps are months apart.
    """
    for _ in range(_MAX_QUIET_PUSHES):
        if not quiet.contains(due.astimezone(zone).time()):
            return due
        due = _next_wall_time(due, quiet.end, zone)
    raise RuntimeError(f"could not leave quiet hours {quiet} in {zone}; reached {due}")


def _next_wall_time(after: datetime, at: time, zone: ZoneInfo) -> datetime:
    """First instant strictly after `after` at which the local clock reads `at`.

    Unlike send times, this may pick the second reading of an ambiguous time: when `after`
    already lies in the repeated hour, the first reading is in the past, and moving a send
    earlier than it was computed could put it before the treatment.
    """
    day = after.astimezone(zone).date()
    while True:  # terminates: every local date has a reading of `at` (or a gap stand-in)
        for candidate in _readings(day, at, zone):
            if candidate > after:
                return candidate
        day += _ONE_DAY


def _readings(day: date, at: time, zone: ZoneInfo) -> tuple[datetime, ...]:
    """Both instants of an ambiguous wall time in order; the fold=0 instant otherwise."""
    first = local_to_utc(day, at, zone)
    second = datetime.combine(day, at, tzinfo=zone).replace(fold=1).astimezone(UTC)
    return (first, second) if second > first else (first,)
