"""Claiming due messages for sending, and recovering claims whose worker went away.

A claim is one statement: it moves up to N due rows from `scheduled` to `queued` under a fresh
lease token and returns their ids. On PostgreSQL the inner SELECT takes the rows with
`FOR UPDATE SKIP LOCKED`, so any number of dispatchers (a second beat, a manual run) claim
disjoint rows. SQLite renders no FOR UPDATE; there the connection's `BEGIN IMMEDIATE`
serialises writers, so a claim still sees no row that another claim took.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, any_, func, select, update
from sqlalchemy.orm import Session

from dripcare.db import SessionScope
from dripcare.models import Clinic, ClinicTransport, Message, MessageStatus, utcnow
from dripcare.sending import circuit

# How long a `sending` row whose lease expired waits before it is sent again: time for a
# worker that held its outcome through a database outage to record it (db_faults.MAX_DELAY).
RECORD_GRACE = timedelta(seconds=30)


@dataclass(frozen=True)
class Claim:
    """A batch of message ids owned by one lease token until `lease_until`."""

    token: str
    message_ids: list[int]
    lease_until: datetime


def claim_rows(
    session: Session, model: Any, conditions: list[Any], limit: int, values: dict[str, Any]
) -> list[int]:
    """One statement: lock up to `limit` matching rows, oldest due first, skipping rows another
    claimer holds (PostgreSQL), set `values` on them and return their ids. The outboxes for
    patients' emails and for clinic alerts both claim this way.

    On PostgreSQL the ids are taken as `id = ANY(ARRAY(subquery))`, so the UPDATE finds its
    rows through the primary key; with `id IN (subquery)` the planner hash-joins the subquery
    against a sequential scan of the whole table (bench/README.md, "Issue 11").
    """
    due = (
        select(model.id)
        .where(*conditions)
        .order_by(model.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    if session.get_bind().dialect.name == "postgresql":
        taken = model.id == any_(func.array(due))
    else:
        taken = model.id.in_(due)
    return list(
        session.scalars(
            update(model)
            .where(taken)
            .values(**values)
            .returning(model.id)
            .execution_options(synchronize_session=False)
        )
    )


def claim_due(
    session: Session, *, limit: int, lease: timedelta, now: datetime | None = None
) -> Claim | None:
    """Take up to `limit` due messages, oldest first; None when nothing is due."""
    now = now or utcnow()
    token = uuid.uuid4().hex
    # Served by the partial index ix_messages_due_scheduled (status = 'scheduled').
    ids = claim_rows(
        session,
        Message,
        [Message.status == MessageStatus.SCHEDULED, Message.due_at <= now],
        limit,
        {
            "status": MessageStatus.QUEUED,
            "lease_token": token,
            "lease_until": now + lease,
            "updated_at": now,
        },
    )
    if not ids:
        return None
    return Claim(token, sorted(ids), now + lease)


def claimed(token: str, ids: list[int]) -> ColumnElement[bool]:
    """Rows of `ids` that this claim still holds: cancelled or re-claimed ones are not."""
    return and_(
        Message.id.in_(ids), Message.lease_token == token, Message.status == MessageStatus.QUEUED
    )


def release(session: Session, token: str, ids: list[int], reason: str, now: datetime) -> int:
    """Give our claimed, unsent rows back to the queue as they were: no attempt counted."""
    result = session.execute(
        update(Message)
        .where(claimed(token, ids))
        .values(
            status=MessageStatus.SCHEDULED,
            lease_token=None,
            lease_until=None,
            status_reason=reason,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0  # type: ignore[attr-defined]


def due_clinics(session: Session, now: datetime | None = None) -> list[int]:
    """Clinics with messages due now, each once.

    Asked clinic by clinic (one probe of ix_messages_clinic_due_scheduled each): a DISTINCT over
    the scheduled rows read the whole index once most of them lay in the future (the planner
    cannot tell, 252 ms at 10 M rows in bench/scale.py)."""
    now = now or utcnow()
    due = (
        select(Message.id)
        .where(
            Message.clinic_id == Clinic.id,
            Message.status == MessageStatus.SCHEDULED,
            Message.due_at <= now,
        )
        .exists()
    )
    return list(session.scalars(select(Clinic.id).where(due).order_by(Clinic.id)))


def sendable(session: Session, clinics: list[int], now: datetime) -> list[int]:
    """`clinics` less those whose transport is paused (circuit.py) and not yet due for a probe:
    claiming their rows would only release them again. One query while no circuit is open."""
    paused = circuit.paused_keys(session, now)
    if not paused or not clinics:
        return clinics
    keys = _circuit_of(session, clinics)
    return [c for c in clinics if keys[c] not in paused]


def _circuit_of(session: Session, clinics: list[int]) -> dict[int, str]:
    """The circuit each clinic's emails go through: its own server's, or the platform's."""
    own = set(
        session.scalars(
            select(ClinicTransport.clinic_id).where(ClinicTransport.clinic_id.in_(clinics))
        )
    )
    return {c: circuit.key_for(c if c in own else None) for c in clinics}


@dataclass(frozen=True)
class PausedBacklog:
    """Emails due now that wait for a paused transport, and why it is paused."""

    transport: str
    waiting: int
    reason: str
    probe_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "transport": self.transport,
            "waiting": self.waiting,
            "reason": self.reason,
            "probe_at": self.probe_at.isoformat() if self.probe_at else None,
        }


