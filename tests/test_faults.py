"""Faults under load: the test's own PostgreSQL and Redis restarted, a worker child killed,
while real Celery worker processes send to a real SMTP server that counts by Message-ID.

Never the shared servers: PostgreSQL and Redis run here on free ports, in a temporary directory.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from dripcare.celery_app import app
from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.outbox.dispatch import Claim, dispatch_tick
from dripcare.tasks import send_batch
from tests.conftest import _migrate, configure, free_port
from tests.smtp_server import SMTPServer
from tests.test_workers import seed_due, sent_count

pytestmark = [pytest.mark.slow, pytest.mark.workers]

MESSAGES = 300
LEASE = 10  # seconds: a killed worker's rows come back within the test


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found or not shutil.which("redis-server"):
        pytest.skip("PostgreSQL server binaries or redis-server not installed")
    return Path(found[-1]).parent


class PrivatePostgres:
    """A throwaway cluster; as root, it runs as the `postgres` user (initdb refuses root)."""

    def __init__(self, root: Path) -> None:
        self.bin = _pg_bin()
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.user = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        if self.user:
            os.chown(root, self.user.pw_uid, self.user.pw_gid)

    def _run(self, *argv: str) -> None:
        drop: list[str] = []
        if self.user:
            uid, gid = self.user.pw_uid, self.user.pw_gid
            drop = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--"]
        subprocess.run([*drop, *argv], check=True, capture_output=True, timeout=60)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/dripcare"

    def init(self) -> None:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust")
        self.start()
        admin = sa.create_engine(self.url.replace("/dripcare", "/postgres"))
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("CREATE DATABASE dripcare"))
        admin.dispose()

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
            "-o", options, "-w", "start",
        )  # fmt: skip

    def stop(self, mode: str) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")


class PrivateRedis:
    """redis-server with an append-only file, so a restart keeps the queued tasks."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.root)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        ping = ["redis-cli", "-p", str(self.port), "ping"]
        pause = threading.Event()
        for _ in range(100):
            if subprocess.run(ping, capture_output=True).stdout.strip() == b"PONG":
                return
            pause.wait(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@pytest.fixture
def private_services(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, smtp_server: SMTPServer
) -> Iterator[tuple[PrivatePostgres, PrivateRedis, Settings]]:
    root = Path(tempfile.mkdtemp(prefix="dripcare-faults-", dir="/tmp"))
    root.chmod(0o755)  # the postgres user must reach its data directory inside
    (root / "pg").mkdir()
    pg = PrivatePostgres(root / "pg")
    (root / "redis").mkdir()
    rd = PrivateRedis(root / "redis")
    try:
        pg.init()
        _migrate(pg.url)
        rd.start()
        settings = configure(
            monkeypatch,
            tmp_path,
            DRIPCARE_DATABASE_URL=pg.url,
            DRIPCARE_BROKER_URL=rd.url,
            DRIPCARE_SMTP_URL=smtp_server.url,
            DRIPCARE_LEASE_SECONDS=str(LEASE),
        )
        yield pg, rd, settings
    finally:
        rd.stop()
        with contextlib.suppress(subprocess.CalledProcessError):
            pg.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


class Dispatcher(threading.Thread):
    """`dripcare beat`'s loop in a thread; a tick that meets a fault is simply tried again.

    It publishes on its own connection to the private broker: the Celery app's producer pool
    keeps the broker that an earlier test in this process used first."""

    def __init__(self, broker_url: str) -> None:
        super().__init__(daemon=True)
        self.halt = threading.Event()
        self.broker_url = broker_url

    def _enqueue(self, claim: Claim) -> None:
        with app.connection_for_write(self.broker_url) as connection:
            send_batch.apply_async((claim.token, claim.message_ids), connection=connection)

    def run(self) -> None:
        while not self.halt.is_set():
            with contextlib.suppress(Exception):  # the database or the broker is down: next tick
                dispatch_tick(
                    session_scope,
                    self._enqueue,
                    batch_size=20,
                    max_per_tick=200,
                    lease=timedelta(seconds=LEASE),
                    grace=timedelta(seconds=3),  # > db_faults.MAX_DELAY, as RECORD_GRACE is
                )
            self.halt.wait(0.3)


def _wait(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    pause = threading.Event()
    for _ in range(int(seconds * 10)):
        try:
            if condition():
                return
        except sa.exc.OperationalError:
            pass
        pause.wait(0.1)
    pytest.fail(f"gave up waiting for {what}")


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(line) for line in out.split()]


@pytest.mark.postgres
@pytest.mark.redis
def test_restarts_and_a_kill_lose_nothing_and_duplicate_at_most_once_per_kill(
    private_services: tuple[PrivatePostgres, PrivateRedis, Settings],
    smtp_server: SMTPServer,
    tmp_path: Path,
) -> None:
    pg, rd, _ = private_services
    recorder = smtp_server.recorder
    recorder.delay = 0.1  # a relay slow enough that every fault lands mid-batch
    expected = seed_due(MESSAGES)
    log = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [sys.executable, "-m", "dripcare.cli", "worker", "--pool=prefork", "--concurrency=3",
         "--loglevel=WARNING", "--without-heartbeat", "--without-mingle", "--without-gossip"],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )  # fmt: skip
    dispatcher = Dispatcher(rd.url)
    step = MESSAGES // 6

    def arrived(count: int) -> None:
        # The first batch waits for the worker's start-up and its renderer processes.
        if not recorder.wait_for(count, timeout=180 if count == step else 60):
            tail = log.read_text(errors="replace")[-3000:]
            pytest.fail(f"{count} emails should have arrived; the worker's log ends:\n{tail}")

    try:
        dispatcher.start()
        arrived(step)
        pg.stop("fast")  # a clean restart: connections dropped, back at once
        pg.start()
        arrived(2 * step)
        victim = _children(worker.pid)[0]
        os.kill(victim, signal.SIGKILL)  # mid-batch: what it sent is not yet all recorded
        arrived(3 * step)
        rd.stop()  # the broker restarts; its append-only file keeps the queue
        rd.start()
        arrived(4 * step)
        pg.stop("immediate")  # a crash, down for five seconds, then crash recovery
        threading.Event().wait(5)
        pg.start()
        last_fault = time.monotonic()
        _wait(lambda: sent_count() == MESSAGES, "every row recorded as sent", seconds=90)
        drain = time.monotonic() - last_fault
    finally:
        dispatcher.halt.set()
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=30)

    received = recorder.message_ids()
    lost = set(expected) - set(received)
    duplicates = len(received) - len(set(received))
    lines = log.read_text(errors="replace").splitlines()
    print(
        f"\nfaults: {MESSAGES} messages, lost {len(lost)}, duplicates {duplicates} "
        f"(1 kill -9), drain after the last fault {drain:.1f} s, worker log {len(lines)} lines"
    )
    said = "\n".join(lines)
    assert "database unavailable (database down: " in said  # one line per outage and worker
    assert "database back after " in said
    assert not lost
    assert duplicates <= 1  # only the killed child's last accepted message may come twice
    assert set(received) == set(expected)
