"""Real Celery workers against real Redis, PostgreSQL/SQLite and a real SMTP server.

No eager mode: tasks travel through Redis to a worker thread or to worker processes.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from sqlalchemy import func, insert, select, text

from dripcare.celery_app import DISPATCH_QUEUE, SEND_QUEUE, app
from dripcare.config import Settings, get_settings
from dripcare.db import get_engine, session_scope
from dripcare.devserver import daytime_zone
from dripcare.models import Enrollment, Message, MessageStatus, Patient
from dripcare.outbox.dispatch import RECORD_GRACE, dispatch_tick
from dripcare.tasks import _enqueue, dispatch
from tests.conftest import configure
from tests.factories import make_clinic, make_enrollment
from tests.smtp_server import SMTPServer


def sent_count() -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).where(Message.status == MessageStatus.SENT)) or 0


def wait_until(condition: Any, what: str, ticks: int = 600) -> None:
    """Poll a condition, driving nothing; fails with a message instead of hanging."""
    stop = threading.Event()
    for _ in range(ticks):
        if condition():
            return
        stop.wait(0.1)
    pytest.fail(f"gave up waiting for {what}")


@pytest.fixture
def worker_env(
    database: str,
    redis_url: str,
    smtp_server: SMTPServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Settings:
    settings = configure(
        monkeypatch,
        tmp_path,
        DRIPCARE_DATABASE_URL=database,
        DRIPCARE_SMTP_URL=smtp_server.url,
        DRIPCARE_BROKER_URL=redis_url,
    )
    app.conf.broker_url = redis_url
    return settings


def test_dispatch_task_and_worker_thread_deliver_due_messages(
    worker_env: Settings, smtp_server: SMTPServer
) -> None:
    clinic = make_clinic(timezone=daytime_zone(datetime.now(UTC)))  # no quiet hours now
    for name in ("ann", "ben", "cy"):
        make_enrollment(
            worker_env, clinic, datetime.now(UTC) - timedelta(hours=3), email=f"{name}@example.com"
        )
    with start_worker(app, perform_ping_check=False, queues=[DISPATCH_QUEUE, SEND_QUEUE]):
        dispatch.delay()
        assert smtp_server.recorder.wait_for(3), "three emails should arrive"
        wait_until(lambda: sent_count() == 3, "rows marked sent")

    assert sorted(m["To"] for m in smtp_server.recorder.messages) == [
        "ann@example.com",
        "ben@example.com",
        "cy@example.com",
    ]


REFUSE_SENT = [
    "CREATE FUNCTION refuse_sent() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused %', "
    "(SELECT p.email FROM patients p JOIN enrollments e ON e.patient_id = p.id "
    "WHERE e.id = NEW.enrollment_id); END $$ LANGUAGE plpgsql",
    "CREATE TRIGGER refuse_sent BEFORE UPDATE ON messages FOR EACH ROW "
    "WHEN (NEW.status = 'sent') EXECUTE FUNCTION refuse_sent()",
]


@pytest.fixture
def messages_refuse_sent(worker_env: Settings) -> Iterator[None]:
    """A database fault whose message names the patient, raised while a batch is recorded."""
    with get_engine().begin() as conn:
        for statement in REFUSE_SENT:
            conn.execute(text(statement))
    yield
    with get_engine().begin() as conn:
        conn.execute(text("DROP FUNCTION refuse_sent() CASCADE"))


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_a_failed_task_is_logged_without_the_patients_data(
    messages_refuse_sent: None, smtp_server: SMTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    clinic = make_clinic(timezone=daytime_zone(datetime.now(UTC)))
    make_enrollment(
        get_settings(), clinic, datetime.now(UTC) - timedelta(hours=3), email="ann@example.com"
    )
    caplog.set_level(logging.ERROR, logger="celery.app.trace")
    with start_worker(app, perform_ping_check=False, queues=[DISPATCH_QUEUE, SEND_QUEUE]):
        dispatch.delay()
        wait_until(lambda: "send_batch" in caplog.text, "the failed send task's log")

    assert "TaskFailed" in caplog.text
    assert "SQLSTATE P0001; message withheld" in caplog.text
    assert "delivery.py" in caplog.text  # the frames are there, to find the fault
    assert "ann@example.com" not in caplog.text


# ---- several worker processes -----------------------------------------------------------------


def seed_due(count: int) -> list[str]:
    """`count` due messages, inserted in bulk (enrolling one by one would dominate the test)."""
    settings = get_settings()
    # Worker processes read the real clock: due now by the step's own timing, in a zone where it
    # is daytime now, or the send-time rules would rightly hold or skip them.
    now = datetime.now(UTC)
    clinic = make_clinic(timezone=daytime_zone(now))
    template = make_enrollment(settings, clinic, now - timedelta(hours=3), now=now)
    with session_scope() as session:
        base = session.get(Enrollment, template)
        assert base is not None
        step_id = session.scalar(select(Message.step_id).where(Message.enrollment_id == template))
        patients = session.scalars(
            insert(Patient).returning(Patient.id),
            [
                {
                    "clinic_id": clinic,
                    "email": f"p{i}@example.com",
                    "first_name": f"P{i}",
                    "last_name": "",
                    "locale": "en",
                }
                for i in range(count)
            ],
        ).all()
        enrollments = session.scalars(
            insert(Enrollment).returning(Enrollment.id),
            [
                {
                    "clinic_id": clinic,
                    "patient_id": p,
                    "campaign_id": base.campaign_id,
                    "treatment": base.treatment,
                    "treated_at": base.treated_at,
                    "timezone": base.timezone,
                    "status": "active",
                }
                for p in patients
            ],
        ).all()
        session.execute(
            insert(Message),
            [
                {
                    "clinic_id": clinic,
                    "enrollment_id": e,
                    "step_id": step_id,
                    "due_at": datetime.now(UTC) - timedelta(minutes=1),
                    "status": "scheduled",
                    "message_id": f"<m{e}@riverside.example>",
                }
                for e in enrollments
            ],
        )
        session.execute(Message.__table__.delete().where(Message.enrollment_id == template))
        return [f"<m{e}@riverside.example>" for e in enrollments]


_started: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def no_stray_workers() -> Iterator[None]:
    """A worker left running would take the next test's tasks with its own settings."""
    yield
    while _started:
        stop(_started.pop(), signal.SIGKILL)


