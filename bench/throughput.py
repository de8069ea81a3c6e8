"""End-to-end throughput benchmark: N due messages in PostgreSQL, delivered by Celery workers.

    .venv/bin/python bench/throughput.py [--messages N] [--workers K] [--batch-size B] ...

One run, in this order (see bench/README.md):
1. setup: database `dripcare_bench` (schema dropped and migrated), Redis db 14 (flushed);
2. seed (not timed): clinics via `create_clinic`, then patients, enrollments and N message rows
   with bulk inserts, all `scheduled` and due in the past;
3. baseline: the same N jobs, loaded up front, rendered and composed with
   `dripcare.sending.delivery.build_email` and sent over ONE `SMTPTransport` connection
   (no database, no queue in the timed loop);
4. pipeline: K `dripcare worker` processes (+ `dripcare beat`, interval 1 s) deliver all N rows;
   timed from the first dispatch until every row is `sent`;
5. checks: the sink received exactly N messages, their Message-IDs are exactly the rows' ones.

Each phase has its own Postfix `smtp-sink` (C, on 127.0.0.1, counting with -c and dumping to
/dev/shm with -D so Message-IDs can be checked). CPU seconds per process group are read from
/proc around each timed phase to show where the two cores went.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
CLK_TCK = os.sysconf("SC_CLK_TCK")
KERNEL_THREADS = ("kworker", "ksoftirqd", "rcu_", "kdamond", "jbd2", "kswapd", "migration")


# ---- arguments and environment


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--messages", "-n", type=int, default=20_000, help="due messages (20000)")
    p.add_argument("--workers", "-k", type=int, default=1, help="`dripcare worker` processes (1)")
    p.add_argument(
        "--concurrency", "-c", type=int, default=2, help="pool size per worker process (2)"
    )
    p.add_argument("--pool", default="prefork", help="celery pool: prefork|solo|threads (prefork)")
    p.add_argument("--prefetch", type=int, default=None, help="--prefetch-multiplier (app: 1)")
    p.add_argument("--batch-size", "-b", type=int, default=100, help="DRIPCARE_BATCH_SIZE (100)")
    p.add_argument("--max-per-tick", type=int, default=5000, help="DRIPCARE_MAX_PER_TICK (5000)")
    p.add_argument(
        "--dispatcher",
        choices=["ticks", "beat", "inline"],
        default="ticks",
        help="what starts the `dripcare.dispatch` task (which re-queues itself while more\n"
        "than max_per_tick is due):\n"
        "ticks: this process sends it at t0 and every --interval, as beat would\n"
        "  (the default: beat's own start-up, ~1 CPU-second, stays out of the timing);\n"
        "beat: sent once at t0, then a `dripcare beat` subprocess started at t0;\n"
        "inline: this process runs dispatch_tick() itself every --interval",
    )
    p.add_argument("--interval", type=float, default=1.0, help="DRIPCARE_DISPATCH_INTERVAL (1)")
    p.add_argument("--result-flush", type=int, help="DRIPCARE_RESULT_FLUSH (outcomes per commit)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for every process, e.g. --set DRIPCARE_LEASE_SECONDS=600",
    )
    p.add_argument("--clinics", type=int, default=3, help="clinics to spread the patients over")
    p.add_argument("--skip-baseline", action="store_true")
    p.add_argument("--skip-pipeline", action="store_true")
    p.add_argument(
        "--verify",
        choices=["ids", "count"],
        default="ids",
        help="ids: the sink also dumps every message (to /dev/shm) and the Message-IDs are\n"
        "compared with the rows (costs the sink ~65 us CPU per message);\n"
        "count: the sink only counts (-c); with every row `sent` once that still proves\n"
        "no duplicate and no loss",
    )
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=120,
        help="before each timed phase, wait up to this many seconds for other processes\n"
        "on the machine to use < 15%% of it (0: do not wait)",
    )
    p.add_argument(
        "--py-spy",
        metavar="DIR",
        help="record each worker pool process with py-spy during the pipeline (slows it)",
    )
    p.add_argument("--profile-baseline", metavar="FILE", help="cProfile the baseline loop to FILE")
    p.add_argument(
        "--pin",
        action="store_true",
        help="pin worker i (main and pool) to core i mod cores with taskset, so each worker\n"
        "is held to one core as on a host of its own",
    )
    p.add_argument(
        "--kill-worker-at",
        type=float,
        metavar="FRACTION",
        help="SIGKILL the last worker's process group once this fraction of the rows is sent;\n"
        "the others must recover its leased rows (set a short DRIPCARE_LEASE_SECONDS).\n"
        "The checks then require nothing lost and count the duplicates",
    )
    p.add_argument("--timeout", type=float, default=600, help="give up after this many seconds")
    p.add_argument("--database", default="dripcare_bench")
    p.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    p.add_argument("--keep-logs", action="store_true", help="keep the run directory")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    p.add_argument(
        "--worker-arg",
        action="append",
        default=[],
        help="extra argument for `celery worker` (repeatable), e.g. --worker-arg=--without-gossip",
    )
    return p.parse_args(argv)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_env(args: argparse.Namespace, smtp_port: int) -> dict[str, str]:
    """The settings shared by this process and every subprocess."""
    return {
        "DRIPCARE_ENV": "development",
        "DRIPCARE_SECRET_KEY": "bench-secret-" + "x" * 40,
        "DRIPCARE_DATABASE_URL": f"{args.pg}/{args.database}",
        "DRIPCARE_BROKER_URL": args.redis,
        "DRIPCARE_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        "DRIPCARE_BASE_URL": "https://care.example-clinic.com",
        "DRIPCARE_BATCH_SIZE": str(args.batch_size),
        "DRIPCARE_MAX_PER_TICK": str(args.max_per_tick),
        "DRIPCARE_DISPATCH_INTERVAL": str(args.interval),
        # No quiet hours: the run measures throughput at whatever hour it starts. The send-time
        # rules are still evaluated for every message (send_rules.hold), so their cost counts.
        "DRIPCARE_QUIET_HOURS": "00:00-00:00",
        **({"DRIPCARE_RESULT_FLUSH": str(args.result_flush)} if args.result_flush else {}),
        **dict(item.split("=", 1) for item in args.set),
    }


# ---- the SMTP sink


class Sink:
    """Postfix smtp-sink on 127.0.0.1:port. `-c` prints `mesg=N` each time a "." is received;
    `-D` appends every message to one dump file (on /dev/shm) for the Message-ID check."""

    def __init__(self, name: str, rundir: Path, dump: bool) -> None:
        self.name, self.port = name, free_port()
        self.out = rundir / f"sink-{name}.out"
        self.dumpdir = Path(tempfile.mkdtemp(prefix=f"dripcare-bench-{name}-", dir="/dev/shm"))
        os.chmod(self.dumpdir, 0o777)  # smtp-sink drops to `nobody` before writing
        self.dump = self.dumpdir / "dump" if dump else None
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if not os.access(SMTP_SINK, os.X_OK):
            raise SystemExit(f"{SMTP_SINK} not found: apt-get install -y postfix")
        cmd = [SMTP_SINK, "-c"]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]
        if self.dump:
            cmd += ["-D", str(self.dump)]
        cmd += [f"127.0.0.1:{self.port}", "1000"]
        with open(self.out, "wb") as out:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 10
        while True:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 1),
            ):
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"smtp-sink did not start: {self.out.read_text()}")
            time.sleep(0.05)

    def count(self) -> int:
        """Messages received so far (the last `mesg=` counter)."""
        found = re.findall(rb"mesg=(\d+)", self.out.read_bytes()[-4096:])
        return int(found[-1]) if found else 0

    def wait_stable(self, expected: int, timeout: float = 10.0, quiet: float = 1.0) -> int:
        """Wait until the count reaches `expected`, then `quiet` seconds more with no change
        (a late duplicate would show up there)."""
        deadline = time.monotonic() + timeout
        while self.count() < expected and time.monotonic() < deadline:
            time.sleep(0.05)
        last = self.count()
        time.sleep(quiet)
        while self.count() != last and time.monotonic() < deadline:
            last = self.count()
            time.sleep(quiet)
        return self.count()

    def message_ids(self) -> list[str] | None:
        if not self.dump or not self.dump.exists():
            return None
        data = self.dump.read_bytes()
        return [m.decode() for m in re.findall(rb"^Message-ID:\s*(<[^>\r\n]+>)", data, re.M)]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        shutil.rmtree(self.dumpdir, ignore_errors=True)


# ---- CPU accounting from /proc


def cpu_snapshot() -> dict[int, tuple[str, int, float]]:
    """pid -> (comm, process group, CPU seconds) for every process we can read."""
    snap = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        rest = raw[raw.rindex(")") + 2 :].split()
        # fields after comm: state(0) ppid(1) pgrp(2) ... utime(11) stime(12)
        snap[int(entry.name)] = (comm, int(rest[2]), (int(rest[11]) + int(rest[12])) / CLK_TCK)
    return snap


def cpu_by_group(
    before: dict[int, tuple[str, int, float]],
    after: dict[int, tuple[str, int, float]],
    groups: dict[int, str],
    database: str | None = None,
) -> dict[str, float]:
    """CPU seconds spent between the snapshots, by role (processes alive at the end). With a
    database, PostgreSQL backends serving another database (other engineers' tests on a shared
    machine) count as `other:postgres`, not as ours; background processes stay ours."""
    me = os.getpid()
    totals: dict[str, float] = collections.defaultdict(float)
    for pid, (comm, pgrp, cpu) in after.items():
        prev = before.get(pid)
        spent = cpu - (prev[2] if prev and prev[0] == comm else 0.0)
        if spent <= 0:
            continue
        if pid == me:
            role = "bench process"
        elif pgrp in groups:
            role = groups[pgrp]
        elif comm.startswith("postgres"):
            role = "other:postgres" if foreign_backend(pid, database) else "postgresql"
        elif comm.startswith("redis"):
            role = "redis"
        elif comm == "smtp-sink":
            role = "other:smtp-sink" if database else "smtp-sink"  # ours is in `groups`
        elif comm.startswith(KERNEL_THREADS):
            role = "kernel threads"  # mostly writeback of PostgreSQL's WAL: ours
        else:
            role = f"other:{comm}"
        totals[role] += spent
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def foreign_backend(pid: int, database: str | None) -> bool:
    """A client backend ("postgres: 15/main: user db 127.0.0.1(port) state") of another db."""
    if database is None:
        return False
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    is_backend = "(" in title or "[local]" in title
    return is_backend and f" {database} " not in title


def format_cpu(totals: dict[str, float], elapsed: float) -> str:
    cores = os.cpu_count() or 1
    used = sum(totals.values())
    parts = ", ".join(f"{k} {v:.1f}" for k, v in totals.items() if v >= 0.05)
    line = (
        f"  CPU seconds: {parts} | total {used:.1f} of {elapsed * cores:.1f} available "
        f"({cores} cores x {elapsed:.1f} s, {100 * used / (elapsed * cores):.0f}% busy)"
    )
    other = sum(v for k, v in totals.items() if k.startswith("other:"))
    if other > 0.1 * elapsed * cores:
        line += (
            f"\n  WARNING: processes outside the benchmark used {other:.1f} CPU seconds "
            f"({100 * other / (elapsed * cores):.0f}% of the machine); figures are depressed"
        )
    return line


def wait_quiet(limit: float, mine: dict[int, str] | None = None) -> None:
    """Other engineers' test runs share this machine: wait until they leave it alone."""
    if limit <= 0:
        return
    cores = os.cpu_count() or 1
    deadline = time.monotonic() + limit
    said = False
    while True:
        before = cpu_snapshot()
        time.sleep(1.0)
        totals = cpu_by_group(before, cpu_snapshot(), mine or {})
        other = {k: v for k, v in totals.items() if k.startswith("other:")}
        busy = sum(other.values()) / cores
        if busy < 0.15:
            if said:
                print("  machine is quiet now")
            return
        if time.monotonic() > deadline:
            print(
                f"  WARNING: still busy after {limit:.0f} s ({100 * busy:.0f}% used by "
                f"{', '.join(k[6:] for k in other)}); measuring anyway"
            )
            return
        if not said:
            top = ", ".join(f"{k[6:]} {v:.1f}" for k, v in list(other.items())[:3])
            print(f"  waiting for the machine to be quiet ({100 * busy:.0f}% used by: {top})")
            said = True


