"""Sending one claimed batch: render, compose, hand to the transport, record the outcome.

Three short transactions and no transaction open across SMTP:
1. take the batch from `queued` to `sending` under our lease token (attempt recorded);
2. outside any transaction, send every message over one connection;
3. write outcomes every `result_flush` messages, each guarded by the lease token, so a worker
   whose lease was recovered cannot overwrite the newer claim; the lease is renewed every third
   of it, and a batch that finds it lost stops sending.
A row already `sent` is never selected again. Each acceptance is noted in the process's journal
(send_journal) until its outcome is committed: a worker process killed mid-batch has its emails
recorded by the next process that starts, and only the one in flight at the kill is sent again
after the lease expires, with the same Message-ID, which receivers can recognise.
A database outage ends sending, not the batch: the outcomes known are held and recorded once the
database answers (db_faults.wait_out; lease recovery gives them dispatch.RECORD_GRACE), and the
messages not yet sent go back to the queue as they were.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import cast

from sqlalchemy import Integer, Table, bindparam, func, insert, select, text, update
from sqlalchemy.orm import Session

from dripcare import db_faults
from dripcare.config import Settings
from dripcare.content.rendering import RenderError
from dripcare.db import SessionScope, among
from dripcare.models import (
    Clinic,
    DeliveryAttempt,
    Message,
    MessageStatus,
    StopCause,
    Suppression,
    SuppressionSource,
    UTCDateTime,
    utcnow,
)
from dripcare.outbox import suppression
from dripcare.outbox.dispatch import (
    claim_fair,
    claimed,
    due_clinics,
    recover_expired,
    release,
    sendable,
)
from dripcare.outbox.skip_conditions import SKIP_REASONS, marks_of, skipped_by
from dripcare.redaction import withheld
from dripcare.secrets_box import SecretUnavailable
from dripcare.sending import (
    backoff,
    channels,
    circuit,
    clinic_transports,
    dkim_keys,
    send_journal,
    send_limits,
    send_rules,
    transport_alerts,
)
from dripcare.sending.composing import Envelope, compose
from dripcare.sending.message_view import Job, load_jobs, render_job
from dripcare.sending.transports import (
    PermanentError,
    RecipientRefused,
    TransientError,
    Transport,
    TransportFailure,
)
from dripcare.sending.verp import envelope_sender

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    pk: int
    status: MessageStatus
    reason: str = ""
    error: str = ""
    code: int | None = None
    due_at: datetime | None = None
    version: int | None = None
    send_seconds: float | None = None  # how long the SMTP server took, when it was asked
    suppressed: bool = False  # cancelled because the address is on the suppression list
    bounced: bool = False  # the recipient's server refused the address for good: suppress it
    cause: StopCause | None = None  # why it was cancelled
    refund: bool = False  # the transport failed, not this message: the attempt does not count


@dataclass
class BatchResult:
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    cancelled: int = 0
    skipped: int = 0
    outcomes: list[Outcome] = field(default_factory=list)
    transport_failure: TransportFailure | None = None  # why the whole batch waits, if it does
    paused: int = 0  # released unsent: the transport's circuit is open
    transport_failures: dict[str, TransportFailure] = field(default_factory=dict)  # by circuit
    keys: dict[int, str] = field(default_factory=dict)  # message pk: the circuit it went through
    reached: set[str] = field(default_factory=set)  # circuits whose server answered a message

    @property
    def suppressed(self) -> int:
        return sum(o.suppressed for o in self.outcomes)

    @property
    def bounced(self) -> int:
        return sum(o.bounced for o in self.outcomes)

    @property
    def send_seconds(self) -> list[float]:
        return [o.send_seconds for o in self.outcomes if o.send_seconds is not None]


def send_batch(
    scope: SessionScope,
    token: str,
    message_ids: list[int],
    transport: Transport,
    settings: Settings,
    now: Callable[[], datetime] = utcnow,
) -> BatchResult:
    """Send one claimed batch. Raises db_faults.DatabaseUnavailable only when the database
    stayed away through the first third of the lease before anything was sent."""
    result = BatchResult()

    def begin() -> tuple[set[str], list[Job]]:
        with scope() as session:
            held, probes = _gates(session, token, message_ids, now())
            if held:
                reason = "sending paused: the mail server refuses our sender or login"
                result.paused = release(session, token, held, reason, now())
            return probes, _start(session, token, message_ids, settings, now())

    starting = f"starting a batch of {len(message_ids)}"
    probes, jobs = db_faults.wait_out(begin, starting, limit=settings.lease_seconds / 3)
    if not jobs and not probes:
        return result
    book = _Book(scope, token, jobs, settings, now, result)
    outcomes = _deliver(jobs, transport, settings, now, result)
    try:
        for outcome in outcomes:
            if not book.add(outcome):
                break  # the database is away or the lease is lost: send nothing more
    finally:
        outcomes.close()  # hangs up the SMTP connection
    book.close()
    try:
        db_faults.wait_out(
            lambda: _update_circuit(scope, probes, result, jobs, settings, now()),
            "updating the transport's circuit",
            limit=settings.lease_seconds / 3,
        )
    except db_faults.DatabaseUnavailable as exc:
        log.warning("transport circuit not updated: %s", exc)
    return result


def _gates(
    session: Session, token: str, ids: list[int], now: datetime
) -> tuple[list[int], set[str]]:
    """Our rows that wait for a paused transport, and the transports this batch probes.

    One query when every circuit is closed, as it nearly always is; only with a circuit open
    are the rows' clinics looked up."""
    opened = circuit.open_keys(session)
    if not opened:
        return [], set()
    rows = session.execute(select(Message.id, Message.clinic_id).where(claimed(token, ids))).all()
    keys = {
        clinic_id: clinic_transports.circuit_key(clinic)
        for clinic_id in {row.clinic_id for row in rows}
        if (clinic := session.get(Clinic, clinic_id)) is not None
    }
    gates = {key: circuit.take_probe(session, key, now) for key in set(keys.values()) & opened}
    held = [row.id for row in rows if gates.get(keys[row.clinic_id]) is circuit.Gate.PAUSED]
    return held, {key for key, gate in gates.items() if gate is circuit.Gate.PROBE}