def start_worker_process(env: dict[str, str], pool: str, concurrency: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dripcare.cli",
            "worker",
            f"--pool={pool}",
            f"--concurrency={concurrency}",
            "--loglevel=WARNING",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
        ],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _started.append(process)
    return process


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        process.wait(timeout=30)


@pytest.fixture
def process_env(worker_env: Settings) -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


# Several worker processes on several hosts are a PostgreSQL deployment.
postgres_only = pytest.mark.parametrize("database", ["postgresql"], indirect=True)


class Dispatcher(threading.Thread):
    """A dispatcher loop, as `dripcare beat` would run it, until told to stop."""

    def __init__(self, lease_seconds: float = 300, grace: timedelta = RECORD_GRACE) -> None:
        super().__init__(daemon=True)
        self.halt = threading.Event()
        self.lease = timedelta(seconds=lease_seconds)
        self.grace = grace

    def run(self) -> None:
        while not self.halt.is_set():
            dispatch_tick(
                session_scope,
                _enqueue,
                batch_size=25,
                max_per_tick=1000,
                lease=self.lease,
                grace=self.grace,
            )
            self.halt.wait(0.2)


@postgres_only
def test_two_workers_and_two_dispatchers_never_send_a_message_twice(
    process_env: dict[str, str], smtp_server: SMTPServer
) -> None:
    expected = seed_due(400)
    workers = [start_worker_process(process_env, "prefork", 2) for _ in range(2)]
    dispatchers = [Dispatcher(), Dispatcher()]
    try:
        for d in dispatchers:
            d.start()
        assert smtp_server.recorder.wait_for(400, timeout=120), "all 400 should arrive"
        wait_until(lambda: sent_count() == 400, "all rows sent")
        wait_until(
            lambda: redis.Redis.from_url(app.conf.broker_url).llen(SEND_QUEUE) == 0,
            "the send queue to drain",
        )
    finally:
        for d in dispatchers:
            d.halt.set()
        for w in workers:
            stop(w)

    received = smtp_server.recorder.message_ids()
    assert len(received) == 400
    assert sorted(received) == sorted(expected)


