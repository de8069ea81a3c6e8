"""A short-lived, per-process cache of something looked up per clinic (transport, DKIM key).

The send path needs these for every batch; one query per clinic per minute is enough.
A change made in another process (the CLI, the admin) is seen within `ttl` seconds. Entries
belong to the database engine they were read from, so a new database (tests, `db.reset()`)
starts empty.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar
from weakref import WeakKeyDictionary

from sqlalchemy import Engine
from sqlalchemy.orm import Session, object_session

from dripcare import db
from dripcare.models import Clinic

T = TypeVar("T")
TTL_SECONDS = 60.0


class PerClinic(Generic[T]):
    def __init__(self, load: Callable[[Session, int], T], ttl: float = TTL_SECONDS) -> None:
        self._load = load
        self._ttl = ttl
        self._entries: WeakKeyDictionary[Engine, dict[int, tuple[float, T]]] = WeakKeyDictionary()

    def get(self, clinic: Clinic) -> T:
        entries = self._entries.setdefault(db.get_engine(), {})
        found = entries.get(clinic.id)
        if found is not None and time.monotonic() - found[0] < self._ttl:
            return found[1]
        # Read through the clinic's own session when it has one: on SQLite a second
        # connection would wait for the write lock that session may hold.
        current = object_session(clinic)
        if current is not None:
            value = self._load(current, clinic.id)
        else:
            with db.session_scope() as session:
                value = self._load(session, clinic.id)
        entries[clinic.id] = (time.monotonic(), value)
        return value

    def forget(self, clinic_id: int) -> None:
        """After a change in this process: the next `get` reads it again."""
        self._entries.get(db.get_engine(), {}).pop(clinic_id, None)
