"""`dripcare enrollment next-session-booked|one-off ID [--undo]`: the clinic's marks that skip
steps (skip_conditions.py), the same function the API and the admin button call."""

from __future__ import annotations

import click

from dripcare.cli_common import emit, json_option, user_errors
from dripcare.config import get_settings
from dripcare.db import session_scope
from dripcare.outbox.enrollment_marks import set_mark
from dripcare.outbox.enrollment_queries import get_enrollment
from dripcare.outbox.skip_conditions import SkipCondition


@click.group()
def enrollment() -> None:
    """Mark what the clinic knows about an enrollment."""


def _mark(enrollment_id: int, condition: SkipCondition, undo: bool, as_json: bool) -> None:
    with session_scope() as session:
        changed = set_mark(
            session, get_enrollment(session, enrollment_id), condition, not undo, get_settings()
        )
    what = "put back" if undo else "skipped"
    emit(
        as_json,
        {"id": enrollment_id, "condition": condition.value, "marked": not undo, what: changed},
        f"enrollment {enrollment_id}: {condition.value} {'unmarked' if undo else 'marked'}; "
        f"{changed} emails {what}",
    )


@enrollment.command("next-session-booked")
@click.argument("enrollment_id", type=int)
@click.option("--undo", is_flag=True, help="Unmark: put back the emails still due.")
@json_option
@user_errors
def next_session_booked(enrollment_id: int, undo: bool, as_json: bool) -> None:
    """The next session is booked: skip the booking reminder (steps with that skip_if)."""
    _mark(enrollment_id, SkipCondition.NEXT_SESSION_BOOKED, undo, as_json)


@enrollment.command("one-off")
@click.argument("enrollment_id", type=int)
@click.option("--undo", is_flag=True, help="Unmark: put back the emails still due.")
@json_option
@user_errors
def one_off(enrollment_id: int, undo: bool, as_json: bool) -> None:
    """The treatment is a one-off: skip the steps with skip_if = ["one_off"]."""
    _mark(enrollment_id, SkipCondition.ONE_OFF, undo, as_json)
