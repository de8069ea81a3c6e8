"""The send path's writes on PostgreSQL find their messages through the primary key.

Each email is claimed, started and recorded; a statement that reads the whole messages table
to find its batch costs PostgreSQL time in proportion to the table, for every batch
(bench/README.md, "Issue 11"). SQLite has no such plans to check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from dripcare.db import session_scope
from dripcare.models import MessageStatus
from dripcare.outbox.dispatch import claim_fair
from dripcare.sending import delivery
from tests.factories import make_clinic
from tests.test_dispatch import LEASE, due_messages

# The plans are PostgreSQL's: SQLite keeps `IN (subquery)` and has no such scans to avoid.
pytestmark = pytest.mark.parametrize("database", ["postgresql"], indirect=True)


@contextmanager
def statements(session: Session) -> Iterator[list[tuple[str, Any]]]:
    """The SQL and parameters this session sends while the block runs."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        seen.append((sql, params))

    engine = session.get_bind()
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def plans(session: Session, run: Callable[[], object]) -> list[str]:
    """EXPLAIN of each UPDATE of messages that `run` sends (not executed a second time)."""
    with statements(session) as seen:
        run()
    explained = []
    for sql, params in seen:
        if "UPDATE messages" in sql:
            rows = session.connection().exec_driver_sql("EXPLAIN " + sql, params).scalars()
            explained.append("\n".join(rows))
    return explained


@pytest.fixture
def backlog(database: str) -> tuple[int, set[int]]:
    """2,000 due messages of one clinic, with PostgreSQL's statistics up to date."""
    clinic = make_clinic()
    ids = due_messages(clinic, 2000, datetime.now(UTC) - timedelta(minutes=5))
    with session_scope() as session:
        session.execute(sa.text("ANALYZE messages"))
    return clinic, ids


def test_a_claim_finds_its_rows_through_the_primary_key(backlog: tuple[int, set[int]]) -> None:
    clinic, _ = backlog
    with session_scope() as session:
        explained = plans(session, lambda: claim_fair(session, [clinic], limit=100, lease=LEASE))
    assert explained
    assert all("Seq Scan on messages" not in plan for plan in explained), explained


def test_recording_outcomes_finds_the_rows_through_the_primary_key(
    backlog: tuple[int, set[int]],
) -> None:
    clinic, _ = backlog
    with session_scope() as session:
        claim = claim_fair(session, [clinic], limit=10, lease=LEASE)
    assert claim is not None
    outcomes = [delivery.Outcome(pk, MessageStatus.SENT) for pk in claim.message_ids]
    with session_scope() as session:
        now = datetime.now(UTC)
        explained = plans(
            session, lambda: delivery._finish(session, claim.token, outcomes, [], now)
        )
    assert explained
    assert all("Seq Scan on messages" not in plan for plan in explained), explained