class _Book:
    """The batch's outcomes on their way to the database, and its lease kept alive."""

    def __init__(
        self,
        scope: SessionScope,
        token: str,
        jobs: list[Job],
        settings: Settings,
        now: Callable[[], datetime],
        result: BatchResult,
    ) -> None:
        self.scope, self.token, self.jobs, self.settings = scope, token, jobs, settings
        self.now, self.result = now, result
        self.unsaved: list[Outcome] = []
        self.unsent = {job.pk for job in jobs}
        self.renew_every = settings.lease_seconds / 3
        self.renewed = time.monotonic()
        self.stopped = False
        self.journal = send_journal.for_process(journal_dir(settings))

    def add(self, outcome: Outcome) -> bool:
        """Take one outcome; False when sending must stop."""
        self.unsent.discard(outcome.pk)
        if outcome.status == MessageStatus.SENT:
            self.journal.accepted(self.token, outcome.pk, outcome.version)
        self.unsaved.append(outcome)
        renew = time.monotonic() - self.renewed >= self.renew_every
        if len(self.unsaved) < self.settings.result_flush and not renew:
            return True
        try:
            self._commit(renew=renew)
        except Exception as exc:
            if db_faults.fault_of(exc) is None:
                raise
            self.stopped = True  # close() holds the outcomes until the database answers
        return not self.stopped

    def close(self) -> None:
        """Record what is held, waiting out the database if need be; put back what was unsent."""
        if self.unsaved or (self.stopped and self.unsent):
            db_faults.wait_out(self._commit, f"holding {len(self.unsaved)} outcomes")

    def _commit(self, renew: bool = False) -> None:
        """One transaction: the outcomes held, then the lease renewed or the unsent put back.
        Outcomes leave the book only once committed."""
        outcomes = list(self.unsaved)
        now = self.now()
        with self.scope() as session:
            owned = _finish(session, self.token, outcomes, self.jobs, now) if outcomes else []
            if renew and self.unsent and not self.stopped:
                until = now + timedelta(seconds=self.settings.lease_seconds)
                kept = _renew(session, self.token, sorted(self.unsent), until, now)
                if kept < len(self.unsent):
                    log.warning(
                        "lease lost for %d of %d unsent messages; stopping this batch",
                        len(self.unsent) - kept,
                        len(self.unsent),
                    )
                    self.stopped = True
            if self.stopped and self.unsent:
                reason = "batch stopped before this message was sent; requeued"
                _requeue_unsent(session, self.token, sorted(self.unsent), reason, now)
        self.journal.committed()
        if renew:
            self.renewed = time.monotonic()
        if self.stopped:
            self.unsent.clear()
        del self.unsaved[: len(outcomes)]
        if len(owned) < len(outcomes):
            log.warning(
                "%d outcomes not recorded: their lease was recovered; stopping this batch",
                len(outcomes) - len(owned),
            )
            self.stopped = True
        _count(self.result, owned)