@postgres_only
def test_a_worker_killed_mid_batch_loses_nothing(
    process_env: dict[str, str], smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = smtp_server.recorder
    recorder.stall_at = 15
    expected = seed_due(60)
    env = {**process_env, "DRIPCARE_LEASE_SECONDS": "2"}
    first = start_worker_process(env, "solo", 1)
    # The replacement worker replays the journal when it starts; a short grace (here 2 s of
    # lease plus 2 s) would let a busy machine's dispatcher resend before it is up.
    dispatcher = Dispatcher(lease_seconds=2, grace=timedelta(seconds=20))
    monkeypatch.setenv("DRIPCARE_LEASE_SECONDS", "2")
    get_settings.cache_clear()
    try:
        dispatcher.start()
        assert recorder.stalled.wait(60), "the worker should reach the stalling message"
        stop(first, signal.SIGKILL)  # mid-batch: its claimed rows are left 'sending'
        recorder.release.set()
        second = start_worker_process(env, "solo", 1)
        try:
            wait_until(lambda: sent_count() == 60, "every row sent after recovery", ticks=1200)
        finally:
            stop(second)
    finally:
        dispatcher.halt.set()

    received = recorder.message_ids()
    assert set(received) == set(expected)  # nothing lost
    duplicates = {m for m in received if received.count(m) > 1}
    # What the dead worker had sent is recorded from its journal by the next process; only the
    # one in flight at the kill can come again, with the same Message-ID.
    assert len(duplicates) <= 1 < get_settings().result_flush
    assert len(received) == 60 + len(duplicates)


@postgres_only
def test_a_host_lost_mid_batch_is_recovered_by_a_worker_on_another_host(
    process_env: dict[str, str],
    smtp_server: SMTPServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two hosts: the other worker is already running and never sees the lost host's journal.

    Nothing is lost: the lost worker's leased rows expire and the other worker sends them. What
    the lost one had sent but not yet recorded (at most DRIPCARE_RESULT_FLUSH per process) goes
    again with the same Message-ID, because replaying a journal needs a process on that host.
    """
    recorder = smtp_server.recorder
    recorder.stall_at = 15
    expected = seed_due(60)
    env = {**process_env, "DRIPCARE_LEASE_SECONDS": "2"}
    lost_host, other_host = tmp_path / "host-a", tmp_path / "host-b"
    lost = start_worker_process({**env, "DRIPCARE_STATE_DIR": str(lost_host)}, "solo", 1)
    dispatcher = Dispatcher(lease_seconds=2, grace=timedelta(seconds=2))
    monkeypatch.setenv("DRIPCARE_LEASE_SECONDS", "2")
    get_settings.cache_clear()
    try:
        dispatcher.start()
        assert recorder.stalled.wait(60), "the first host should reach the stalling message"
        other = start_worker_process({**env, "DRIPCARE_STATE_DIR": str(other_host)}, "solo", 1)
        stop(lost, signal.SIGKILL)  # the whole host at once: nothing there replays its journal
        recorder.release.set()
        try:
            wait_until(lambda: sent_count() == 60, "every row sent by the other host", ticks=1200)
        finally:
            stop(other)
    finally:
        dispatcher.halt.set()

    received = recorder.message_ids()
    assert set(received) == set(expected)  # nothing lost
    duplicates = {m for m in received if received.count(m) > 1}
    assert len(duplicates) <= get_settings().result_flush
    assert len(received) == 60 + len(duplicates)
    assert [p.read_text() != "" for p in (lost_host / "journal").glob("*.journal")] == [True]
