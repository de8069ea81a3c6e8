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


def list_messages(
    session: Session,
    clinic_id: int,
    *,
    status: MessageStatus | None = None,
    since: datetime | None = None,
    after_id: int = 0,
    limit: int = 50,
) -> list[Message]:
    """A page of a clinic's messages in id order; `since` filters on the last change."""
    query = select(Message).where(Message.clinic_id == clinic_id, Message.id > after_id)
    if status is not None:
        query = query.where(Message.status == status)
    if since is not None:
        query = query.where(Message.updated_at >= since)
    return list(session.scalars(query.order_by(Message.id).limit(limit)))
