"""Sending through database faults and lost leases: nothing lost, nothing sent twice.

The outage is real: a session scope that, when told, connects to a port where no server listens
(the OperationalError a stopped PostgreSQL gives), on either database.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Self

import pytest
import sqlalchemy as sa
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dripcare.config import Settings
from dripcare.db import get_engine, session_scope
from dripcare.db_faults import DatabaseUnavailable
from dripcare.models import DeliveryAttempt, Message, MessageStatus
from dripcare.outbox.dispatch import Claim, claim_due, recover_expired
from dripcare.sending import delivery
from dripcare.sending.transports import Transport, transport_from_url
from tests.conftest import free_port
from tests.factories import make_clinic, make_enrollment
from tests.smtp_server import SMTPServer

pytestmark = pytest.mark.usefixtures("daytime")  # conftest: a working morning

LEASE = timedelta(minutes=5)


class FlakyScope:
    """session_scope, except that the calls numbered in `down` meet a stopped server."""

    def __init__(self, down: set[int]) -> None:
        self.down = down
        self.calls = 0
        self.dead = sa.create_engine(f"postgresql+psycopg://u@127.0.0.1:{free_port()}/x")

    def __call__(self) -> AbstractContextManager[Session]:
        self.calls += 1
        return self._scope(self.calls in self.down)

    @contextmanager
    def _scope(self, down: bool) -> Iterator[Session]:
        if down:
            self.dead.connect()  # raises OperationalError: connection refused
        with session_scope() as session:
            yield session


def due(settings: Settings, count: int) -> Claim:
    clinic = make_clinic()
    for i in range(count):
        make_enrollment(
            settings, clinic, datetime.now(UTC) - timedelta(hours=3), email=f"p{i}@example.com"
        )
    with session_scope() as session:
        claim = claim_due(session, limit=count, lease=LEASE)
    assert claim is not None and len(claim.message_ids) == count
    return claim


def rows(claim: Claim) -> list[Message]:
    """The claimed rows (each enrollment also has later steps, not due yet)."""
    with session_scope() as session:
        query = select(Message).where(Message.id.in_(claim.message_ids)).order_by(Message.id)
        return list(session.scalars(query))


def send(
    scope: object, claim: Claim, settings: Settings, transport: Transport
) -> delivery.BatchResult:
    return delivery.send_batch(scope, claim.token, claim.message_ids, transport, settings)  # type: ignore[arg-type]


def test_a_database_outage_holds_the_outcomes_stops_sending_and_sends_nothing_twice(
    settings: Settings,
    smtp_server: SMTPServer,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "result_flush", 1)
    claim = first = due(settings, 5)
    transport = transport_from_url(smtp_server.url)
    # call 1 starts the batch, call 2 records the first email; the database is away for the
    # second email's record and the first retry
    scope = FlakyScope(down={3, 4})
    with caplog.at_level(logging.WARNING):
        result = send(scope, claim, settings, transport)

    assert len(smtp_server.recorder.messages) == 2  # no third email while the database was away
    assert result.sent == 2  # both recorded once it was back
    statuses = [m.status for m in rows(first)]
    assert statuses.count(MessageStatus.SENT) == 2
    waiting = [m for m in rows(first) if m.status == MessageStatus.SCHEDULED]
    assert len(waiting) == 3
    assert all((m.lease_token, m.attempts, m.starts) == (None, 0, 0) for m in waiting)
    said = [r.getMessage() for r in caplog.records if r.name == "dripcare.db_faults"]
    assert said[0] == (
        "database unavailable (database down: connection refused), holding 1 outcomes, "
        "retrying in 0.25 s"
    )
    assert len(said) == 2 and said[1].startswith("database back after")

    with session_scope() as session:
        rest = claim_due(session, limit=10, lease=LEASE)
    assert rest is not None
    assert send(session_scope, rest, settings, transport).sent == 3
    received = smtp_server.recorder.message_ids()
    assert len(received) == len(set(received)) == 5


def test_a_database_blip_at_the_start_is_waited_out(
    settings: Settings, smtp_server: SMTPServer
) -> None:
    claim = due(settings, 2)
    result = send(FlakyScope(down={1, 2}), claim, settings, transport_from_url(smtp_server.url))
    assert result.sent == 2


def test_a_database_that_stays_away_leaves_the_claim_to_lease_recovery(
    settings: Settings, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    claim = due(settings, 2)
    monkeypatch.setattr(settings, "lease_seconds", 1)  # waits a third of it: 0.25 + 0.5 s
    with pytest.raises(DatabaseUnavailable, match="database down"):
        send(
            FlakyScope(down=set(range(1, 99))), claim, settings, transport_from_url(smtp_server.url)
        )
    assert smtp_server.recorder.messages == []


def lease_runs_out(session: Session, limit: int) -> Claim | None:
    """Every lease expires now and is recovered; another worker claims up to `limit` rows."""
    session.execute(update(Message).values(lease_until=datetime.now(UTC)))
    recover_expired(session, now=datetime.now(UTC) + timedelta(seconds=1), grace=timedelta(0))
    return claim_due(
        session, limit=limit, lease=LEASE, now=datetime.now(UTC) + timedelta(seconds=2)
    )


class AtNthSend:
    """A transport that passes everything on to `inner` and counts the sends, for a subclass
    that does something more at the `at`-th one."""

    def __init__(self, inner: Transport, at: int) -> None:
        self.inner, self.at, self.sent = inner, at, 0

    def __enter__(self) -> Self:
        self.inner.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.inner.__exit__(*exc)  # type: ignore[arg-type]


class Thief(AtNthSend):
    """A transport whose n-th send also sees the batch's lease recovered and claimed by another
    worker, as a batch slower than its lease would."""

    claim: Claim | None = None

    def send(self, sender: str, to: str, data: bytes, message_id: str) -> None:
        self.inner.send(sender, to, data, message_id)
        self.sent += 1
        if self.sent == self.at:
            with session_scope() as session:
                self.claim = lease_runs_out(session, limit=10)


def test_a_batch_whose_lease_was_lost_stops_and_counts_only_what_it_recorded(
    settings: Settings, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "result_flush", 1)
    claim = first = due(settings, 6)
    thief = Thief(transport_from_url(smtp_server.url), at=2)
    result = send(session_scope, claim, settings, thief)  # type: ignore[arg-type]

    assert thief.sent == 2  # stopped as soon as a write found the lease gone
    assert result.sent == 1  # the second email's row belongs to the new claim now
    assert thief.claim is not None and len(thief.claim.message_ids) == 5
    unsent = [m for m in rows(first) if m.status != MessageStatus.SENT]
    assert all(m.lease_token == thief.claim.token for m in unsent)


def test_only_answered_tries_count_and_a_message_that_kills_its_worker_fails_at_last(
    settings: Settings, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "max_starts", 3)
    claim = first = due(settings, 1)
    for _ in range(3):  # a worker dies each time after starting it: the lease runs out
        with session_scope() as session:
            assert delivery._start(
                session, claim.token, claim.message_ids, settings, datetime.now(UTC)
            )
            claim = lease_runs_out(session, limit=1)  # type: ignore[assignment]
        assert claim is not None
    (row,) = rows(first)
    assert (row.attempts, row.starts) == (0, 3)  # no try the server answered

    send(session_scope, claim, settings, transport_from_url(smtp_server.url))
    (row,) = rows(first)
    assert row.status == MessageStatus.FAILED
    assert row.status_reason.startswith("started 3 times without an outcome")
    assert smtp_server.recorder.messages == []


def test_an_outcome_clears_the_starts_and_counts_one_attempt(
    settings: Settings, smtp_server: SMTPServer
) -> None:
    claim = first = due(settings, 1)
    with session_scope() as session:
        session.execute(update(Message).values(starts=2))
    send(session_scope, claim, settings, transport_from_url(smtp_server.url))
    (row,) = rows(first)
    assert (row.status, row.attempts, row.starts) == (MessageStatus.SENT, 1, 0)


class KilledAt(AtNthSend):
    """A transport whose process is killed (SIGKILL) as it is about to send the n-th email."""

    def send(self, sender: str, to: str, data: bytes, message_id: str) -> None:
        if self.sent + 1 == self.at:
            os.kill(os.getpid(), signal.SIGKILL)
        self.inner.send(sender, to, data, message_id)
        self.sent += 1


def test_a_killed_worker_process_s_accepted_emails_are_recorded_by_the_next_one(
    settings: Settings, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "result_flush", 100)  # nothing recorded before the kill
    claim = due(settings, 5)
    child = os.fork()
    if child == 0:  # the worker process: sends three, killed before the fourth
        get_engine().dispose(close=False)  # the parent's connections stay the parent's
        transport = KilledAt(transport_from_url(smtp_server.url), at=4)
        send(session_scope, claim, settings, transport)  # type: ignore[arg-type]
        os._exit(0)
    _, status = os.waitpid(child, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert len(smtp_server.recorder.messages) == 3
    assert all(m.status == MessageStatus.SENDING for m in rows(claim))

    # the next process that starts records them, before lease recovery could resend them
    assert delivery.replay_journals(session_scope, settings) == 3
    assert [m.status for m in rows(claim)].count(MessageStatus.SENT) == 3
    assert not list(delivery.journal_dir(settings).glob(f"{child}.journal"))
    with session_scope() as session:
        assert recover_expired(session, now=datetime.now(UTC) + LEASE * 2, grace=timedelta(0)) == 2
        rest = claim_due(session, limit=10, lease=LEASE, now=datetime.now(UTC) + LEASE * 3)
    assert rest is not None and len(rest.message_ids) == 2
    send(session_scope, rest, settings, transport_from_url(smtp_server.url))
    received = smtp_server.recorder.message_ids()
    assert len(received) == len(set(received)) == 5  # none twice


def test_a_flush_records_only_the_rows_still_ours_each_with_its_fields_and_one_attempt(
    settings: Settings,
) -> None:
    """One flush of several outcomes (one statement on PostgreSQL, several on SQLite)."""
    claim = first = due(settings, 3)
    sent_pk, deferred_pk, stolen_pk = claim.message_ids
    with session_scope() as session:  # another worker recovered and re-claimed one row
        session.execute(update(Message).where(Message.id == stolen_pk).values(lease_token="other"))
    now = datetime.now(UTC).replace(microsecond=0)
    retry_at = now + timedelta(minutes=7)
    outcomes = [
        delivery.Outcome(sent_pk, MessageStatus.SENT, version=4),
        delivery.Outcome(
            deferred_pk, MessageStatus.SCHEDULED, "temporary failure", "451 busy", 451, retry_at
        ),
        delivery.Outcome(stolen_pk, MessageStatus.SENT, version=4),
    ]

    with session_scope() as session:
        written = delivery._finish(session, claim.token, outcomes, [], now)

    assert [o.pk for o in written] == [sent_pk, deferred_pk]
    sent, deferred, stolen = rows(first)
    assert (sent.status, sent.sent_at, sent.campaign_version, sent.attempts) == (
        MessageStatus.SENT,
        now,
        4,
        1,
    )
    assert sent.lease_token is None and sent.starts == 0
    assert (deferred.status, deferred.due_at, deferred.last_error, deferred.sent_at) == (
        MessageStatus.SCHEDULED,
        retry_at,
        "451 busy",
        None,
    )
    assert (stolen.status, stolen.lease_token) == (MessageStatus.QUEUED, "other")
    with session_scope() as session:
        attempts = session.execute(
            select(DeliveryAttempt.message_pk, DeliveryAttempt.outcome, DeliveryAttempt.smtp_code)
            .where(DeliveryAttempt.message_pk.in_(claim.message_ids))
            .order_by(DeliveryAttempt.message_pk)
        ).all()
    expected = [(sent_pk, "sent", None), (deferred_pk, "scheduled", 451)]
    assert [tuple(a) for a in attempts] == expected
