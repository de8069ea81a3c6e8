"""Conditions the clinic marks on an enrollment that make some steps pointless.

A step lists them in `campaign.toml` (`skip_if = ["next_session_booked"]`). Marking one skips
the unsent emails of those steps, with the reason shown; unmarking it before they are due
puts them back. The send path asks `skipped_by` again under its claim, so a mark made while
an email is being claimed still stops it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class SkipCondition(enum.StrEnum):
    NEXT_SESSION_BOOKED = "next_session_booked"  # the clinic booked the next session
    ONE_OFF = "one_off"  # the clinic marked the treatment as a one-off (no series)


# What `status_reason` says on an email a condition skipped.
SKIP_REASONS = {
    SkipCondition.NEXT_SESSION_BOOKED: "skipped: the next session is booked",
    SkipCondition.ONE_OFF: "skipped: the clinic marked this treatment as a one-off",
}


@dataclass(frozen=True)
class Marks:
    """What the clinic has marked on one enrollment (models.Enrollment has the same names)."""

    next_session_booked_at: datetime | None = None
    one_off: bool = False

    def holds(self, condition: SkipCondition) -> bool:
        if condition is SkipCondition.NEXT_SESSION_BOOKED:
            return self.next_session_booked_at is not None
        return self.one_off


class Marked(Protocol):
    """An enrollment, or the send path's light copy of one (message_view.Treatment)."""

    @property
    def next_session_booked_at(self) -> datetime | None: ...
    @property
    def one_off(self) -> bool: ...


def marks_of(enrollment: Marked) -> Marks:
    return Marks(enrollment.next_session_booked_at, bool(enrollment.one_off))


def parse_conditions(value: object) -> tuple[SkipCondition, ...]:
    """A step's `skip_if`, strictly: an unknown name must not silently never skip."""
    known = ", ".join(repr(c.value) for c in SkipCondition)
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"skip_if must be a list of names such as [{known}], got {value!r}")
    unknown = [v for v in value if v not in SkipCondition.__members__.values()]
    if unknown:
        raise ValueError(f"skip_if: unknown condition(s) {unknown}; known: {known}")
    return tuple(SkipCondition(v) for v in value)


def skipped_by(conditions: Iterable[str], marks: Marks) -> SkipCondition | None:
    """The first of a step's conditions that the enrollment's marks make true, if any."""
    return next((c for c in map(SkipCondition, conditions) if marks.holds(c)), None)