def _update_circuit(
    scope: SessionScope,
    probes: set[str],
    result: BatchResult,
    jobs: list[Job],
    settings: Settings,
    when: datetime,
) -> None:
    """Open the circuit of each transport that refused us (telling people the first time);
    close the ones this batch probed and got through; give back a probe that reached nothing."""
    if not result.transport_failures and not probes:
        return
    with scope() as session:
        for key, failure in result.transport_failures.items():
            if circuit.record_failure(session, key, failure, when):
                clinics = {job.clinic.id for job in jobs if result.keys.get(job.pk) == key}
                transport_alerts.queue(session, key, failure, clinics, when, settings)
        for key in probes - result.transport_failures.keys():
            if key not in result.reached:  # nothing reached the server (all cancelled, say)
                circuit.give_back_probe(session, key, when)
            elif circuit.record_success(session, key, when):
                transport_alerts.resumed(session, key, when, settings)


def journal_dir(settings: Settings) -> Path:
    return settings.state_dir / "journal"


def replay_journals(scope: SessionScope, settings: Settings) -> int:
    """Record as sent the emails that worker processes now gone had sent but not recorded
    (send_journal); returns how many rows that updated."""
    recorded = 0
    for path, entries in send_journal.orphans(journal_dir(settings)):
        by_token: dict[str, list[Outcome]] = {}
        for entry in entries:
            outcome = Outcome(entry.pk, MessageStatus.SENT, version=entry.version)
            by_token.setdefault(entry.token, []).append(outcome)
        with scope() as session:
            for token, outcomes in by_token.items():
                recorded += len(_finish(session, token, outcomes, [], utcnow()))
        path.unlink()
    if recorded:
        log.warning("recorded %d emails sent by a worker process that stopped", recorded)
    return recorded


def _count(result: BatchResult, outcomes: list[Outcome]) -> None:
    result.outcomes.extend(outcomes)
    for outcome in outcomes:
        name = _COUNTERS[outcome.status]
        setattr(result, name, getattr(result, name) + 1)


