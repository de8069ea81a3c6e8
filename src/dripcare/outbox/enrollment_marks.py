"""The clinic's marks on an enrollment that skip steps: next session booked, one-off.

API, CLI and admin all call `set_mark`. Marking skips the unsent emails of the steps whose
`skip_if` names the condition, with the reason shown; unmarking puts back the ones it
skipped that are still due (placed again as a reschedule would). The send path checks the
marks again (delivery.py), and this UPDATE drops any claim, so a mark made while an email is
claimed still stops it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from dripcare.config import Settings
from dripcare.content.campaigns import timing_of
from dripcare.models import (
    UNSENT,
    Enrollment,
    EnrollmentStatus,
    MessageStatus,
    StopCause,
    utcnow,
)
from dripcare.outbox.enrollment_changes import place_message
from dripcare.outbox.enrollment_queries import timeline
from dripcare.outbox.skip_conditions import SKIP_REASONS, SkipCondition, marks_of, skipped_by


def set_mark(
    session: Session,
    enrollment: Enrollment,
    condition: SkipCondition,
    on: bool,
    settings: Settings,
    now: datetime | None = None,
) -> int:
    """Mark or unmark; returns how many emails were skipped or put back. Idempotent."""
    now = now or utcnow()
    if condition is SkipCondition.NEXT_SESSION_BOOKED:
        if on != (enrollment.next_session_booked_at is not None):
            enrollment.next_session_booked_at = now if on else None
    else:
        enrollment.one_off = on
    session.flush()
    return _skip(session, enrollment, now) if on else _restore(session, enrollment, now, settings)


def _skip(session: Session, enrollment: Enrollment, now: datetime) -> int:
    marks, skipped = marks_of(enrollment), 0
    for message in timeline(session, enrollment):
        condition = skipped_by(message.step.skip_if or (), marks)
        if condition is None or message.status not in UNSENT:
            continue
        message.status, message.stop_cause = MessageStatus.SKIPPED, StopCause.CONDITION
        message.status_reason = SKIP_REASONS[condition]
        message.lease_token, message.lease_until, message.updated_at = None, None, now
        skipped += 1
    session.flush()
    return skipped


def _restore(session: Session, enrollment: Enrollment, now: datetime, settings: Settings) -> int:
    """Put back what a condition skipped, unless another marked condition still holds."""
    if enrollment.status != EnrollmentStatus.ACTIVE:  # a cancelled sequence stays stopped
        return 0
    marks, restored = marks_of(enrollment), 0
    for message in timeline(session, enrollment):
        if message.stop_cause != StopCause.CONDITION:
            continue
        if skipped_by(message.step.skip_if or (), marks) is not None:
            continue
        place_message(session, message, timing_of(message.step), enrollment, now, settings)
        restored += message.status == MessageStatus.SCHEDULED
    session.flush()
    return restored
