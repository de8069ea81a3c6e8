"""Markers from what a test uses, so that `-m` can leave out what needs a service.

Marking by fixture (and by file, for the browser tests) instead of by hand means a new test
that takes `redis_url` or runs on PostgreSQL is marked without anyone remembering to:
`make test-fast` would otherwise run it and fail or skip when the service is down.
Tests that start Celery workers or need a service without these fixtures carry their
markers themselves (`pytestmark` or a decorator).
"""

from __future__ import annotations

import pytest

POSTGRES_FIXTURES = frozenset({"pg_database", "compose_database"})
REDIS_FIXTURES = frozenset({"redis_url"})
BROWSER_FIXTURES = frozenset({"browser"})
WORKER_FIXTURES = frozenset({"worker_env"})


def needs(item: pytest.Item) -> set[str]:
    """The markers a test earns from its file, its fixtures and its database parameter."""
    fixtures = set(getattr(item, "fixturenames", ()))
    callspec = getattr(item, "callspec", None)
    database = callspec.params.get("database") if callspec else None
    found = set()
    if database == "postgresql" or fixtures & POSTGRES_FIXTURES:
        found.add("postgres")
    if fixtures & REDIS_FIXTURES:
        found.add("redis")
    if item.path.name.startswith("test_browser") or fixtures & BROWSER_FIXTURES:
        found.add("browser")
    if fixtures & WORKER_FIXTURES:
        found.add("workers")
    return found


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for name in sorted(needs(item) - {mark.name for mark in item.iter_markers()}):
            item.add_marker(name)