def paused_backlog(session: Session, now: datetime | None = None) -> list[PausedBacklog]:
    """Each open circuit with due emails behind it: what `dripcare send` reports it left."""
    now = now or utcnow()
    opened = circuit.paused_circuits(session)
    if not opened:
        return []
    rows = session.execute(
        select(Message.clinic_id, func.count())
        .where(Message.status == MessageStatus.SCHEDULED, Message.due_at <= now)
        .group_by(Message.clinic_id)
    )
    counts: dict[int, int] = {clinic_id: n for clinic_id, n in rows}
    keys = _circuit_of(session, list(counts))
    result = []
    for row in opened:
        waiting = sum(n for clinic, n in counts.items() if keys[clinic] == row.transport)
        if waiting:
            result.append(PausedBacklog(row.transport, waiting, row.last_error, row.probe_at))
    return result


def claim_fair(
    session: Session,
    clinics: list[int],
    *,
    limit: int,
    lease: timedelta,
    now: datetime | None = None,
) -> Claim | None:
    """Like claim_due, but shared out between `clinics` so one clinic's big import cannot
    push another clinic's day-1 emails out of the tick.

    Each clinic in turn gets an equal share of what is left (at least one row), oldest due
    first within the clinic. `clinics` is the tick's list and is updated in place: clinics
    with nothing left are dropped and the rest rotate, so the next batch starts with the
    clinic after the last one served. One transaction and one lease token for the batch;
    every statement keeps FOR UPDATE SKIP LOCKED (claim_rows).
    """
    now = now or utcnow()
    token = uuid.uuid4().hex
    values = {
        "status": MessageStatus.QUEUED,
        "lease_token": token,
        "lease_until": now + lease,
        "updated_at": now,
    }
    ids: list[int] = []
    while clinics and len(ids) < limit:
        share = max(1, (limit - len(ids)) // len(clinics))
        served = 0
        for clinic_id in list(clinics):
            want = min(share, limit - len(ids))
            if want <= 0:
                break
            served += 1
            # Served by the partial index ix_messages_clinic_due_scheduled.
            conditions = [
                Message.status == MessageStatus.SCHEDULED,
                Message.due_at <= now,
                Message.clinic_id == clinic_id,
            ]
            got = claim_rows(session, Message, conditions, want, values)
            ids += got
            if len(got) < want:
                clinics.remove(clinic_id)
                served -= 1
        clinics[:] = clinics[served:] + clinics[:served]
    if not ids:
        return None
    return Claim(token, sorted(ids), now + lease)


def recover_expired(
    session: Session, now: datetime | None = None, grace: timedelta = RECORD_GRACE
) -> int:
    """Give expired claims back to the queue.

    A `queued` row was never handed to the server: it is due again at once. A `sending` row may
    have reached the server; its worker may still be alive and holding the outcome (the
    database was down longer than the lease). It keeps its lease token for `grace`, so that
    worker can still record it (its writes are guarded by the token) before it is claimed and
    sent again, with the same Message-ID, by anyone else. Never lost either way.
    """
    now = now or utcnow()
    # Both served by the partial index ix_messages_lease_inflight.
    queued = session.execute(
        update(Message)
        .where(Message.status == MessageStatus.QUEUED, Message.lease_until < now)
        .values(
            status=MessageStatus.SCHEDULED,
            lease_token=None,
            lease_until=None,
            status_reason="lease expired; requeued",
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    sending = session.execute(
        update(Message)
        .where(Message.status == MessageStatus.SENDING, Message.lease_until < now)
        .values(
            status=MessageStatus.SCHEDULED,
            due_at=now + grace,
            lease_until=None,
            status_reason="lease expired while sending; requeued",
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return (queued.rowcount or 0) + (sending.rowcount or 0)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class TickResult:
    recovered: int
    claimed: int
    batches: int
    # It stopped at its cap (max_per_tick or max_queued) with rows claimed: more may be due.
    full: bool = False


def waiting_for_a_worker(session: Session) -> int:
    """Claimed rows no worker has started yet: in the broker's queue or prefetched.
    Counted on the small partial index ix_messages_lease_inflight."""
    return (
        session.scalar(
            select(func.count()).select_from(Message).where(Message.status == MessageStatus.QUEUED)
        )
        or 0
    )


def dispatch_tick(
    session_scope: SessionScope,
    enqueue: Callable[[Claim], None],
    *,
    batch_size: int,
    max_per_tick: int,
    lease: timedelta,
    grace: timedelta = RECORD_GRACE,
    max_queued: int = 0,
) -> TickResult:
    """One dispatcher pass: recover leases, then claim batches and hand each to `enqueue`.

    Batches are shared fairly between the clinics that had messages due when the tick began
    (claim_fair), leaving out clinics whose transport is paused (sendable); messages of other
    clinics that fall due meanwhile wait for the next tick.

    With `max_queued`, a tick only tops the claimed-but-unstarted rows up to it. The broker's
    queue is first in, first out: a 09:00 burst claimed at once would put every other clinic's
    emails of the next tick behind all of it. Capped, the burst waits in the database, where
    each tick shares it out again between the clinics then due (bench/lateness.py). A tick
    that fills its room says so (`full`), and the task runs the next one at once: it waits in
    the dispatch queue for a free worker process, so ticks follow the workers' pace.

    Each claim is committed before it is enqueued, so a worker never sees an uncommitted
    claim; if enqueueing fails the lease simply expires and the rows are claimed again.
    """
    with session_scope() as session:
        recovered = recover_expired(session, grace=grace)
        clinics = sendable(session, due_clinics(session), utcnow())
        budget = max_per_tick
        if max_queued and clinics:
            budget = min(budget, max(0, max_queued - waiting_for_a_worker(session)))
    claimed = batches = 0
    while claimed < budget:
        with session_scope() as session:
            limit = min(batch_size, budget - claimed)
            claim = claim_fair(session, clinics, limit=limit, lease=lease)
        if claim is None:
            break
        enqueue(claim)
        claimed += len(claim.message_ids)
        batches += 1
    return TickResult(recovered, claimed, batches, full=0 < budget <= claimed)
