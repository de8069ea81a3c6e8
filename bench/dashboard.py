"""The dashboard's queries on PostgreSQL with ~200,000 messages: how long each part takes.

    .venv/bin/python bench/dashboard.py [--messages 200000] [--repeat 15] [--keep-db]

Seeds its own database `dripcare_bench_dash_<pid>` (created, migrated, dropped at the end
unless --keep-db): 5 clinics, the first with half of the rows; 7 messages per enrollment,
treatments spread over the last 150 days, so most emails are sent, some failed, cancelled or
still ahead, and a few are late; check-ins, red flags with their alerts, bounces and
unsubscribes in proportion. Then it times, for one clinic and for all clinics, over 30 and 90
days: `dashboard.activity` (five grouped queries), `dashboard.needs_attention` (three lists
and their counts), and the alternative the module does not use (fetching every `sent_at` in
the window and bucketing in Python), and prints the plans of the sent-per-day query.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
ZONES = ["America/New_York", "Europe/Paris", "Asia/Kolkata", "Australia/Sydney", "UTC"]
CHUNK = 10_000


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--messages", "-n", type=int, default=200_000)
    p.add_argument("--repeat", "-r", type=int, default=15, help="timed runs of each (15)")
    p.add_argument("--keep-db", action="store_true")
    p.add_argument("--database", default=f"dripcare_bench_dash_{os.getpid()}")
    return p.parse_args()


def create_database(name: str) -> str:
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    url = sa.engine.make_url(ADMIN_URL).set(database=name).render_as_string(False)
    os.environ["DRIPCARE_DATABASE_URL"] = url
    from dripcare import db
    from dripcare.migrations import upgrade

    db.reset()
    upgrade()
    return url


def drop_database(name: str) -> None:
    from dripcare import db

    db.reset()
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def seed(messages: int, now: datetime) -> None:
    """Clinics through `create_clinic`; everything else with bulk inserts of explicit ids."""
    from dripcare.db import session_scope
    from dripcare.models import (
        CheckIn,
        ClinicAlert,
        Enrollment,
        Message,
        Patient,
        Step,
        SubscriptionEvent,
        Suppression,
    )
    from dripcare.people.clinic_setup import create_clinic

    rng = random.Random(42)
    with session_scope() as session:
        clinics = [
            create_clinic(
                session,
                name=f"Clinic {i}",
                sender=f"care@c{i}.example",
                phone="+1 555 010 0100",
                timezone=zone,
            )
            for i, zone in enumerate(ZONES, 1)
        ]
        session.flush()
        steps = {
            c.id: session.execute(
                sa.select(Step.id, Step.campaign_id, Step.offset_days)
                .join(Step.campaign)
                .where(Step.campaign.has(clinic_id=c.id), Step.campaign.has(slug="microneedling"))
                .order_by(Step.position)
            ).all()
            for c in clinics
        }
    per_enrollment = len(next(iter(steps.values())))
    enrollments = messages // per_enrollment
    rows: dict[type, list[dict[str, object]]] = {
        Patient: [],
        Enrollment: [],
        Message: [],
        CheckIn: [],
        ClinicAlert: [],
        Suppression: [],
        SubscriptionEvent: [],
    }
    message_pk = check_in_pk = 0
    for pk in range(1, enrollments + 1):
        clinic = clinics[0] if rng.random() < 0.5 else rng.choice(clinics[1:])
        treated = now - timedelta(days=rng.uniform(0, 150))
        email = f"p{pk}@example.com"
        rows[Patient].append(
            {
                "id": pk,
                "clinic_id": clinic.id,
                "email": email,
                "first_name": f"P{pk}",
                "last_name": "Bench",
                "timezone": None,
                "locale": "en",
                "link_epoch": 0,
                "created_at": treated,
            }
        )
        campaign_id = steps[clinic.id][0].campaign_id
        rows[Enrollment].append(
            {
                "id": pk,
                "clinic_id": clinic.id,
                "patient_id": pk,
                "campaign_id": campaign_id,
                "treatment": "microneedling",
                "treated_at": treated,
                "timezone": clinic.timezone,
                "external_id": None,
                "status": "active",
                "created_at": treated,
            }
        )
        bounced = rng.random() < 0.01
        for step in steps[clinic.id]:
            message_pk += 1
            due = treated + timedelta(days=step.offset_days, hours=rng.uniform(0, 12))
            status, sent_at = "scheduled", None
            if due < now - timedelta(minutes=5):
                status = "sent" if rng.random() < 0.96 else rng.choice(["failed", "cancelled"])
                if rng.random() < 0.0005:
                    status = "scheduled"  # late
                sent_at = due + timedelta(seconds=rng.uniform(1, 60)) if status == "sent" else None
            rows[Message].append(
                {
                    "id": message_pk,
                    "clinic_id": clinic.id,
                    "enrollment_id": pk,
                    "step_id": step.id,
                    "due_at": due,
                    "status": status,
                    "status_reason": "",
                    "attempts": 1 if sent_at else 0,
                    "last_error": "",
                    "message_id": f"<{message_pk}@bench.example>",
                    "sent_at": sent_at,
                    "created_at": treated,
                    "updated_at": sent_at or due,
                }
            )
            if sent_at and rng.random() < 0.08:
                check_in_pk += 1
                level = rng.choices(["fine", "expected", "urgent", "emergency"], [80, 15, 4, 1])[0]
                at = sent_at + timedelta(hours=rng.uniform(0, 24))
                rows[CheckIn].append(
                    {
                        "id": check_in_pk,
                        "clinic_id": clinic.id,
                        "enrollment_id": pk,
                        "message_pk": message_pk,
                        "level": level,
                        "answers": [],
                        "created_at": at,
                    }
                )
                if level in ("urgent", "emergency"):
                    delivered = rng.random() < 0.98
                    rows[ClinicAlert].append(
                        {
                            "clinic_id": clinic.id,
                            "check_in_id": check_in_pk,
                            "channel": "email",
                            "status": "delivered" if delivered else "pending",
                            "due_at": at,
                            "attempts": 1,
                            "last_error": "",
                            "delivered_at": at if delivered else None,
                        }
                    )
        if bounced:
            rows[Suppression].append(
                {
                    "clinic_id": clinic.id,
                    "email": email,
                    "reason": "hard bounce: 550 5.1.1",
                    "source": "bounce",
                    "created_at": treated + timedelta(minutes=5),
                }
            )
        elif rng.random() < 0.03:
            rows[SubscriptionEvent].append(
                {
                    "clinic_id": clinic.id,
                    "patient_id": pk,
                    "message_pk": None,
                    "change": "unsubscribed",
                    "source": "one-click",
                    "at": treated + timedelta(days=rng.uniform(1, 10)),
                }
            )
    from dripcare.db import get_engine

    engine = get_engine()
    with engine.begin() as conn:
        for model, batch in rows.items():
            for start in range(0, len(batch), CHUNK):
                conn.execute(sa.insert(model), batch[start : start + CHUNK])
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    print(
        "seeded: " + ", ".join(f"{len(b)} {m.__tablename__}" for m, b in rows.items()),
        f"(clinic 1: {sum(1 for m in rows[Message] if m['clinic_id'] == clinics[0].id)} messages)",
    )


def timed(repeat: int, work: Callable[[], object]) -> str:
    work()  # warm: plans, caches
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        runs.append((time.perf_counter() - start) * 1000)
    return f"median {statistics.median(runs):6.1f} ms, min {min(runs):6.1f} ms"


def python_buckets(scope: object, days: int, now: datetime) -> list[int]:
    """The road not taken: every sent_at in the window to Python, bucketed with zoneinfo."""
    from dripcare.db import session_scope
    from dripcare.models import Message
    from dripcare.outbox.dashboard import Window

    window = Window.ending(now, days, scope.zone)  # type: ignore[attr-defined]
    query = sa.select(Message.sent_at).where(
        Message.sent_at >= window.start, Message.sent_at < window.end
    )
    if scope.clinic_id is not None:  # type: ignore[attr-defined]
        query = query.where(Message.clinic_id == scope.clinic_id)  # type: ignore[attr-defined]
    zone, index = ZoneInfo(scope.zone), {d: i for i, d in enumerate(window.days)}  # type: ignore[attr-defined]
    counts = [0] * days
    with session_scope() as session:
        for (at,) in session.execute(query):
            day = at.astimezone(zone).date()
            if day in index:
                counts[index[day]] += 1
    return counts


def explain(scope: object, days: int, now: datetime) -> None:
    from dripcare.db import get_engine
    from dripcare.models import Message
    from dripcare.outbox.dashboard import Window, quarter_hour

    window = Window.ending(now, days, scope.zone)  # type: ignore[attr-defined]
    bucket = quarter_hour(Message.sent_at)
    query = sa.select(bucket, sa.func.count()).where(
        Message.sent_at >= window.start, Message.sent_at < window.end
    )
    if scope.clinic_id is not None:  # type: ignore[attr-defined]
        query = query.where(Message.clinic_id == scope.clinic_id)  # type: ignore[attr-defined]
    engine = get_engine()
    sql = query.group_by(bucket).compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        plan = conn.execute(sa.text(f"EXPLAIN (ANALYZE, BUFFERS OFF, TIMING OFF) {sql}"))
        for (line,) in plan:
            if any(k in line for k in ("Scan", "Aggregate", "Execution")):
                print("     ", line.strip())


def main() -> None:
    args = parse_args()
    create_database(args.database)
    try:
        from dripcare.db import session_scope
        from dripcare.outbox import dashboard
        from dripcare.outbox.dashboard import Scope

        now = datetime.now(UTC)
        seed(args.messages, now)
        scopes = {"clinic 1": Scope(1, ZONES[0]), "all clinics": Scope(None)}
        for label, scope in scopes.items():
            for days in dashboard.WINDOWS:

                def activity(scope: Scope = scope, days: int = days) -> object:
                    with session_scope() as session:
                        return dashboard.activity(session, scope, days, now)

                def attention(scope: Scope = scope, days: int = days) -> object:
                    with session_scope() as session:
                        since = now - timedelta(days=days)
                        return dashboard.needs_attention(session, scope, since, now)

                found = activity()
                assert found.series["sent"] == python_buckets(scope, days, now)  # type: ignore[attr-defined]
                print(f"{label}, {days} days: {found.totals()}")  # type: ignore[attr-defined]
                print(f"  activity (5 series, SQL quarter hours): {timed(args.repeat, activity)}")
                print(f"  needs attention (3 lists + counts):     {timed(args.repeat, attention)}")
                print(
                    "  sent only, bucketed in Python:          "
                    + timed(args.repeat, lambda s=scope, d=days: python_buckets(s, d, now))
                )
                explain(scope, days, now)
    finally:
        if not args.keep_db:
            drop_database(args.database)


if __name__ == "__main__":
    main()