# ---- database setup and seeding


def setup_database(args: argparse.Namespace) -> None:
    import sqlalchemy as sa

    admin = sa.create_engine(f"{args.pg}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.scalar(
            sa.text("select 1 from pg_database where datname = :d"), {"d": args.database}
        )
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{args.database}"'))
    admin.dispose()
    from dripcare import db
    from dripcare.migrations import upgrade

    engine = db.get_engine()
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    db.reset()
    upgrade()
    db.reset()


def commit_latency(samples: int = 30) -> float:
    """Median wall time of a one-row INSERT + COMMIT (the WAL fsync): the disk is shared with
    whatever else runs on the machine, and every batch of the pipeline waits on it."""
    import statistics

    from sqlalchemy import text

    from dripcare.db import get_engine

    times = []
    with get_engine().connect() as conn:
        conn.execute(text("create table if not exists bench_commit_probe (x int)"))
        conn.commit()
        for _ in range(samples):
            started = time.perf_counter()
            conn.execute(text("insert into bench_commit_probe values (1)"))
            conn.commit()
            times.append(time.perf_counter() - started)
        conn.execute(text("drop table bench_commit_probe"))
        conn.commit()
    return statistics.median(times)


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


FIRST = str.split(
    "Olivia Liam Emma Noah Amelia Oliver Sophia Elijah Charlotte James Mia Lucas Harper Mateo "
    "Evelyn Henry Aisha Mohammed Priya Arjun Yuki Haruto Chloé Léa Søren Zoë José Ana María "
    "Seán Niamh Björn Ingrid Fatima Omar Mei Wei Sakura Ren Isabella Daniel Grace Samuel"
)
LAST = str.split(
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Wilson Anderson Thomas Taylor Moore Jackson Martin Lee O'Brien Nguyen Kim Patel Singh Müller "
    "Schmidt Rossi Dubois Novak Kowalski Andersen Tanaka Suzuki Chen Wang Okafor Mensah Costa"
)
ZONES = [
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Europe/London",
    "Europe/Berlin",
    "Australia/Sydney",
    "Asia/Tokyo",
    None,  # falls back to the clinic's zone
]
CLINICS = [
    (
        "Riverside Skin Clinic",
        "care@riverside-skin.example.com",
        "+1 555 010 0100",
        "America/New_York",
    ),
    ("Harbour Dermatology", "hello@harbourderm.example.co.uk", "+44 20 7946 0100", "Europe/London"),
    ("Klinik am Park", "team@klinik-am-park.example.de", "+49 30 901820", "Europe/Berlin"),
    (
        "Sunset Aesthetics",
        "aftercare@sunset-aesthetics.example.com",
        "+1 310 555 0142",
        "America/Los_Angeles",
    ),
    ("Bondi Skin Studio", "care@bondiskin.example.com.au", "+61 2 9000 0100", "Australia/Sydney"),
]


