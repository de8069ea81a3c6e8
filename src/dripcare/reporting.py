"""Read-only views of the outbox for operators."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dripcare.models import Message, MessageStatus


def outbox_status(session: Session) -> tuple[dict[str, int], datetime | None]:
    """Counts for every status (zeros included, so scripts can rely on the keys)."""
    counts = dict.fromkeys((s.value for s in MessageStatus), 0)
    for status, n in session.execute(select(Message.status, func.count()).group_by(Message.status)):
        counts[MessageStatus(status).value] = n
    next_due = session.scalar(
        select(func.min(Message.due_at)).where(Message.status == MessageStatus.SCHEDULED)
    )
    if isinstance(next_due, datetime) and next_due.tzinfo is None:
        from datetime import UTC

        next_due = next_due.replace(tzinfo=UTC)
    return counts, next_due
