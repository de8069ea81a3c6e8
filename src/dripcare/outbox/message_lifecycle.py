"""Stopping and restoring unsent messages: the one place cancel, supersede, step removal,
unsubscribe, suppression and erasure all go through.

Each stop records its cause as a `StopCause` on the row (`stop_cause`), and `status_reason`
keeps the words people read. Whatever undoes a stop (a patient resuming a treatment or
resubscribing) selects by the cause, never by those words.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, update
from sqlalchemy.orm import Session

from dripcare.models import UNSENT, Message, MessageStatus, StopCause, utcnow

# What `status_reason` says for a cause that needs no detail.
REASONS = {
    StopCause.CLINIC: "cancelled",
    StopCause.PATIENT: "stopped by the patient",
    StopCause.UNSUBSCRIBED: "unsubscribed",
    StopCause.ERASED: "patient erased",
    # Generic on purpose: the remote's words (which may quote the address) stay on the
    # suppression entry, which erasure replaces, not on every email row.
    StopCause.BOUNCED: "address bounced",
    StopCause.COMPLAINED: "patient marked an email as spam",
    StopCause.LATE: "due more than the grace period before enrollment",
}


def stop_unsent(
    session: Session, which: ColumnElement[bool], cause: StopCause, reason: str = ""
) -> int:
    """Cancel the matching unsent messages in one UPDATE; returns how many.

    A message claimed but not yet sending loses its lease and is not sent: the send path
    re-checks the status under its claim.
    """
    return _move_unsent(
        session,
        which,
        UNSENT,
        status=MessageStatus.CANCELLED,
        stop_cause=cause,
        status_reason=reason or REASONS[cause],
    )


def hold_unsent(session: Session, which: ColumnElement[bool], reason: str) -> int:
    """Hold the matching unsent messages (not cancelled: the clinic resumes or stops them)."""
    waiting = (MessageStatus.SCHEDULED, MessageStatus.QUEUED)
    return _move_unsent(session, which, waiting, status=MessageStatus.HELD, status_reason=reason)


def _move_unsent(
    session: Session, which: ColumnElement[bool], statuses: tuple[str, ...], **values: object
) -> int:
    """One UPDATE that also drops any claim (lease), so a claimed row is not sent after all."""
    result = session.execute(
        update(Message)
        .where(which, Message.status.in_(statuses))
        .values(lease_token=None, lease_until=None, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    session.expire_all()
    return result.rowcount or 0  # type: ignore[attr-defined]


def restore(session: Session, which: ColumnElement[bool], cause: StopCause, now: datetime) -> int:
    """Put back the matching messages that `cause` cancelled and that are still ahead."""
    result = session.execute(
        update(Message)
        .where(
            which,
            Message.status == MessageStatus.CANCELLED,
            Message.stop_cause == cause,
            Message.due_at > now,
        )
        .values(status=MessageStatus.SCHEDULED, stop_cause=None, status_reason="", updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0  # type: ignore[attr-defined]