@dataclass
class Seeded:
    messages: int
    clinics: int
    patients: int
    steps: int
    seconds: float
    message_ids: set[str] = field(repr=False, default_factory=set)


def seed(n: int, clinic_count: int, clinic_of: Callable[[int], int] | None = None) -> Seeded:
    """Clinics through the product code; patients, enrollments and messages in bulk.

    Row i goes to clinic `clinic_of(i)` (an index into the clinics), round robin by default
    (bench/lateness.py gives one clinic a burst)."""
    from sqlalchemy import insert, select, text

    from dripcare.db import get_engine, session_scope
    from dripcare.models import Campaign, Enrollment, Message, Patient
    from dripcare.people.clinic_setup import create_clinic

    rng = random.Random(20261125)
    started = time.perf_counter()
    now = datetime.now(UTC)
    clinic_zone: dict[int, str] = {}
    with session_scope() as session:
        clinics = []
        for name, sender, phone, zone in CLINICS[: max(1, min(clinic_count, len(CLINICS)))]:
            clinic = create_clinic(session, name=name, sender=sender, phone=phone, timezone=zone)
            campaign = session.scalar(
                select(Campaign).where(
                    Campaign.clinic_id == clinic.id, Campaign.slug == "microneedling"
                )
            )
            steps = [s for s in campaign.steps if s.active]
            clinics.append((clinic.id, clinic.sender_email, campaign, steps))
            clinic_zone[clinic.id] = zone
    steps_per = len(clinics[0][3])
    # One message per enrollment, treated one step offset (and up to an hour) ago, so every
    # row is due now by the campaign's own timing and inside its send_until window: a row due
    # now for a treatment weeks old would rightly be skipped as too late at send time.
    enrollments_needed = n

    patients = []
    for i in range(enrollments_needed):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        local = re.sub(r"[^a-z]", "", f"{first}.{last}".lower().encode("ascii", "ignore").decode())
        domain = rng.choice(["gmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me"])
        patients.append(
            {
                "clinic_id": clinics[clinic_of(i) if clinic_of else i % len(clinics)][0],
                "email": f"{local}.{i}@{domain}",
                "first_name": first,
                "last_name": last,
                "timezone": rng.choice(ZONES),
                "locale": "en",
                "created_at": now,
            }
        )
    with session_scope() as session:
        # Plain executemany, ids read back by key: RETURNING with sort_by_parameter_order
        # fell back to a round trip per row here (~75 rows/s on a loaded machine).
        session.execute(insert(Patient), patients)
        by_email = dict(session.execute(select(Patient.email, Patient.id)).tuples().all())
        patient_ids = [by_email[p["email"]] for p in patients]
        enrollments = []
        picked = []
        for i, (pid, patient) in enumerate(zip(patient_ids, patients, strict=True)):
            campaign, steps = next((c[2], c[3]) for c in clinics if c[0] == patient["clinic_id"])
            step = steps[i // len(clinics) % len(steps)]
            offset = timedelta(
                days=step.offset_days, hours=step.offset_hours, minutes=step.offset_minutes
            )
            picked.append(step)
            enrollments.append(
                {
                    "clinic_id": patient["clinic_id"],
                    "patient_id": pid,
                    "campaign_id": campaign.id,
                    "treatment": campaign.treatment,
                    "treated_at": now - offset - timedelta(seconds=rng.uniform(60, 3600)),
                    "timezone": patient["timezone"] or clinic_zone[patient["clinic_id"]],
                    "external_id": f"emr-{uuid.UUID(int=rng.getrandbits(128)).hex[:12]}",
                    "status": "active",
                    "created_at": now,
                }
            )
        session.execute(insert(Enrollment), enrollments)
        by_patient = dict(
            session.execute(select(Enrollment.patient_id, Enrollment.id)).tuples().all()
        )
        enrollment_ids = [by_patient[e["patient_id"]] for e in enrollments]
        rows = []
        for eid, enrollment, step in zip(enrollment_ids, enrollments, picked, strict=True):
            sender = next(c[1] for c in clinics if c[0] == enrollment["clinic_id"])
            domain = sender.rpartition("@")[2]
            due = now - timedelta(seconds=rng.uniform(60, 3600))
            rows.append(
                {
                    "clinic_id": enrollment["clinic_id"],
                    "enrollment_id": eid,
                    "step_id": step.id,
                    "due_at": due,
                    "status": "scheduled",
                    "status_reason": "",
                    "attempts": 0,
                    "last_error": "",
                    "message_id": f"<{uuid.UUID(int=rng.getrandbits(128)).hex}@{domain}>",
                    "lease_token": None,
                    "lease_until": None,
                    "campaign_version": None,
                    "sent_at": None,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        session.connection().execute(insert(Message.__table__), rows)
    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    return Seeded(
        messages=len(rows),
        clinics=len(clinics),
        patients=len(patients),
        steps=steps_per,
        seconds=time.perf_counter() - started,
        message_ids={r["message_id"] for r in rows},
    )


# ---- baseline: render + compose + send, one connection, no DB or queue


def load_jobs() -> list:
    """Every scheduled message as the `Job` the send path builds (with the send path's own
    `message_view.load_jobs`), in due order, detached from the session."""
    from sqlalchemy import select

    from dripcare.db import session_scope
    from dripcare.models import Message, MessageStatus
    from dripcare.sending import message_view

    with session_scope() as session:
        due = select(Message.id).where(Message.status == MessageStatus.SCHEDULED)
        pks = list(session.scalars(due.order_by(Message.due_at)))
        by_pk = {job.pk: job for job in message_view.load_jobs(session, pks)}
        jobs = [by_pk[pk] for pk in pks]  # load_jobs compiles the templates in the session
    return jobs


def run_baseline(jobs: list, port: int, profile: str | None) -> float:
    from dripcare.config import get_settings
    from dripcare.models import utcnow
    from dripcare.sending.delivery import build_email
    from dripcare.sending.transports import SMTPTransport

    settings = get_settings()
    transport = SMTPTransport("127.0.0.1", port, timeout=settings.smtp_timeout)

    def loop() -> None:
        with transport:
            for job in jobs:
                data = build_email(job, settings, utcnow())
                transport.send(job.clinic.sender_email, job.to, data, job.message_id)

    if profile:
        import cProfile

        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.runcall(loop)
        elapsed = time.perf_counter() - started
        profiler.dump_stats(profile)
        return elapsed
    started = time.perf_counter()
    loop()
    return time.perf_counter() - started


# ---- pipeline: celery workers + dispatcher


class Procs:
    """Subprocesses, each in its own process group; stopped warm first, then killed."""

    def __init__(self, rundir: Path, env: dict[str, str]) -> None:
        self.rundir, self.env = rundir, env
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(
        self, name: str, cmd: list[str], home: Path | None = None, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        with open(self.rundir / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(
                cmd,
                cwd=home or self.rundir,
                env={**self.env, **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append((name, proc))
        return proc

    def groups(self) -> dict[int, str]:
        return {proc.pid: name.rstrip("0123456789") for name, proc in self.procs}

    def named_groups(self) -> dict[int, str]:
        """Process group -> its own name (worker0, worker1, ...), to see each one's share."""
        return {proc.pid: name for name, proc in self.procs}

    def kill(self, name: str) -> None:
        """SIGKILL a process and its pool at once, as a host losing power would; forgotten
        afterwards, so check_alive() does not count it as a failure."""
        proc = dict(self.procs)[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        self.procs = [(n, p) for n, p in self.procs if n != name]

    def check_alive(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.rundir / f"{name}.log"
        return (
            "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            if path.exists()
            else ""
        )

    def stop(self, name_prefix: str = "") -> None:
        chosen = [(n, p) for n, p in self.procs if n.startswith(name_prefix)]
        for _, proc in chosen:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _, proc in chosen:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                # still running, so the group is still ours: kill it with its pool children
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs = [(n, p) for n, p in self.procs if (n, p) not in chosen]


def wait_for_workers(app, count: int, procs: Procs, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs.check_alive()
        replies = app.control.ping(timeout=0.5)
        if len(replies) >= count:
            return
        time.sleep(0.2)
    raise RuntimeError(f"only {len(replies)} of {count} workers answered a ping")


def status_counts() -> dict[str, int]:
    from sqlalchemy import text

    from dripcare.db import get_engine

    with get_engine().connect() as conn:
        return dict(
            conn.execute(text("select status, count(*) from messages group by status")).all()
        )


def run_pipeline(
    args: argparse.Namespace, n: int, env: dict[str, str], rundir: Path, sink: Sink
) -> dict:
    from sqlalchemy import text

    from dripcare.celery_app import DISPATCH_QUEUE, app
    from dripcare.db import get_engine

    procs = Procs(rundir, env)
    spies: list[subprocess.Popen[bytes]] = []
    try:
        for i in range(args.workers):
            start_worker(args, procs, i)
        wait_for_workers(app, args.workers, procs)
        time.sleep(0.5)  # let the pools finish forking
        assert sink.proc is not None
        ours = {sink.proc.pid: "smtp-sink"}  # other engineers run smtp-sinks too
        groups = {**procs.groups(), **ours}
        named = {**procs.named_groups(), **ours}
        killed: str | None = None
        wait_quiet(args.wait_quiet, groups)
        print(f"  PostgreSQL commit latency before the pipeline: {1000 * commit_latency():.1f} ms")
        spies = start_py_spy(args.py_spy, procs) if args.py_spy else []
        cpu_before = cpu_snapshot()
        started = time.perf_counter()
        expires = args.interval * 3  # as the beat schedule in celery_app sends it
        if args.dispatcher in ("ticks", "beat"):
            app.send_task("dripcare.dispatch", queue=DISPATCH_QUEUE, expires=expires)
        if args.dispatcher == "beat":
            procs.start("beat", [str(VENV_BIN / "dripcare"), "beat"])
            groups = {**procs.groups(), **ours}
        # Rows still to send, counted on the two small partial indexes (index-only scans), so
        # polling costs PostgreSQL ~1 ms instead of a scan of the whole table.
        unsent_sql = text(
            "select (select count(*) from messages where status = 'scheduled')"
            " + (select count(*) from messages where status in ('queued', 'sending'))"
        )
        engine = get_engine()
        next_tick = started + (0 if args.dispatcher == "inline" else args.interval)
        last_progress, last_unsent = started, -1
        kill_below = n * (1 - args.kill_worker_at) if args.kill_worker_at is not None else -1.0
        with engine.connect() as conn:
            while True:
                now = time.perf_counter()
                if now >= next_tick and args.dispatcher != "beat":
                    if args.dispatcher == "inline":
                        inline_dispatch()
                    else:
                        app.send_task("dripcare.dispatch", queue=DISPATCH_QUEUE, expires=expires)
                    next_tick += args.interval
                unsent = conn.execute(unsent_sql).scalar_one()
                conn.commit()
                if unsent == 0:
                    break  # every row is final; check_rows() then requires all of them `sent`
                if killed is None and unsent <= kill_below and args.workers > 1:
                    killed = f"worker{args.workers - 1}"
                    procs.kill(killed)
                    print(f"  killed {killed} (SIGKILL to its group) with {unsent} rows unsent")
                if unsent != last_unsent:
                    last_progress, last_unsent = now, unsent
                if now - last_progress > 60 or now - started > args.timeout:
                    procs.check_alive()
                    raise RuntimeError(f"no progress: {status_counts()}")
                time.sleep(0.1)
        elapsed = time.perf_counter() - started
        cpu_after = cpu_snapshot()
        with engine.connect() as conn:
            last_sent_at = conn.execute(text("select max(sent_at) from messages")).scalar_one()
        procs.check_alive()
        return {
            "seconds": elapsed,
            "cpu": cpu_by_group(cpu_before, cpu_after, groups, args.database),
            "cpu_by_worker": {
                k: v
                for k, v in cpu_by_group(cpu_before, cpu_after, named).items()
                if k.startswith("worker")
            },
            "killed": killed,
            "last_sent_at": last_sent_at,
            "tasks": task_stats(rundir),
        }
    except BaseException:
        for name, _ in procs.procs:
            print(f"---- {name}.log (tail) ----\n{procs.tail(name)}", file=sys.stderr)
        raise
    finally:
        procs.stop("beat")
        procs.stop()
        for spy in spies:
            try:
                spy.wait(30)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()


def start_worker(args: argparse.Namespace, procs: Procs, i: int) -> None:
    """Worker i as if on a host of its own: its own process group and pool (Procs.start), its
    own node name `bench{i}@host{i}`, its own working and state directory (send journal,
    renderer files), and with --pin its own core."""
    home = procs.rundir / f"host{i}"
    home.mkdir(exist_ok=True)
    cmd = [str(VENV_BIN / "dripcare"), "worker", "-c", str(args.concurrency)]
    cmd += ["-n", f"bench{i}@host{i}", f"--pool={args.pool}"]
    if args.prefetch is not None:
        cmd.append(f"--prefetch-multiplier={args.prefetch}")
    cmd += args.worker_arg
    if args.pin:
        cmd = ["taskset", "-c", str(i % (os.cpu_count() or 1)), *cmd]
    procs.start(f"worker{i}", cmd, home, {"DRIPCARE_STATE_DIR": str(home / "var")})


def task_stats(rundir: Path) -> dict[str, tuple[int, float]]:
    """Per task name: how many ran and their mean run time, from the workers' INFO logs."""
    found: dict[str, list[float]] = collections.defaultdict(list)
    pattern = re.compile(r"Task (dripcare\.\w+)\[[^\]]+\] succeeded in ([0-9.]+)s")
    for log in rundir.glob("worker*.log"):
        for name, seconds in pattern.findall(log.read_text(errors="replace")):
            found[name].append(float(seconds))
    return {name: (len(times), sum(times) / len(times)) for name, times in found.items()}


def start_py_spy(directory: str, procs: Procs) -> list[subprocess.Popen[bytes]]:
    """One `py-spy record` per worker process (main + pool children), until they exit."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    spy = shutil.which("py-spy", path=str(VENV_BIN)) or "py-spy"
    spies = []
    for name, proc in procs.procs:
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        for pid in [proc.pid, *map(int, children)]:
            for fmt, ext in (("raw", "txt"), ("speedscope", "json")):
                spies.append(
                    subprocess.Popen(
                        [
                            spy,
                            "record",
                            "--nonblocking",
                            "-r",
                            "200",
                            "-f",
                            fmt,
                            "-o",
                            str(out / f"{name}-{pid}.{ext}"),
                            "-p",
                            str(pid),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
    time.sleep(1.0)
    return spies


def inline_dispatch() -> None:
    from dripcare.config import get_settings
    from dripcare.db import session_scope
    from dripcare.outbox.dispatch import dispatch_tick
    from dripcare.tasks import send_batch

    settings = get_settings()
    dispatch_tick(
        session_scope,
        lambda claim: send_batch.delay(claim.token, claim.message_ids),
        batch_size=settings.batch_size,
        max_per_tick=settings.max_per_tick,
        lease=timedelta(seconds=settings.lease_seconds),
    )


# ---- checks and output


def check_sink(
    sink: Sink, expected_ids: set[str], label: str, after_kill: bool = False
) -> list[str]:
    """Exactly N received, each Message-ID once, and exactly the seeded ones. After a worker
    was killed (--kill-worker-at) what it had sent but not recorded goes again with the same
    Message-ID: duplicates are then counted, not failed; a missing one still fails."""
    problems = []
    received = sink.wait_stable(len(expected_ids))
    if received < len(expected_ids) or (received > len(expected_ids) and not after_kill):
        problems.append(f"{label}: sink counted {received} messages, expected {len(expected_ids)}")
    ids = sink.message_ids()
    if ids is not None:
        counts = collections.Counter(ids)
        dups = {k: v for k, v in counts.items() if v > 1}
        missing = expected_ids - counts.keys()
        extra = counts.keys() - expected_ids
        if dups and after_kill:
            print(f"  sink ({label}): {len(dups)} Message-IDs received twice after the kill")
        elif dups:
            problems.append(f"{label}: {len(dups)} Message-IDs received more than once")
        if missing:
            problems.append(f"{label}: {len(missing)} messages never reached the sink")
        if extra:
            problems.append(f"{label}: {len(extra)} unexpected Message-IDs")
        if len(ids) != received:
            problems.append(f"{label}: dump holds {len(ids)} messages, counter says {received}")
    verified = "count + Message-IDs" if ids is not None else "count only"
    print(
        f"  sink ({label}): received {received} messages, {len(expected_ids)} expected "
        f"[{verified}] -> {'OK' if not problems else 'MISMATCH'}"
    )
    return problems


def check_rows(n: int, after_kill: bool = False) -> list[str]:
    """Every row sent, after exactly one attempt, with one `sent` attempt logged (after a kill:
    every row sent, each logged as sent at least once)."""
    from sqlalchemy import inspect, text

    from dripcare.db import get_engine

    with get_engine().connect() as conn:
        sent, once = conn.execute(
            text(
                "select count(*) filter (where status = 'sent'), "
                "count(*) filter (where attempts = 1) from messages"
            )
        ).one()
        # message_pk since migration b1c2d3e4f5a6; older trees (--compare baselines) say message_id
        columns = {c["name"] for c in inspect(conn).get_columns("delivery_attempts")}
        key = "message_pk" if "message_pk" in columns else "message_id"
        logged = conn.execute(
            text(
                f"select count(*), count(distinct {key}) from delivery_attempts "
                "where outcome = 'sent'"
            )
        ).one()
    problems = []
    if sent != n:
        problems.append(f"pipeline: {sent} rows sent, expected {n}")
    if once != n and not after_kill:
        problems.append(f"pipeline: {n - once} rows took more than one attempt")
    if logged[1] != n or (logged[0] != n and not after_kill):
        problems.append(
            f"pipeline: delivery_attempts has {logged[0]} sent rows "
            f"for {logged[1]} messages, expected {n}"
        )
    print(
        f"  rows: {sent} sent, {once} after exactly one attempt, {logged[0]} 'sent' attempts "
        f"logged -> {'OK' if not problems else 'MISMATCH'}"
    )
    return problems


def describe_code() -> str:
    """Which dripcare is measured (PYTHONPATH can point at a patched copy) and its settings."""
    import dripcare
    from dripcare.config import get_settings

    where = Path(dripcare.__file__).resolve().parent
    rev = subprocess.run(
        ["git", "-C", str(where), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    settings = get_settings()
    tunables = ("batch_size", "max_per_tick", "result_flush", "lease_seconds", "dispatch_interval")
    values = " ".join(f"{k}={getattr(settings, k)}" for k in tunables if hasattr(settings, k))
    return f"code: {where} ({rev or 'not a git checkout'}); effective settings: {values}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rundir = Path(tempfile.mkdtemp(prefix="dripcare-bench-"))
    base_sink = Sink("baseline", rundir, dump=args.verify == "ids")
    pipe_sink = Sink("pipeline", rundir, dump=args.verify == "ids")
    env_vars = bench_env(args, pipe_sink.port)
    os.environ.update(env_vars)  # before dripcare reads its settings
    sub_env = {**os.environ, **env_vars, "PYTHONUNBUFFERED": "1"}
    figures: dict = {"settings": {}}
    problems: list[str] = []
    try:
        settings_line = (
            f"messages={args.messages} workers={args.workers} concurrency={args.concurrency} "
            f"pool={args.pool} prefetch={args.prefetch or 'app default (1)'} "
            f"batch_size={args.batch_size} max_per_tick={args.max_per_tick} "
            f"dispatcher={args.dispatcher} interval={args.interval}s cores={os.cpu_count()}"
        )
        print(f"settings: {settings_line}")
        print(f"  {describe_code()}")
        figures["settings"] = {k: v for k, v in vars(args).items() if k != "worker_arg"}
        setup_database(args)
        flush_redis(args.redis)
        seeded = seed(args.messages, args.clinics)
        n = seeded.messages
        print(
            f"seeded: {n} messages for {seeded.patients} patients, {seeded.clinics} clinics, "
            f"{seeded.steps} steps ({seeded.seconds:.1f} s, not timed)"
        )

        baseline_rate = None
        if not args.skip_baseline:
            jobs = load_jobs()
            assert len(jobs) == n, (len(jobs), n)
            base_sink.start()
            wait_quiet(args.wait_quiet)
            before = cpu_snapshot()
            seconds = run_baseline(jobs, base_sink.port, args.profile_baseline)
            cpu = cpu_by_group(before, cpu_snapshot(), {})
            baseline_rate = n / seconds
            print(
                f"baseline: {n} messages in {seconds:.1f} s = {baseline_rate:.0f} msg/s "
                f"(render+compose+send, one SMTP connection, no DB/queue)"
            )
            print(format_cpu(cpu, seconds))
            problems += check_sink(base_sink, seeded.message_ids, "baseline")
            base_sink.stop()
            figures["baseline"] = {
                "messages": n,
                "seconds": seconds,
                "rate": baseline_rate,
                "cpu": cpu,
            }
            del jobs

        if not args.skip_pipeline:
            pipe_sink.start()
            flush_redis(args.redis)
            result = run_pipeline(args, n, sub_env, rundir, pipe_sink)
            seconds = result["seconds"]
            rate = n / seconds
            print(
                f"pipeline: {n} messages in {seconds:.1f} s = {rate:.0f} msg/s "
                f"(PostgreSQL -> dispatch -> Redis -> {args.workers}x{args.concurrency} "
                f"{args.pool} workers -> SMTP)"
            )
            print(format_cpu(result["cpu"], seconds))
            for name, (count, mean) in sorted(result["tasks"].items()):
                print(f"  tasks: {count} x {name}, mean {1000 * mean:.0f} ms")
            counts = status_counts()
            if set(counts) != {"sent"}:
                print(f"  rows by status: {counts}")
            after_kill = result["killed"] is not None
            problems += check_rows(n, after_kill)
            problems += check_sink(pipe_sink, seeded.message_ids, "pipeline", after_kill)
            figures["pipeline"] = {
                "messages": n,
                "seconds": seconds,
                "rate": rate,
                "cpu": result["cpu"],
                "rows": counts,
                "tasks": result["tasks"],
                "cpu_by_worker": result["cpu_by_worker"],
                "killed": result["killed"],
            }
            if baseline_rate:
                ratio = rate / baseline_rate
                figures["ratio"] = ratio
                print(f"ratio pipeline/baseline: {ratio:.2f}")
            aims = [f"{'met' if rate >= 1500 else 'MISSED'}: >= 1500 msg/s"]
            if baseline_rate:
                aims.append(
                    f"{'met' if rate >= 0.8 * baseline_rate else 'MISSED'}: >= 0.8 x baseline"
                )
            print("aims: " + "; ".join(aims))
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=2, default=str))
    finally:
        base_sink.stop()
        pipe_sink.stop()
        if args.keep_logs or problems:
            print(f"logs kept in {rundir}")
        else:
            shutil.rmtree(rundir, ignore_errors=True)
    for problem in problems:
        print(f"CHECK FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
