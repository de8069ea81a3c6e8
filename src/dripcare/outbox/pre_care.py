"""A late booking's merged pre-care email: the stop-now advice it was too late to send.

Pre-care steps have negative offsets and are scheduled like any step: one already past at
enrollment is skipped with its reason. When a skipped one is marked `stop_now` (stop sun
exposure, retinoids ... now), the advice still matters before the treatment, so the
campaign's `late_booking` step goes out at enrollment instead, listing only the missed keys
(`missed_steps` in its template context). Nothing missed, or the treatment already past:
the late-booking email is skipped with its reason, so the timeline shows why.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from dripcare.models import MessageStatus, StopCause
from dripcare.outbox.scheduling import QuietHours, next_allowed

REASON_NOTHING_MISSED = "not needed: every stop-now pre-care email was on time"
REASON_TREATED = "not needed: the treatment time has passed"


@dataclass(frozen=True)
class LateBooking:
    """Where the late_booking step's row goes, and what it lists."""

    due_at: datetime
    status: MessageStatus
    status_reason: str
    cause: StopCause | None
    missed: list[str]


def missed_stop_now(outcomes: Iterable[tuple[str, bool, StopCause | None]]) -> list[str]:
    """Keys of stop-now steps skipped as past-dated, from (key, stop_now, stop cause)."""
    return [key for key, stop_now, cause in outcomes if stop_now and cause == StopCause.LATE]


def late_booking(
    missed: list[str], treated_at: datetime, now: datetime, quiet: QuietHours, zone: ZoneInfo
) -> LateBooking:
    """Sent now (after the patient's night) when something was missed and the treatment is
    still ahead; skipped, with the reason, otherwise."""
    if treated_at <= now:
        return LateBooking(now, MessageStatus.SKIPPED, REASON_TREATED, StopCause.NOTHING_MISSED, [])
    if not missed:
        return LateBooking(
            now, MessageStatus.SKIPPED, REASON_NOTHING_MISSED, StopCause.NOTHING_MISSED, []
        )
    return LateBooking(next_allowed(now, quiet, zone), MessageStatus.SCHEDULED, "", None, missed)
