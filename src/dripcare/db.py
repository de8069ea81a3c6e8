"""Engine and session handling: one engine per database URL, sessions committed at the edges."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Engine, any_, bindparam, create_engine, event
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from dripcare.config import get_settings

T = TypeVar("T")
# What a long-running loop takes instead of a session: it opens one short unit of work per step
# (session_scope, or a test's own), so no transaction stays open across sending or waiting.
SessionScope = Callable[[], AbstractContextManager[Session]]


def _prepare_sqlite(engine: Engine) -> None:
    """WAL lets readers run beside the one writer; busy_timeout makes writers queue, not fail."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # let SQLAlchemy's BEGIN below control transactions
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        # IMMEDIATE takes the write lock up front, so two claimers serialise instead of deadlocking.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


_engines: dict[str, Engine] = {}
_makers: dict[str, sessionmaker[Session]] = {}


def get_engine(url: str | None = None) -> Engine:
    url = url or get_settings().database_url
    if url not in _engines:
        _engines[url] = _create_engine(url)
    return _engines[url]


def _create_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
        _prepare_sqlite(engine)
        return engine
    settings = get_settings()
    # Below the web server's 40 worker threads, so requests that hold a connection always
    # find a thread to finish on while others wait for one.
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_timeout=settings.db_pool_timeout,
        hide_parameters=True,  # errors and logs carry patients' emails and names otherwise
    )


def new_session(url: str | None = None) -> Session:
    """A session bound to the database; it connects on first use, not here."""
    url = url or get_settings().database_url
    if url not in _makers:
        _makers[url] = sessionmaker(get_engine(url), expire_on_commit=False)
    return _makers[url]()


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    session = new_session(url)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def again_on_conflict(session: Session, attempt: Callable[[], T], attempts: int = 3) -> T:
    """Run `attempt` again after a unique index turned it down because of a concurrent writer.

    Two requests that create the same patient (or external id, or key) at once both find
    nothing and both insert; the second waits for the first to commit, then fails. Rolled
    back and run again, it finds the first's row and answers as a repeat would.
    """
    for _ in range(attempts - 1):
        try:
            return attempt()
        except IntegrityError:
            session.rollback()
    return attempt()


def among(
    session: Session, column: InstrumentedAttribute[Any], values: Iterable[Any]
) -> ColumnElement[bool]:
    """`column IN values`; on PostgreSQL `= ANY(array)`: one parameter and the same SQL text
    whatever the number of values. An IN of a batch's 100-200 values is a new statement for
    SQLAlchemy and psycopg each time (~7 ms of CPU a query under cProfile in the send path)."""
    values = list(values)
    if session.get_bind().dialect.name != "postgresql":
        return column.in_(values)
    return column == any_(bindparam(None, values, type_=ARRAY(column.type)))


def reset() -> None:
    """Dispose engines and forget settings, so the next call reads the environment afresh."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()
    _makers.clear()
    get_settings.cache_clear()