def _renew(session: Session, token: str, pks: list[int], until: datetime, now: datetime) -> int:
    """Extend our lease on the rows still to send; returns how many we still hold."""
    kept = session.execute(
        update(Message)
        .where(
            Message.id.in_(pks),
            Message.lease_token == token,
            Message.status == MessageStatus.SENDING,
        )
        .values(lease_until=until, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return kept.rowcount or 0  # type: ignore[attr-defined]


def _requeue_unsent(
    session: Session, token: str, pks: list[int], reason: str, now: datetime
) -> None:
    """Unsent rows of a stopped batch go back to the queue as they were: no attempt, no start."""
    session.execute(
        update(Message)
        .where(Message.id.in_(pks), Message.lease_token == token)
        .values(
            status=MessageStatus.SCHEDULED,
            status_reason=reason,
            starts=Message.starts - 1,
            lease_token=None,
            lease_until=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )


def _start(
    session: Session, token: str, ids: list[int], settings: Settings, now: datetime
) -> list[Job]:
    """Move our claimed rows to `sending`; rows cancelled or re-claimed meanwhile drop out.

    No attempt is counted here (only a reply of the server counts one); the start is, until an
    outcome is recorded, so a message that kills its worker every time ends up failed.
    """
    owned = session.execute(
        update(Message)
        .where(claimed(token, ids))
        .values(
            status=MessageStatus.SENDING,
            starts=Message.starts + 1,
            lease_until=now + timedelta(seconds=settings.lease_seconds),
            updated_at=now,
        )
        .returning(Message.id, Message.starts)
        .execution_options(synchronize_session=False)
    ).all()
    poison = [pk for pk, starts in owned if starts > settings.max_starts]
    if poison:
        _fail_poison(session, token, poison, settings, now)
    live = sorted(pk for pk, starts in owned if starts <= settings.max_starts)
    if not live:
        return []
    return _mark_suppressed(session, load_jobs(session, live))


def _fail_poison(
    session: Session, token: str, pks: list[int], settings: Settings, now: datetime
) -> None:
    reason = (
        f"started {settings.max_starts} times without an outcome (its worker stopped or lost "
        "the database each time); not tried again"
    )
    log.error("%d messages failed: %s", len(pks), reason)
    outcomes = [Outcome(pk, MessageStatus.FAILED, reason=reason, refund=True) for pk in pks]
    _finish(session, token, outcomes, [], now)


def _mark_suppressed(session: Session, jobs: list[Job]) -> list[Job]:
    """The jobs, those whose address is on their clinic's suppression list marked so."""
    if not jobs:
        return jobs
    keys = {job.to: suppression.keys(job.to) for job in jobs}  # a hash each: once per address
    found = session.execute(
        select(Suppression.clinic_id, Suppression.email, Suppression.reason).where(
            among(session, Suppression.email, {key for pair in keys.values() for key in pair}),
            among(session, Suppression.clinic_id, {job.clinic.id for job in jobs}),
        )
    ).all()
    reasons = {(clinic, email): reason for clinic, email, reason in found}
    if not reasons:  # nearly always: every job stays as it was
        return jobs
    marked = []
    for job in jobs:
        plain, hashed = keys[job.to]
        why = reasons.get((job.clinic.id, plain)) or reasons.get((job.clinic.id, hashed))
        marked.append(job if why is None else replace(job, suppressed=why))
    return marked


def build_email(job: Job, settings: Settings, when: datetime) -> bytes:
    """Render and compose one message (also used by the benchmark baseline)."""
    rendered, links = render_job(job, settings)
    clinic = job.clinic
    envelope = Envelope(
        from_name=clinic.name,
        from_addr=clinic.sender_email,
        to_addr=job.to,
        subject=rendered.subject,
        message_id=job.message_id,
        date=when,
        list_unsubscribe=(links.unsubscribe, links.unsubscribe_mailto),
        reply_to=clinic.alert_email or clinic.sender_email,  # a reply reaches the clinic's staff
    )
    return dkim_keys.signed(settings, clinic, compose(envelope, rendered.text, rendered.html))


def _deliver(
    jobs: list[Job],
    transport: Transport,
    settings: Settings,
    now: Callable[[], datetime],
    result: BatchResult,
) -> Generator[Outcome, None, None]:
    """Yields each message's outcome as soon as it is known."""
    pending = [job for job in jobs if job.suppressed is None]
    for job in jobs:
        if job.suppressed is not None:
            yield Outcome(
                job.pk,
                MessageStatus.CANCELLED,
                reason=f"address suppressed: {job.suppressed}",
                suppressed=True,
                cause=StopCause.SUPPRESSED,
            )
    by_channel: dict[str, list[Job]] = {}
    for job in pending:
        by_channel.setdefault(channels.channel_of(job), []).append(job)
    for name, group in by_channel.items():  # each channel's sender made once per batch
        yield from CHANNELS[name](transport, settings).deliver(group, now, result)


class EmailChannel:
    """Email, through the platform's SMTP server or the clinic's own: one connection each."""

    def __init__(self, transport: Transport, settings: Settings) -> None:
        self.transport, self.settings = transport, settings

    def deliver(
        self, jobs: list[Job], now: Callable[[], datetime], result: BatchResult
    ) -> Iterator[Outcome]:
        platform, settings = self.transport, self.settings
        for own, group in clinic_transports.grouped(jobs, settings, platform):
            key = circuit.key_for(None if own is platform else group[0].clinic.id)
            result.keys.update((job.pk, key) for job in group)
            failures = BatchResult()
            for outcome in _deliver_over(own, group, settings, now, failures):
                if outcome.send_seconds is not None:
                    result.reached.add(key)
                yield outcome
            if failures.transport_failure is not None:
                result.transport_failures[key] = failures.transport_failure
                if key == circuit.PLATFORM:
                    result.transport_failure = failures.transport_failure


CHANNELS: dict[str, channels.ChannelFactory] = {channels.EMAIL: EmailChannel}


def _deliver_over(
    transport: Transport,
    pending: list[Job],
    settings: Settings,
    now: Callable[[], datetime],
    result: BatchResult,
) -> Iterator[Outcome]:
    """One connection for these messages; if it fails, the rest of them wait."""
    limits = send_limits.limits_for(settings)
    slots = limits.connections
    if (slot := slots.take(settings.lease_seconds)) is None:  # every connection is in use
        reason = f"all {slots.limit} connections to the mail server in use; put back"
        for job in pending:
            due = now() + timedelta(seconds=random.uniform(5, 10))
            yield Outcome(job.pk, MessageStatus.SCHEDULED, reason, due_at=due, refund=True)
        return
    try:
        with transport:
            for index, job in enumerate(pending):
                try:
                    outcome = _send_one(job, transport, settings, now, limits)
                except TransportFailure as exc:
                    log.warning(
                        "SMTP transport failed, deferring %d messages: %s",
                        len(pending) - index,
                        exc,
                    )
                    result.transport_failure = exc
                    for waiting in pending[index:]:
                        yield _defer(waiting, settings, now(), str(exc), exc.code, count=False)
                    return
                yield outcome
    except TransportFailure as exc:  # raised while closing; every outcome is already known
        log.warning("SMTP connection closed with an error: %s", exc)
    finally:
        slots.release(slot)


def _send_one(
    job: Job,
    transport: Transport,
    settings: Settings,
    now: Callable[[], datetime],
    limits: send_limits.SendLimits | None = None,
) -> Outcome:
    version = job.version
    if (stopped := _not_now(job, settings, now)) is not None:
        return stopped
    limits = limits or send_limits.limits_for(settings)
    if (wait := limits.wait(job.to)) is not None:  # put back a little later; the batch goes on
        return _put_back(job, wait, now)
    data = _built(job, settings, now)
    if isinstance(data, Outcome):
        return data
    sending = limits.start(job.to, settings.lease_seconds)
    if isinstance(sending, send_limits.Wait):  # its provider has all the sends it may at once
        return _put_back(job, sending, now)
    start = time.perf_counter()
    try:
        sender = envelope_sender(settings, job.pk) or job.clinic.sender_email
        transport.send(sender, job.to, data, job.message_id)
    except TransportFailure:
        raise
    except TransientError as exc:
        slow = send_limits.is_slow_down(exc.code, str(exc))
        if slow:
            limits.slow_down(job.to)
        outcome = _defer(job, settings, now(), str(exc), exc.code, count=not slow)
    except PermanentError as exc:
        outcome = Outcome(
            job.pk,
            MessageStatus.FAILED,
            reason="rejected by the mail server",
            error=str(exc),
            code=exc.code,
            version=version,
            bounced=isinstance(exc, RecipientRefused),
        )
    else:
        outcome = Outcome(job.pk, MessageStatus.SENT, version=version)
    finally:
        sending.done()
    outcome.send_seconds = time.perf_counter() - start
    return outcome


def _not_now(job: Job, settings: Settings, now: Callable[[], datetime]) -> Outcome | None:
    """Why this message must not go now (its step removed or skipped since it was claimed, or
    a send rule holding it); None when it may go."""
    if job.content_step is None:  # removed by a version published after this was claimed
        reason = f"step {job.step.key!r} removed in version {job.version}"
        return Outcome(job.pk, MessageStatus.CANCELLED, reason=reason, cause=StopCause.STEP_REMOVED)
    condition = skipped_by(job.content_step.skip_if, marks_of(job.enrollment))
    if condition is not None:  # marked after this was claimed: the mark wins
        reason = SKIP_REASONS[condition]
        return Outcome(
            job.pk, MessageStatus.SKIPPED, reason, cause=StopCause.CONDITION, refund=True
        )
    timing = send_rules.timing_of_spec(job.content_step)
    held = send_rules.hold(job.clinic, job.enrollment, timing, settings, now())
    if held is not None:
        late = StopCause.LATE if held.status == MessageStatus.SKIPPED else None
        return Outcome(
            job.pk, held.status, held.reason, due_at=held.due_at, cause=late, refund=True
        )
    return None


def _built(job: Job, settings: Settings, now: Callable[[], datetime]) -> bytes | Outcome:
    """The email's bytes, or the outcome of a message that cannot be built."""
    try:
        return build_email(job, settings, now())
    except RenderError as exc:
        return Outcome(
            job.pk,
            MessageStatus.FAILED,
            reason="template error",
            error=str(exc),
            version=job.version,
        )
    except SecretUnavailable as exc:  # the clinic's DKIM key cannot be opened here: wait for it
        return _defer(job, settings, now(), str(exc), None, count=False)
    except Exception as exc:  # one bad message must not sink its batch (and loop on recovery)
        log.error("could not build message %s\n%s", job.pk, withheld(exc))
        return Outcome(
            job.pk,
            MessageStatus.FAILED,
            reason="could not build the email",
            error=f"{type(exc).__name__}: {exc}",
            version=job.version,
        )


def _put_back(job: Job, wait: send_limits.Wait, now: Callable[[], datetime]) -> Outcome:
    """Not now because of a limit, not because of this message: no attempt is counted."""
    due = now() + wait.delay
    return Outcome(job.pk, MessageStatus.SCHEDULED, wait.reason, due_at=due, refund=True)


def _defer(
    job: Job, settings: Settings, at: datetime, error: str, code: int | None, *, count: bool
) -> Outcome:
    """Try again later with exponential backoff and jitter.

    Only the message's own temporary refusals count towards max_attempts: while the server is
    unreachable every message waits, however long the outage lasts.
    """
    tries = job.attempts + 1  # this one included
    if count and tries >= settings.max_attempts:
        return Outcome(
            job.pk,
            MessageStatus.FAILED,
            reason="gave up after temporary failures",
            error=error,
            code=code,
        )
    delay = backoff.delay(tries, settings.retry_base_seconds, settings.retry_max_seconds)
    return Outcome(
        job.pk,
        MessageStatus.SCHEDULED,
        reason="temporary failure; will retry",
        error=error,
        code=code,
        due_at=at + delay,
        refund=not count,
    )


_COUNTERS = {
    MessageStatus.SENT: "sent",
    MessageStatus.SCHEDULED: "deferred",
    MessageStatus.FAILED: "failed",
    MessageStatus.CANCELLED: "cancelled",
    MessageStatus.SKIPPED: "skipped",
}


def _finish(
    session: Session, token: str, outcomes: list[Outcome], jobs: list[Job], now: datetime
) -> list[Outcome]:
    """Record the outcomes of rows we still hold; returns those (a recovered row is not ours)."""
    if session.get_bind().dialect.name == "postgresql":
        outcomes = _record_in_one_statement(session, token, outcomes, now)
    else:
        outcomes = _write_outcomes(session, token, outcomes, now)
        _log_attempts(session, outcomes, now)
    if not outcomes:
        return []
    by_pk = {job.pk: job for job in jobs}
    _suppress(
        session,
        [(by_pk[o.pk], o) for o in outcomes if o.bounced],
        now,
    )
    return outcomes


def _log_attempts(session: Session, outcomes: list[Outcome], now: datetime) -> None:
    if not outcomes:
        return
    session.execute(
        insert(DeliveryAttempt),
        [
            {
                "message_pk": o.pk,
                "at": now,
                "outcome": o.status.value,
                "smtp_code": o.code,
                "detail": o.error or o.reason,
            }
            for o in outcomes
        ],
    )


# PostgreSQL: the outcomes as one JSON parameter; the UPDATE guarded by our token writes the
# rows still ours (and locks them until commit), and the attempts are logged for exactly the
# rows it returned. One round trip per flush instead of a SELECT ... FOR UPDATE, an UPDATE per
# outcome and an INSERT (bench/README.md, "The send path alone"). The ids are also passed as an
# array so the UPDATE reads its rows through the primary key: joined only to the JSON rows,
# whose count the planner cannot know, it scanned the whole table (bench/README.md, "Issue 11").
_RECORD_PG = text(
    """
WITH outcome AS (
    SELECT * FROM json_to_recordset(CAST(:outcomes AS json)) AS o(
        id integer, status text, reason text, cause text, error text, detail text,
        code integer, due timestamptz, version integer, sent boolean, counted integer)
), written AS (
    UPDATE messages AS m SET
        status = outcome.status,
        status_reason = outcome.reason,
        stop_cause = outcome.cause,
        last_error = outcome.error,
        due_at = coalesce(outcome.due, m.due_at),
        sent_at = CASE WHEN outcome.sent THEN :now END,
        campaign_version = coalesce(outcome.version, m.campaign_version),
        attempts = m.attempts + outcome.counted,
        starts = 0,
        lease_token = NULL,
        lease_until = NULL,
        updated_at = :now
    FROM outcome
    WHERE m.id = ANY(CAST(:ids AS integer[])) AND m.id = outcome.id AND m.lease_token = :token
    RETURNING m.id
)
INSERT INTO delivery_attempts (message_pk, at, outcome, smtp_code, detail)
SELECT outcome.id, :now, outcome.status, outcome.code, outcome.detail
FROM outcome JOIN written ON written.id = outcome.id
RETURNING message_pk
"""
).bindparams(bindparam("now", type_=UTCDateTime()))


def _record_in_one_statement(
    session: Session, token: str, outcomes: list[Outcome], now: datetime
) -> list[Outcome]:
    rows = [
        {
            "id": o.pk,
            "status": o.status.value,
            "reason": o.reason,
            "cause": None if o.cause is None else o.cause.value,
            "error": o.error,
            "detail": o.error or o.reason,
            "code": o.code,
            "due": None if o.due_at is None else o.due_at.isoformat(),
            "version": o.version,
            "sent": o.status == MessageStatus.SENT,
            "counted": int(not o.refund),
        }
        for o in outcomes
    ]
    ids = [o.pk for o in outcomes]
    params = {"outcomes": json.dumps(rows), "ids": ids, "now": now, "token": token}
    written = set(session.connection().execute(_RECORD_PG, params).scalars())
    return [o for o in outcomes if o.pk in written]


def _write_outcomes(
    session: Session, token: str, outcomes: list[Outcome], now: datetime
) -> list[Outcome]:
    """One UPDATE per outcome (executemany), guarded by our token; returns the ones written."""
    table = cast(Table, Message.__table__)
    guard = [table.c.id == bindparam("b_id"), table.c.lease_token == token]
    pks = [o.pk for o in outcomes]
    if len(outcomes) > 1:  # which rows are still ours, locked until commit
        owned = set(
            session.scalars(
                select(table.c.id).where(table.c.id.in_(pks), guard[1]).with_for_update()
            )
        )
        outcomes = [o for o in outcomes if o.pk in owned]
        if not outcomes:
            return []
    statement = (
        update(table)
        .where(*guard)
        .values(
            status=bindparam("b_status"),
            status_reason=bindparam("b_reason"),
            stop_cause=bindparam("b_cause"),
            last_error=bindparam("b_error"),
            due_at=func.coalesce(bindparam("b_due", type_=UTCDateTime()), table.c.due_at),
            sent_at=bindparam("b_sent", type_=UTCDateTime()),
            campaign_version=func.coalesce(
                bindparam("b_version", type_=Integer()), table.c.campaign_version
            ),
            attempts=table.c.attempts + bindparam("b_counted", type_=Integer()),
            starts=0,
            lease_token=None,
            lease_until=None,
            updated_at=now,
        )
    )
    params = [
        {
            "b_id": o.pk,
            "b_status": o.status.value,
            "b_reason": o.reason,
            "b_cause": o.cause,
            "b_error": o.error,
            "b_due": o.due_at,
            "b_version": o.version,
            "b_sent": now if o.status == MessageStatus.SENT else None,
            "b_counted": int(not o.refund),
        }
        for o in outcomes
    ]
    written = session.connection().execute(statement, params)
    if len(outcomes) == 1 and not written.rowcount:
        return []
    return outcomes


def _suppress(session: Session, failures: Iterable[tuple[Job, Outcome]], now: datetime) -> None:
    """A permanent refusal puts the address on the clinic's list; later sends respect it."""
    suppression.add(
        session,
        [
            suppression.Entry(
                job.clinic.id, job.to, f"hard bounce: {outcome.error}", SuppressionSource.BOUNCE
            )
            for job, outcome in failures
        ],
        now,
    )


def send_due(scope: SessionScope, settings: Settings, transport: Transport) -> dict[str, int]:
    """Claim and send everything due now in this process, batch after batch (no Celery).

    Clinics whose transport is paused (an open circuit) are left out, and so, for the rest of
    this run, are those whose server failed a whole batch: everything else still goes.
    dispatch.paused_backlog says afterwards what stayed behind and why."""
    lease = timedelta(seconds=settings.lease_seconds)
    totals = {"recovered": 0, "sent": 0, "deferred": 0, "failed": 0, "cancelled": 0, "skipped": 0}
    replay_journals(scope, settings)
    with scope() as session:
        totals["recovered"] = recover_expired(session)
    failing: set[int] = set()  # clinics whose transport failed a batch in this run
    while True:
        with scope() as session:
            clinics = [
                c for c in sendable(session, due_clinics(session), utcnow()) if c not in failing
            ]
            claim = claim_fair(session, clinics, limit=settings.batch_size, lease=lease)
        if claim is None:
            return totals
        result = send_batch(scope, claim.token, claim.message_ids, transport, settings)
        for name in ("sent", "deferred", "failed", "cancelled", "skipped"):
            totals[name] += getattr(result, name)
        failed = [pk for pk, key in result.keys.items() if key in result.transport_failures]
        if failed:
            with scope() as session:
                failing |= set(
                    session.scalars(
                        select(Message.clinic_id).where(Message.id.in_(failed)).distinct()
                    )
                )
