"""Telling database faults apart, and waiting them out with one log line each way."""

from __future__ import annotations

import logging

import psycopg
import pytest
import sqlalchemy as sa

from dripcare.db_faults import MAX_DELAY, DatabaseUnavailable, fault_of, wait_out
from tests.conftest import PG_ADMIN_URL, free_port


def _error_of(url: str, **engine: object) -> BaseException:
    with pytest.raises(sa.exc.SQLAlchemyError) as caught:
        sa.create_engine(url, **engine).connect().close()  # type: ignore[arg-type]
    return caught.value


def test_a_server_that_is_not_there_is_down() -> None:
    error = _error_of(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x")
    assert fault_of(error) == "database down: connection refused"


@pytest.mark.postgres
def test_a_full_pool_is_not_a_server_down() -> None:
    engine = sa.create_engine(PG_ADMIN_URL, pool_size=1, max_overflow=0, pool_timeout=0.1)
    try:
        with engine.connect(), pytest.raises(sa.exc.TimeoutError) as caught:
            engine.connect()
    except sa.exc.OperationalError:
        pytest.skip("PostgreSQL is not reachable")
    finally:
        engine.dispose()
    assert fault_of(caught.value).startswith("connection pool full")  # type: ignore[union-attr]


def test_a_refused_login_says_to_check_the_url() -> None:
    orig = psycopg.OperationalError(
        'connection failed: FATAL:  password authentication failed for user "dripcare"'
    )
    error = sa.exc.OperationalError("SELECT 1", {}, orig)
    assert fault_of(error) == (
        "database refused our login (check DRIPCARE_DATABASE_URL's user and password)"
    )


def test_other_database_errors_are_not_waited_out(tmp_path: object) -> None:
    engine = sa.create_engine("sqlite://")
    with pytest.raises(sa.exc.OperationalError) as caught, engine.connect() as conn:
        conn.execute(sa.text("SELECT * FROM no_such_table"))
    assert fault_of(caught.value) is None
    assert fault_of(ValueError("bug")) is None


class Outage:
    """Fails `times` times the way a stopped server does, then answers."""

    def __init__(self, times: int) -> None:
        self.times = times
        self.calls = 0
        self.error = _error_of(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x")

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.times:
            raise self.error
        return "recorded"


def test_an_outage_is_waited_out_with_backoff_and_two_log_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outage, slept = Outage(times=6), []
    with caplog.at_level(logging.DEBUG, logger="dripcare.db_faults"):
        assert wait_out(outage, "holding 3 outcomes", sleep=slept.append) == "recorded"
    assert slept == [0.25, 0.5, 1.0, 2.0, MAX_DELAY, MAX_DELAY]
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == (
        "database unavailable (database down: connection refused), holding 3 outcomes, "
        "retrying in 0.25 s"
    )
    assert lines[1].startswith("database back after ")
    assert len(lines) == 2
    assert all(r.exc_info is None for r in caplog.records)  # no traceback


def test_a_caller_that_cannot_wait_longer_gets_database_unavailable() -> None:
    clock = iter(range(100)).__next__
    with pytest.raises(DatabaseUnavailable, match="connection refused"):
        wait_out(Outage(times=99), "starting a batch", limit=5, sleep=lambda _: None, clock=clock)


def test_a_bug_is_raised_at_once() -> None:
    def broken() -> None:
        raise KeyError("no")

    with pytest.raises(KeyError):
        wait_out(broken, "x", sleep=lambda _: pytest.fail("must not wait"))
