"""Whether a message may go out now: the patient's night, and how late a step is still useful.

Decided when a message is about to be sent, not only when it is scheduled: a retry after a
backoff and a backlog after an outage are exactly the messages that a rule checked only at
enrollment lets through at 03:00, or days after the advice in them stopped applying.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo

from dripcare.config import Settings
from dripcare.content.campaign_spec import StepSpec
from dripcare.models import Clinic, MessageStatus
from dripcare.outbox.scheduling import (
    QuietHours,
    StepTiming,
    compute_due_at,
    next_allowed,
    parse_local_time,
)

__all__ = [
    "Hold",
    "clinic_quiet_hours",
    "format_window",
    "hold",
    "late_window",
    "parse_window",
    "pre_care_too_late",
    "quiet_hours_of",
    "timing_of_spec",
    "too_late",
]

_WINDOW = re.compile(r"(?:([0-9]{1,4})d)?(?:([0-9]{1,5})h)?(?:([0-9]{1,6})m)?", re.ASCII)


def parse_window(text: str) -> timedelta:
    """Read "1d", "36h", "2d12h" or "90m": what clinic admins write in campaign.toml."""
    match = _WINDOW.fullmatch(text.strip().replace(" ", "")) if isinstance(text, str) else None
    if match is None or not any(match.groups()):
        raise ValueError(f"send_until must look like 1d, 36h, 2d12h or 90m, got {text!r}")
    days, hours, minutes = (int(part or 0) for part in match.groups())
    window = timedelta(days=days, hours=hours, minutes=minutes)
    if not window:
        raise ValueError(f"send_until must be longer than zero, got {text!r}")
    return window


def format_window(window: timedelta) -> str:
    """The shortest text parse_window reads back as `window` (for messages and forms)."""
    minutes = int(window.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m")]
    return "".join(f"{n}{unit}" for n, unit in parts if n) or "0m"


@lru_cache(maxsize=1024)
def timing_of_spec(step: StepSpec) -> StepTiming:
    """The timing of a step as a campaign version has it (what a message is sent from).

    Cached: every email of a batch asks for its step's timing at send time, and a step spec
    (frozen) always parses to the same timing.
    """
    return StepTiming(
        step.offset_days,
        step.offset_hours,
        step.offset_minutes,
        parse_local_time(step.send_time) if step.send_time else None,
        parse_window(step.send_until) if step.send_until else None,
    )


def late_window(timing: StepTiming, settings: Settings) -> timedelta:
    """The step's own send_until, else DRIPCARE_LATE_GRACE_HOURS for every step."""
    return timing.send_until or timedelta(hours=settings.late_grace_hours)


def too_late(planned: datetime, window: timedelta, now: datetime) -> bool:
    """The one lateness rule, at enrollment and at send time: past planned time + window."""
    return now > planned + window


def pre_care_too_late(timing: StepTiming, treated_at: datetime, now: datetime) -> bool:
    """A pre-care email is pointless once the treatment time is reached, whatever its window."""
    return timing.before_treatment and now >= treated_at


@lru_cache(maxsize=256)
def _parsed(text: str) -> QuietHours:
    return QuietHours.parse(text)


def quiet_hours_of(clinic: Clinic, settings: Settings) -> QuietHours:
    """The clinic's own quiet hours, else DRIPCARE_QUIET_HOURS."""
    return clinic_quiet_hours(clinic.quiet_hours, settings)


def clinic_quiet_hours(own: str | None, settings: Settings) -> QuietHours:
    """The same, from the clinic's column alone (enrolling reads no Clinic object)."""
    return _parsed(own or settings.quiet_hours)


@dataclass(frozen=True)
class Hold:
    """Why a message does not go out now: wait until `due_at`, or skip it for good."""

    status: MessageStatus
    reason: str
    due_at: datetime | None = None


class Treated(Protocol):
    """An enrollment, or the send path's light copy of one (message_view.Treatment)."""

    @property
    def treated_at(self) -> datetime: ...
    @property
    def timezone(self) -> str: ...


def hold(
    clinic: Clinic, enrollment: Treated, timing: StepTiming, settings: Settings, now: datetime
) -> Hold | None:
    """None when the message may be sent now; otherwise when to try again, or a skip.

    Lateness is measured from the step's planned time (recomputed from the treatment), not
    from the row's due time, which every retry moves: retries must not stretch the window.
    A message that could only leave the patient's night after its window has closed is
    skipped now rather than held for a send that would then be skipped anyway.
    """
    zone = ZoneInfo(enrollment.timezone)
    quiet = quiet_hours_of(clinic, settings)
    planned = compute_due_at(enrollment.treated_at, timing, zone, quiet)
    window = late_window(timing, settings)
    allowed = next_allowed(now, quiet, zone)
    if pre_care_too_late(timing, enrollment.treated_at, allowed):
        return Hold(MessageStatus.SKIPPED, "too late to be useful: the treatment time has passed")
    if too_late(planned, window, allowed):
        local = planned.astimezone(zone)
        return Hold(
            MessageStatus.SKIPPED,
            f"too late to be useful: planned for {local:%Y-%m-%d %H:%M} {zone.key}, "
            f"to be sent within {format_window(window)}",
        )
    if allowed == now:
        return None
    return Hold(
        MessageStatus.SCHEDULED,
        f"quiet hours {quiet.start:%H:%M}-{quiet.end:%H:%M} in {zone.key}; "
        f"held until {allowed.astimezone(zone):%H:%M} local",
        allowed,
    )
