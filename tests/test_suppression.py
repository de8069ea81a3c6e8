"""The suppression list keeps its stored source strings; an unknown source is refused."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dripcare import suppression
from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.models import Suppression, SuppressionSource
from tests.factories import make_clinic


def test_sources_are_stored_as_the_same_strings_as_before(settings: Settings) -> None:
    clinic = make_clinic()
    entries = [
        suppression.Entry(clinic, "a@example.com", "hard bounce", SuppressionSource.BOUNCE),
        suppression.Entry(clinic, "b@example.com", "spam report", "complaint"),  # type: ignore[arg-type]
    ]
    with session_scope() as session:
        suppression.add(session, entries)
    with session_scope() as session:
        stored = session.execute(select(Suppression.email, Suppression.source)).all()

    assert sorted(stored) == [("a@example.com", "bounce"), ("b@example.com", "complaint")]
    assert {s.value for s in SuppressionSource} >= {
        "bounce",
        "complaint",
        "unsubscribe",
        "one-click",
        "web",
        "mailto",
        "preferences",
        "erasure",
    }


def test_an_unknown_source_is_refused(settings: Settings) -> None:
    clinic = make_clinic()
    with session_scope() as session, pytest.raises(ValueError, match="not a valid"):
        suppression.add(session, [suppression.Entry(clinic, "c@example.com", "?", "typo")])  # type: ignore[arg-type]
