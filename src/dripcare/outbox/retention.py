"""Retention: delete finished rows older than a cutoff, a small batch per transaction.

What goes: emails that are finished (sent, failed, cancelled, skipped) with their delivery
attempts, check-ins and clinic alerts; other clinic alerts (an unreachable patient, a paused or
resumed transport, the operator's copies) once delivered; stored Idempotency-Key answers;
admin sessions and failed sign-ins. What stays: patients, enrollments (the count of
treatments), subscription history (its link to a deleted email is cleared), the audit log, and
the suppression list, which keeps anyone who bounced, unsubscribed or was erased from being
mailed again. Nothing of an enrollment that still has an email to send is touched.

Each batch is its own short transaction, so the dispatcher and the API never wait long
behind a purge; batches walk the primary key, so each starts where the last one ended.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, func, select, update
from sqlalchemy.orm import Session, aliased

from dripcare.db import SessionScope
from dripcare.errors import UserError
from dripcare.models import (
    FINAL,
    UPCOMING,
    AdminSession,
    AlertStatus,
    CheckIn,
    ClinicAlert,
    DeliveryAttempt,
    IdempotentRequest,
    LoginFailure,
    Message,
    SubscriptionEvent,
)
from dripcare.people import audit
from dripcare.people.audit import Action, Actor

TABLES = (
    "messages",
    "delivery_attempts",
    "check_ins",
    "clinic_alerts",
    "idempotent_requests",
    "admin_sessions",
    "login_failures",
)


@dataclass
class Purged:
    """Rows deleted (or, in a dry run, that would be), by table."""

    counts: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False

    def add(self, table: str, count: int) -> None:
        self.counts[table] = self.counts.get(table, 0) + count

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def parse_age(text: str) -> timedelta:
    """'400d', '58w' or '400' (days): how old a row must be to go."""
    value = text.strip().lower()
    unit = {"d": 1, "w": 7}.get(value[-1:], 0)
    number = value[:-1] if unit else value
    if not number.isdigit() or int(number) < 1:
        raise UserError(f"--older-than {text!r}: give a number of days, e.g. 400d (or 58w)")
    return timedelta(days=int(number) * (unit or 1))


def purge(
    scope: SessionScope,
    cutoff: datetime,
    *,
    batch_size: int,
    actor: Actor,
    dry_run: bool = False,
) -> Purged:
    """Delete what is finished and older than `cutoff`; audited when anything went."""
    result = Purged({table: 0 for table in TABLES}, dry_run)
    if dry_run:
        with scope() as session:
            _count(session, cutoff, result)
        return result

    deleting = partial(_delete_messages, result=result)
    _in_batches(scope, _purgeable_messages(cutoff), batch_size, deleting, lock=True)
    for model, condition in _simple_tables(cutoff):
        deleting = partial(_delete_rows, model=model, where=condition, result=result)
        _in_batches(scope, select(model.id).where(condition), batch_size, deleting)
    if result.total:
        with scope() as session:
            detail = ", ".join(f"{n} {table}" for table, n in result.counts.items() if n)
            before = f"before {cutoff:%Y-%m-%d}: {detail}"
            audit.record(session, actor, Action.PURGE, clinic_id=None, detail=before)
    return result


def _purgeable_messages(cutoff: datetime) -> Any:
    """Finished emails, last changed and due before the cutoff, whose enrollment has nothing
    left to send and whose check-ins have no alert still to deliver.

    `due_at` too: a cancelled email still ahead could be restored by a resubscribe.
    """
    sibling = aliased(Message)
    unsent_sibling = exists().where(
        sibling.enrollment_id == Message.enrollment_id, sibling.status.in_(UPCOMING)
    )
    pending_alert = exists().where(
        CheckIn.message_pk == Message.id,
        ClinicAlert.check_in_id == CheckIn.id,
        ClinicAlert.status == AlertStatus.PENDING,
    )
    return select(Message.id).where(
        Message.status.in_(FINAL),
        Message.updated_at < cutoff,
        Message.due_at < cutoff,
        ~unsent_sibling,
        ~pending_alert,
    )


def _simple_tables(cutoff: datetime) -> list[tuple[Any, ColumnElement[bool]]]:
    return [
        (IdempotentRequest, IdempotentRequest.created_at < cutoff),
        (AdminSession, AdminSession.expires_at < cutoff),
        (LoginFailure, LoginFailure.at < cutoff),
        (  # a red-flag alert goes with its check-in (_delete_messages); undelivered ones stay
            ClinicAlert,
            ClinicAlert.check_in_id.is_(None)
            & (ClinicAlert.status == AlertStatus.DELIVERED)
            & (ClinicAlert.delivered_at < cutoff),
        ),
    ]


def _in_batches(
    scope: SessionScope,
    query: Any,
    size: int,
    work: Callable[[Session, list[int]], None],
    lock: bool = False,
) -> None:
    """Read `size` ids and `work` on them, in one short transaction per batch, walking the
    primary key so each batch starts where the last one ended."""
    after = 0
    column = query.selected_columns[0]
    while True:
        with scope() as session:
            page = query.where(column > after).order_by(column).limit(size)
            if lock:  # PostgreSQL: leave rows a sender holds; SQLite's write lock is held
                page = page.with_for_update(skip_locked=True, of=column.table)
            ids = list(session.scalars(page))
            if ids:
                work(session, ids)
        if len(ids) < size:
            return
        after = ids[-1]


def _delete_rows(
    session: Session, ids: list[int], *, model: Any, where: Any, result: Purged
) -> None:
    deleted = session.execute(delete(model).where(model.id.in_(ids), where))
    result.add(model.__tablename__, _rows(deleted))


def _delete_messages(session: Session, ids: list[int], *, result: Purged) -> None:
    """The rows that point at these emails first; subscription history stays, unlinked."""
    check_ins = select(CheckIn.id).where(CheckIn.message_pk.in_(ids))
    result.add(
        "clinic_alerts",
        _rows(session.execute(delete(ClinicAlert).where(ClinicAlert.check_in_id.in_(check_ins)))),
    )
    result.add(
        "check_ins", _rows(session.execute(delete(CheckIn).where(CheckIn.message_pk.in_(ids))))
    )
    session.execute(
        update(SubscriptionEvent)
        .where(SubscriptionEvent.message_pk.in_(ids))
        .values(message_pk=None)
    )
    result.add(
        "delivery_attempts",
        _rows(session.execute(delete(DeliveryAttempt).where(DeliveryAttempt.message_pk.in_(ids)))),
    )
    result.add("messages", _rows(session.execute(delete(Message).where(Message.id.in_(ids)))))


def _count(session: Session, cutoff: datetime, result: Purged) -> None:
    messages = _purgeable_messages(cutoff).subquery()
    check_ins = select(CheckIn.id).where(CheckIn.message_pk.in_(select(messages.c.id)))
    result.add("messages", _scalar(session, select(func.count()).select_from(messages)))
    result.add(
        "delivery_attempts",
        _scalar(
            session,
            select(func.count()).where(DeliveryAttempt.message_pk.in_(select(messages.c.id))),
        ),
    )
    result.add(
        "check_ins", _scalar(session, select(func.count()).select_from(check_ins.subquery()))
    )
    result.add(
        "clinic_alerts",
        _scalar(session, select(func.count()).where(ClinicAlert.check_in_id.in_(check_ins))),
    )
    for model, condition in _simple_tables(cutoff):
        result.add(model.__tablename__, _scalar(session, select(func.count()).where(condition)))


def _scalar(session: Session, query: Any) -> int:
    return int(session.scalar(query) or 0)


def _rows(executed: Any) -> int:
    return int(executed.rowcount or 0)
