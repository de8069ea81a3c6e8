"""Waiting out a database that cannot be reached, and saying in one line why.

Workers must not turn a database outage into lost or repeated emails: what they cannot record
they hold and record again once the database answers. Only faults of reaching the database are
waited out (server down or restarting, our login refused, the connection pool full); any other
error is a bug or bad data and is raised at once. The three are told apart in the log, because
an operator fixes them differently: start the server, fix DRIPCARE_DATABASE_URL, or raise
DRIPCARE_DB_POOL_SIZE.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import exc as sa_exc

log = logging.getLogger(__name__)

T = TypeVar("T")

FIRST_DELAY = 0.25
MAX_DELAY = 2.0  # well inside dispatch.RECORD_GRACE: a holder records before anyone resends

_DOWN = (
    ("connection refused", "connection refused"),
    ("server closed the connection", "server closed the connection"),
    ("terminating connection", "server shutting down"),
    ("shutting down", "server shutting down"),
    ("starting up", "server starting up"),
    ("recovery mode", "server in crash recovery"),
    ("no such file or directory", "server socket missing"),
    ("consuming input failed", "connection lost"),
    ("connection is lost", "connection lost"),
    ("the connection is closed", "connection lost"),
    ("timeout expired", "connection timed out"),
    ("database is locked", "database locked by another writer"),
    ("too many clients", "server has no free connection"),
)
_LOGIN = ("authentication failed", "no password supplied", "pg_hba.conf", 'role "')


class DatabaseUnavailable(Exception):
    """The database stayed unreachable for as long as the caller could wait."""


def fault_of(error: BaseException) -> str | None:
    """What keeps us from the database, in a few words; None for any other error."""
    if isinstance(error, sa_exc.TimeoutError):
        return "connection pool full (raise DRIPCARE_DB_POOL_SIZE or lower worker concurrency)"
    if not isinstance(error, sa_exc.DBAPIError):
        return None
    text = str(error.orig).lower()
    if any(word in text for word in _LOGIN):
        return "database refused our login (check DRIPCARE_DATABASE_URL's user and password)"
    for needle, said in _DOWN:
        if needle in text:
            return f"database down: {said}"
    if error.connection_invalidated:
        return "database down: connection lost"
    if isinstance(error, sa_exc.OperationalError) and _is_postgres(error):
        return f"database down: {type(error.orig).__name__}"
    return None


def _is_postgres(error: sa_exc.DBAPIError) -> bool:
    return type(error.orig).__module__.startswith("psycopg")


def wait_out(
    action: Callable[[], T],
    holding: str,
    *,
    limit: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Run `action` until the database lets it through, with backoff up to MAX_DELAY.

    One warning when the fault starts and one line when it ends; no traceback. With `limit`,
    gives up after that many seconds with DatabaseUnavailable.
    """
    started, delay, fault = clock(), FIRST_DELAY, ""
    while True:
        try:
            result = action()
        except Exception as error:
            kind = fault_of(error)
            if kind is None:
                raise
            if limit is not None and clock() - started + delay > limit:
                raise DatabaseUnavailable(kind) from None
            if not fault:  # one line per outage, however long
                said = "database unavailable (%s), %s, retrying in %.2g s"
                log.warning(said, kind, holding, delay)
                fault = kind
            sleep(delay)
            delay = min(delay * 2, MAX_DELAY)
            continue
        if fault:
            log.warning("database back after %.1f s (was %s)", clock() - started, holding)
        return result
