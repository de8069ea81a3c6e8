"""How long a /metrics scrape takes on a large outbox in PostgreSQL.

    .venv/bin/python bench/metrics_scrape.py [--messages 1000000] [--clinics 10] [--scrapes 7]

Seeds database `dripcare_bench_metrics` (dropped and migrated on every run; not timed): clinics
through `create_clinic`, then patients, enrollments and N message rows by bulk INSERT … SELECT:
most `sent` (some `failed`, `cancelled`) and due in the last half year, a sixth `scheduled` in
the future, a backlog of 1,000 `scheduled` and 200 `queued` rows due in the last ten minutes,
and 5,000 red-flag check-ins with one alert each (1 % undelivered). Then `VACUUM ANALYZE`.

Prints the whole scrape (`metrics.exposition()`, database and an empty Redis store) as min and
median of --scrapes runs, each query of the collector on its own, and PostgreSQL's plan of each.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import sqlalchemy as sa

SEED = """
INSERT INTO patients (clinic_id, email, first_name, last_name, locale, link_epoch, created_at)
SELECT c.id, 'p' || g || '@c' || c.id || '.example', 'Pat', 'Doe', 'en', 0, now()
FROM clinics c, generate_series(1, :per_clinic) g;

INSERT INTO enrollments (clinic_id, patient_id, campaign_id, treatment, treated_at, timezone,
                         status, created_at)
SELECT p.clinic_id, p.id, k.id, k.treatment,
       now() - interval '200 days' * random() + interval '30 days', 'UTC', 'active', now()
FROM patients p JOIN campaigns k ON k.clinic_id = p.clinic_id;

INSERT INTO messages (clinic_id, enrollment_id, step_id, due_at, status, status_reason, attempts,
                      last_error, message_id, created_at, updated_at)
SELECT e.clinic_id, e.id, s.id, e.treated_at + s.offset_days * interval '1 day',
       'scheduled', '', 0, '', '<' || e.id || '.' || s.id || '@bench.example>', now(), now()
FROM enrollments e JOIN steps s ON s.campaign_id = e.campaign_id
LIMIT :messages;

UPDATE messages SET status = CASE WHEN random() < 0.02 THEN 'failed'
                                  WHEN random() < 0.05 THEN 'cancelled'
                                  ELSE 'sent' END,
                    attempts = 1, sent_at = due_at
WHERE due_at <= now();

UPDATE messages SET status = 'scheduled', due_at = now() - interval '10 minutes' * random()
WHERE id IN (SELECT id FROM messages WHERE status = 'sent' ORDER BY id LIMIT 1000);

UPDATE messages SET status = 'queued', due_at = now() - interval '10 minutes' * random(),
                    lease_until = now() + interval '5 minutes', lease_token = 'bench'
WHERE id IN (SELECT id FROM messages WHERE status = 'sent' ORDER BY id DESC LIMIT 200);

INSERT INTO check_ins (clinic_id, enrollment_id, message_pk, level, answers, created_at)
SELECT m.clinic_id, m.enrollment_id, m.id, 'urgent', '["worse"]',
       m.due_at + interval '1 hour'
FROM messages m WHERE m.status = 'sent' ORDER BY m.id LIMIT 5000;

INSERT INTO clinic_alerts (clinic_id, check_in_id, channel, status, due_at, attempts, last_error,
                           delivered_at)
SELECT clinic_id, id, 'email', CASE WHEN id % 100 = 0 THEN 'pending' ELSE 'delivered' END,
       created_at, 1, '', created_at
FROM check_ins;
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--messages", type=int, default=1_000_000)
    p.add_argument("--clinics", type=int, default=10)
    p.add_argument("--scrapes", type=int, default=7)
    p.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432")
    p.add_argument("--database", default="dripcare_bench_metrics")
    args = p.parse_args()
    url = f"{args.pg}/{args.database}"
    os.environ.update(
        DRIPCARE_DATABASE_URL=url,
        DRIPCARE_SECRET_KEY="bench-secret-" + "x" * 40,
        DRIPCARE_METRICS_REDIS_URL="",
        DRIPCARE_RATELIMIT_URL="",
        DRIPCARE_BROKER_URL="memory://",
    )
    seed(args, url)

    from dripcare import metrics
    from dripcare.db import session_scope
    from dripcare.models import utcnow
    from dripcare.outbox import reporting

    scrapes = timed(metrics.exposition, args.scrapes)
    print(
        f"\nwhole scrape, {args.scrapes} runs: min {min(scrapes):.1f} ms, "
        f"median {statistics.median(scrapes):.1f} ms"
    )
    with session_scope() as session:
        queries: dict[str, Callable[[], object]] = {
            "outbox_counts (by clinic, status)": lambda: reporting.outbox_counts(session),
            "oldest_due_unsent": lambda: reporting.oldest_due_unsent(session, utcnow()),
            "undelivered_alerts": lambda: reporting.undelivered_alerts(session),
        }
        for name, query in queries.items():
            runs = timed(query, args.scrapes)
            print(f"  {name}: min {min(runs):.1f} ms, median {statistics.median(runs):.1f} ms")
    explain()


def seed(args: argparse.Namespace, url: str) -> None:
    admin = sa.create_engine(f"{args.pg}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {args.database} WITH (FORCE)"))
        conn.execute(sa.text(f"CREATE DATABASE {args.database}"))
    admin.dispose()
    from dripcare.db import get_engine, session_scope
    from dripcare.migrations import upgrade
    from dripcare.people.clinic_setup import create_clinic

    start = time.perf_counter()
    upgrade()
    with session_scope() as session:
        for n in range(args.clinics):
            create_clinic(
                session,
                name=f"Clinic {n}",
                sender=f"care@c{n}.example",
                phone="+1 555 010 0100",
                timezone="America/New_York",
            )
    with session_scope() as session:
        steps = session.scalar(sa.text("SELECT count(*) FROM steps")) // args.clinics
    per_clinic = -(-args.messages // (steps * args.clinics))
    with get_engine().begin() as conn:
        for statement in filter(str.strip, SEED.split(";")):
            conn.execute(sa.text(statement), {"per_clinic": per_clinic, "messages": args.messages})
    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
        counts = conn.execute(
            sa.text("SELECT status, count(*) FROM messages GROUP BY status ORDER BY status")
        ).all()
    print(
        f"seeded in {time.perf_counter() - start:.0f} s: "
        + ", ".join(f"{s} {n}" for s, n in counts)
    )


def timed(call: Callable[[], object], runs: int) -> list[float]:
    call()  # warm: connections, plans, caches
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return times


def explain() -> None:
    """PostgreSQL's plan of each statement the collector sends, with real timings."""
    from dripcare.db import get_engine, session_scope
    from dripcare.models import utcnow
    from dripcare.outbox import reporting

    captured: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        captured.append((statement, parameters))

    engine = get_engine()
    sa.event.listen(engine, "before_cursor_execute", capture)
    with session_scope() as session:
        reporting.outbox_counts(session)
        reporting.oldest_due_unsent(session, utcnow())
        reporting.undelivered_alerts(session)
    sa.event.remove(engine, "before_cursor_execute", capture)
    with engine.connect() as conn:
        for statement, parameters in captured:
            print("\n" + " ".join(statement.split()), parameters)
            plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            for (line,) in plan:
                print("   " + line)


if __name__ == "__main__":
    main()
