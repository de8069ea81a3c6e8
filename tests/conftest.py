"""Shared fixtures: real PostgreSQL, SQLite, Redis and SMTP servers; nothing mocked.

Every database test runs twice, on SQLite (the embedded default) and on PostgreSQL
(production). Locally a service that is down skips its tests; in CI (CI=true) it fails them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
import time_machine
import uvicorn
from argon2 import PasswordHasher

from dripcare import db
from dripcare.config import Settings, get_settings
from dripcare.migrations import upgrade
from dripcare.models import Base
from dripcare.people import admins
from dripcare.web.app import create_app
from tests.factories import DAYTIME
from tests.fast_loop import FAST, MEMORY_BROKER
from tests.smtp_server import SMTPServer

PG_ADMIN_URL = os.environ.get(
    "DRIPCARE_TEST_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
# Per test session, so that two suites running at once (two developers' checkouts, a helper
# script) never drop each other's database or take each other's Celery tasks.
PG_TEST_DB = f"dripcare_test_{os.getpid()}"
REDIS_URL = os.environ.get("DRIPCARE_TEST_REDIS", f"redis://127.0.0.1:6379/{1 + os.getpid() % 13}")
pytest_plugins = [
    "tests.campaign_fixtures",  # the shipped campaign, for rendering tests
    "tests.admin_fixtures",  # admin users and signed-in admin browsers
    "tests.api_fixtures",  # the REST API at a fixed daytime, and a clinic with its key
    "tests.browser_fixtures",  # one headless Chromium per session
    "tests.markers",  # postgres, redis, browser and workers markers from the fixtures used
]
IN_CI = os.environ.get("CI", "").lower() == "true"
# The Celery app reads its broker once, on first use; every test that touches it (a worker,
# or a page that queues an alert) must agree on this one. The quick loop runs without Redis.
BROKER_URL = MEMORY_BROKER if FAST else REDIS_URL
os.environ["DRIPCARE_BROKER_URL"] = BROKER_URL


def pytest_configure(config: pytest.Config) -> None:
    """`make test-later` runs the suite with the clock moved ahead: check that it is."""
    days = os.environ.get("DRIPCARE_TEST_DAYS_AHEAD")
    if not days:
        return
    import subprocess

    real = int(subprocess.check_output(["date", "+%s"]))  # not Python: its clock is real
    ahead = (datetime.now(UTC).timestamp() - real) / 86400
    if abs(ahead - int(days)) > 1:
        raise pytest.UsageError(
            f"DRIPCARE_TEST_DAYS_AHEAD={days} but the clock is {ahead:.1f} days ahead: put "
            "tests/clock_ahead on PYTHONPATH (make test-later does)"
        )
    print(f"clock: {days} days ahead, now {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


def service_down(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what} is not reachable; CI must run it")
    pytest.skip(f"{what} is not reachable")


@contextlib.contextmanager
def fresh_pg_database(name: str) -> Iterator[str]:
    """An empty PostgreSQL database of this name, dropped afterwards (even while in use)."""
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    drop = sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    try:
        with admin.connect() as conn:
            conn.execute(drop)
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
    except sa.exc.OperationalError:
        service_down("PostgreSQL")
    try:
        yield sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(False)
    finally:
        with admin.connect() as conn:
            conn.execute(drop)
        admin.dispose()


# Argon2id at its lowest cost: the production parameters spend 50-100 ms on every admin created
# and every sign-in, which the admin tests do hundreds of times.
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
CHEAP_DUMMY_HASH = CHEAP_HASHER.hash("not a password anyone has")


@pytest.fixture(autouse=True)
def cheap_argon2(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap password hashing, except in tests marked `real_argon2` (production parameters)."""
    if request.node.get_closest_marker("real_argon2") is None:
        monkeypatch.setattr(admins, "_hasher", CHEAP_HASHER)
        monkeypatch.setattr(admins, "_DUMMY_HASH", CHEAP_DUMMY_HASH)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A dedicated database, migrated once; tests truncate it instead of recreating it."""
    with fresh_pg_database(PG_TEST_DB) as url:
        _migrate(url)
        yield url
        db.reset()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    _migrate(f"sqlite:///{path}")
    return path


def _migrate(url: str) -> None:
    os.environ["DRIPCARE_DATABASE_URL"] = url
    db.reset()
    upgrade()
    db.reset()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """An empty, migrated database of each kind; settings point at it."""
    if request.param == "sqlite":
        path = tmp_path / "dripcare.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_database")
        _truncate(url)
    configure(monkeypatch, tmp_path, DRIPCARE_DATABASE_URL=url)
    yield url
    db.reset()


def _truncate(url: str) -> None:
    engine = sa.create_engine(url)
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


def configure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **env: str) -> Settings:
    """Point dripcare's settings at test values and forget cached engines."""
    defaults = {
        "DRIPCARE_SMTP_URL": f"capture://{tmp_path / 'outbox'}",
        "DRIPCARE_BASE_URL": "https://care.test",
        "DRIPCARE_SECRET_KEY": "test-secret-of-dripcare-tests-not-for-production",
        "DRIPCARE_BROKER_URL": BROKER_URL,
    }
    for key, value in {**defaults, **env}.items():
        monkeypatch.setenv(key, value)
    db.reset()
    return get_settings()


@pytest.fixture
def settings(database: str) -> Settings:
    return get_settings()


@pytest.fixture
def redis_url() -> str:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    except redis.exceptions.ConnectionError:
        service_down("Redis")
    finally:
        client.close()
    return REDIS_URL


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    server = SMTPServer(free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def live_server(settings: Settings) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(), host="127.0.0.1", port=port, log_level="warning", access_log=False
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    ready = threading.Event()
    for _ in range(200):
        if server.started:
            break
        ready.wait(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def daytime() -> Iterator[None]:
    """The clock at a working morning at the clinic (no quiet hours), whenever tests run."""
    with time_machine.travel(DAYTIME, tick=True):
        yield


@pytest.fixture
def verp_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings with a bounce domain: each email's envelope sender names it (VERP)."""
    monkeypatch.setenv("DRIPCARE_BOUNCE_DOMAIN", "bounce.riverside.example")
    get_settings.cache_clear()
    return get_settings()
