"""Purge throughput on PostgreSQL: N finished messages (and one delivery attempt each) deleted
by `retention.purge`, a batch per transaction.

    .venv/bin/python bench/purge.py [--messages 200000] [--batch-size 1000] [--following 0.1]

Uses its own database `dripcare_bench_purge` (dropped and migrated on every run). Seeds one
clinic through `create_clinic`, then patients, enrollments, messages and delivery attempts
with `generate_series` (not timed): every message `sent` 500 days ago, except that a fraction
of the enrollments (`--following`) keep one email `scheduled`, so none of theirs may go.
Prints the dry run's time, the purge's time, rows per second, and the slowest transaction:
how long a batch holds its locks.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

PG = "postgresql+psycopg://postgres@127.0.0.1:5432"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--messages", "-n", type=int, default=200_000)
    p.add_argument("--batch-size", "-b", type=int, default=1000)
    p.add_argument("--following", type=float, default=0.1, help="enrollments still sending")
    p.add_argument("--database", default="dripcare_bench_purge")
    return p.parse_args()


def setup(database: str) -> None:
    import sqlalchemy as sa

    admin = sa.create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        conn.execute(sa.text(f"CREATE DATABASE {database}"))
    admin.dispose()
    os.environ["DRIPCARE_DATABASE_URL"] = f"{PG}/{database}"
    from dripcare import db
    from dripcare.migrations import upgrade

    db.reset()
    upgrade()


SEED = """
INSERT INTO patients (clinic_id, email, first_name, last_name, locale, link_epoch, created_at)
SELECT :clinic, 'p' || i || '@example.com', 'Pat', 'Bench', 'en', 0, :then
FROM generate_series(1, :enrollments) AS i;

INSERT INTO enrollments (clinic_id, patient_id, campaign_id, treatment, treated_at, timezone,
                         status, created_at)
SELECT :clinic, p.id, :campaign, 'bench', :then, 'UTC', 'active', :then FROM patients p;

INSERT INTO messages (clinic_id, enrollment_id, step_id, due_at, status, status_reason, attempts,
                      last_error, message_id, created_at, updated_at, sent_at)
SELECT :clinic, e.id, s.id, :then, 'sent', '', 1, '', '<' || e.id || '.' || s.id || '@bench>',
       :then, :then, :then
FROM enrollments e CROSS JOIN (SELECT id FROM steps WHERE campaign_id = :campaign) s;

UPDATE messages SET status = 'scheduled', sent_at = NULL
WHERE id IN (SELECT min(id) FROM messages GROUP BY enrollment_id
             HAVING enrollment_id % :every = 0);

INSERT INTO delivery_attempts (message_pk, at, outcome, smtp_code, detail)
SELECT id, :then, 'sent', 250, '' FROM messages WHERE status = 'sent';
"""


def seed(n: int, following: float) -> tuple[int, int]:
    from sqlalchemy import func, select, text

    from dripcare.db import get_engine, session_scope
    from dripcare.models import Campaign, DeliveryAttempt, Message, Step
    from dripcare.people.clinic_setup import create_clinic

    then = datetime.now(UTC) - timedelta(days=500)
    with session_scope() as session:
        clinic = create_clinic(
            session, name="Bench", sender="care@bench.example", phone="1", timezone="UTC"
        )
        campaign = session.scalars(select(Campaign).where(Campaign.clinic_id == clinic.id)).first()
        assert campaign is not None
        steps = session.scalar(
            select(func.count()).select_from(Step).where(Step.campaign_id == campaign.id)
        )
        params = {
            "clinic": clinic.id,
            "campaign": campaign.id,
            "then": then,
            "enrollments": -(-n // int(steps or 1)),
            "every": max(1, round(1 / following)) if following else 2**31 - 1,
        }
        for statement in SEED.split(";"):
            if statement.strip():
                session.execute(text(statement), params)
    autocommit = get_engine().execution_options(isolation_level="AUTOCOMMIT")
    with autocommit.connect() as conn:  # VACUUM cannot run in a transaction
        conn.exec_driver_sql("VACUUM ANALYZE")
    with session_scope() as session:
        messages = session.scalar(select(func.count()).select_from(Message)) or 0
        attempts = session.scalar(select(func.count()).select_from(DeliveryAttempt)) or 0
    return messages, attempts


class TimedScope:
    """session_scope, timing each transaction: a batch's length is how long it holds locks."""

    def __init__(self) -> None:
        self.durations: list[float] = []

    @contextmanager
    def __call__(self) -> Iterator[object]:
        from dripcare.db import session_scope

        started = time.perf_counter()
        with session_scope() as session:
            yield session
        self.durations.append(time.perf_counter() - started)


def main() -> None:
    args = parse_args()
    setup(args.database)
    seeded = time.perf_counter()
    messages, attempts = seed(args.messages, args.following)
    print(
        f"seeded {messages} messages and {attempts} delivery attempts "
        f"in {time.perf_counter() - seeded:.1f} s (not timed)"
    )
    from dripcare.outbox.retention import purge
    from dripcare.people.audit import SYSTEM

    cutoff = datetime.now(UTC) - timedelta(days=400)
    started = time.perf_counter()
    dry = purge(TimedScope(), cutoff, batch_size=args.batch_size, actor=SYSTEM, dry_run=True)
    print(f"dry run: {dry.counts} in {time.perf_counter() - started:.2f} s")

    scope = TimedScope()
    started = time.perf_counter()
    done = purge(scope, cutoff, batch_size=args.batch_size, actor=SYSTEM)
    elapsed = time.perf_counter() - started
    rows = done.total
    batches = scope.durations[:-1] or scope.durations  # the last one records the audit event
    print(f"purge:   {done.counts} in {elapsed:.2f} s")
    print(
        f"         {done.counts['messages'] / elapsed:,.0f} messages/s, "
        f"{rows / elapsed:,.0f} rows/s, "
        f"{len(scope.durations)} transactions of up to {args.batch_size} rows"
    )
    print(
        f"         per transaction: median {statistics.median(batches) * 1000:.0f} ms, "
        f"max {max(batches) * 1000:.0f} ms"
    )
    kept = messages - done.counts["messages"]
    print(f"kept:    {kept} messages of enrollments still sending (must be > 0 with --following)")


if __name__ == "__main__":
    main()
