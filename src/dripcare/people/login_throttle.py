"""Login throttling: failed sign-ins counted per email and per client address, in the database.

Kept in the database rather than in memory so that every API process, and a restart, sees the
same counts. Failures older than the window no longer count and are pruned on the next failure.

Checking the count and recording a failure are two statements with a password check between
them, so concurrent attempts for one key would all pass the check before any failure landed
(an attacker's burst gets through). `hold` makes them one critical section per key: on
PostgreSQL a transaction-scoped advisory lock, on SQLite the write lock that dripcare's
`BEGIN IMMEDIATE` takes. A lock rather than a counter row keeps the sliding window (a failure
leaves the count exactly when it is older than the window) and needs no new table.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from dripcare.config import Settings
from dripcare.models import LoginFailure


def email_key(email: str) -> str:
    return f"email:{email.strip().lower()[:320]}"


def address_key(address: str) -> str:
    return f"addr:{address[:320]}"


def _limits(settings: Settings, keys: list[str]) -> list[tuple[str, int]]:
    return [
        (
            key,
            settings.login_max_failures
            if key.startswith("email:")
            else settings.login_max_failures_per_address,
        )
        for key in keys
    ]


def hold(session: Session, keys: list[str]) -> None:
    """Serialize attempts on these keys until this transaction ends (see the module's note).

    Keys are locked in sorted order, so two attempts sharing both keys cannot deadlock."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for key in sorted(set(keys)):
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key}
        )


def wait_minutes(session: Session, settings: Settings, keys: list[str], now: datetime) -> int:
    """0 if a sign-in may be tried now, else the whole minutes until the oldest failure that
    keeps a key over its limit leaves the window."""
    window = timedelta(minutes=settings.login_window_minutes)
    longest = timedelta(0)
    for key, limit in _limits(settings, keys):
        times = session.scalars(
            select(LoginFailure.at)
            .where(LoginFailure.key == key, LoginFailure.at > now - window)
            .order_by(LoginFailure.at.desc())
            .limit(limit)
        ).all()
        if len(times) >= limit:
            longest = max(longest, times[-1] + window - now)
    return math.ceil(longest.total_seconds() / 60) if longest > timedelta(0) else 0


def record_failure(session: Session, settings: Settings, keys: list[str], now: datetime) -> None:
    cutoff = now - timedelta(minutes=settings.login_window_minutes)
    session.execute(delete(LoginFailure).where(LoginFailure.at <= cutoff))
    session.add_all(LoginFailure(key=key, at=now) for key in keys)
    session.flush()


def forget(session: Session, key: str) -> None:
    """After a successful sign-in, that email's earlier failures no longer count."""
    session.execute(delete(LoginFailure).where(LoginFailure.key == key))


def failures(session: Session, key: str) -> int:
    return session.scalar(select(func.count()).where(LoginFailure.key == key)) or 0
