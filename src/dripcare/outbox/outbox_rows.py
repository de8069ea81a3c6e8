"""An enrollment's outbox rows: where each step lands (due time, or skipped as too late) and
the one INSERT that writes them all.

Enrolling, bulk enrolling and a campaign's new steps all write rows through `message_row`, so
every row gets its own fixed Message-ID the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import (
    JSON,
    DateTime,
    Integer,
    String,
    Table,
    bindparam,
    column,
    func,
    insert,
    select,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.engine import Connection, Result
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from dripcare.config import Settings
from dripcare.content.campaigns import CampaignPlan, PlannedStep
from dripcare.models import Enrollment, Message, MessageStatus, StopCause
from dripcare.outbox import pre_care
from dripcare.outbox.message_ids import new_message_id, sender_domain
from dripcare.outbox.message_lifecycle import REASONS
from dripcare.outbox.scheduling import QuietHours, StepTiming, compute_due_at
from dripcare.sending.send_rules import late_window, pre_care_too_late, too_late

REASON_LATE = REASONS[StopCause.LATE]


@dataclass(frozen=True)
class ScheduledMessage:
    """An outbox row as enrolling wrote it: enough to answer without reading it back."""

    id: int
    step_key: str
    due_at: datetime
    status: MessageStatus
    status_reason: str
    attempts: int = 0
    sent_at: datetime | None = None


@dataclass(frozen=True)
class Placement:
    """Where one step lands: its due time, and scheduled or skipped (with why)."""

    due_at: datetime
    status: MessageStatus
    status_reason: str
    cause: StopCause | None = None


# Core inserts on the table: the ORM's bulk path would process every row's values again.
_MESSAGES = cast(Table, Message.__table__)
_NEW_MESSAGES = insert(_MESSAGES).returning(_MESSAGES.c.step_id, _MESSAGES.c.id)
# PostgreSQL takes the rows as one JSON parameter, whatever the campaign's length: the
# statement is prepared once per connection instead of parsed and planned per enrollment, and
# json.dumps costs far less than binding 7 rows of parameters (or psycopg's array adapters).
_PER_ROW: dict[str, TypeEngine[Any]] = {
    "step_id": Integer(),
    "message_id": String(),
    "due_at": DateTime(timezone=True),
    "status": String(),
    "status_reason": String(),
    "stop_cause": String(),
}
_STEP_ROWS = (
    func.json_to_recordset(sql_cast(bindparam("rows", type_=String), JSON))
    .table_valued(*(column(name, type_) for name, type_ in _PER_ROW.items()))
    .render_derived("step_rows", with_types=True)
)
_NEW_MESSAGES_PG = (
    insert(_MESSAGES)
    .from_select(
        [*_PER_ROW, "clinic_id", "enrollment_id"],
        select(
            *_STEP_ROWS.c,
            bindparam("clinic_id", type_=Integer),
            bindparam("enrollment_id", type_=Integer),
        ),
    )  # the columns' Python defaults (attempts, created_at, ...) are added as parameters
    .returning(_MESSAGES.c.step_id, _MESSAGES.c.id)
)


def materialize(
    session: Session,
    enrollment: Enrollment,
    plan: CampaignPlan,
    sender_email: str,
    settings: Settings,
    now: datetime,
    quiet: QuietHours | None = None,
) -> list[ScheduledMessage]:
    """One outbox row per active step, each with its own fixed Message-ID; one INSERT.

    The late_booking step, if any, is placed last: it depends on the others (pre_care.py).
    """
    domain = sender_domain(sender_email)
    placed = placements(plan, enrollment.treated_at, enrollment.timezone, settings, now, quiet)
    merged = next((s for s in plan.steps if s.late_booking), None)
    if merged is not None:
        placed.append((merged, _late_booking(enrollment, placed, settings, now, quiet)))
    if not placed:
        return []
    rows = [_message_row(enrollment, domain, step.id, place) for step, place in placed]
    # RETURNING in any order, matched by step: cheaper than asking the database to keep order
    ids = {step_id: id for step_id, id in _insert_messages(session.connection(), rows)}
    return [
        ScheduledMessage(ids[step.id], step.key, place.due_at, place.status, place.status_reason)
        for step, place in placed
    ]


def placements(
    plan: CampaignPlan,
    treated_at: datetime,
    zone: str,
    settings: Settings,
    now: datetime,
    quiet: QuietHours | None = None,
) -> list[tuple[PlannedStep, Placement]]:
    """Each active step's due time and status for a treatment at `treated_at` in `zone`, but
    the late_booking step's, which depends on the others."""
    patient_zone, rules = ZoneInfo(zone), quiet or settings.quiet
    return [
        (
            step,
            placement(
                compute_due_at(treated_at, step.timing, patient_zone, rules),
                now,
                settings,
                step.timing,
                treated_at,
            ),
        )
        for step in plan.steps
        if not step.late_booking  # placed after the others: materialize, pre_care.py
    ]


def _late_booking(
    enrollment: Enrollment,
    placed: Iterable[tuple[PlannedStep, Placement]],
    settings: Settings,
    now: datetime,
    quiet: QuietHours | None,
) -> Placement:
    """The merged email's row; the enrollment remembers what it lists."""
    missed = pre_care.missed_stop_now((s.key, s.stop_now, p.cause) for s, p in placed)
    zone = ZoneInfo(enrollment.timezone)
    merged = pre_care.late_booking(
        missed, enrollment.treated_at, now, quiet or settings.quiet, zone
    )
    if merged.missed or enrollment.missed_steps:
        enrollment.missed_steps = merged.missed
    return Placement(merged.due_at, merged.status, merged.status_reason, merged.cause)


def _message_row(
    enrollment: Enrollment, domain: str, step_id: int, place: Placement
) -> dict[str, Any]:
    return message_row(enrollment.clinic_id, enrollment.id, domain, step_id, place)


def message_row(
    clinic_id: int, enrollment_id: int, domain: str, step_id: int, place: Placement
) -> dict[str, Any]:
    """An outbox row's values as enrolling writes them, with its own fixed Message-ID."""
    return {
        "clinic_id": clinic_id,
        "enrollment_id": enrollment_id,
        "step_id": step_id,
        "message_id": new_message_id(domain),
        "attempts": 0,
        "due_at": place.due_at,
        "status": place.status,
        "status_reason": place.status_reason,
        "stop_cause": place.cause,
    }


def _insert_messages(connection: Connection, rows: list[dict[str, Any]]) -> Result[int, int]:
    """One INSERT of an enrollment's messages, RETURNING (step_id, id) in any order."""
    if connection.dialect.name != "postgresql":
        return connection.execute(_NEW_MESSAGES, rows)
    values = [{name: row[name] for name in _PER_ROW} for row in rows]
    shared = {"clinic_id": rows[0]["clinic_id"], "enrollment_id": rows[0]["enrollment_id"]}
    return connection.execute(
        _NEW_MESSAGES_PG, {**shared, "rows": json.dumps(values, default=datetime.isoformat)}
    )


def step_due(
    enrollment: Enrollment, timing: StepTiming, settings: Settings, quiet: QuietHours | None = None
) -> datetime:
    """`quiet`: the clinic's quiet hours (send_rules.quiet_hours_of), else the global ones."""
    return compute_due_at(
        enrollment.treated_at, timing, ZoneInfo(enrollment.timezone), quiet or settings.quiet
    )


def placement(
    due_at: datetime, now: datetime, settings: Settings, timing: StepTiming, treated_at: datetime
) -> Placement:
    """Schedule, or skip when it is already too late for this email to make sense.

    The same rule the send path applies (send_rules.py): the step's send_until, else
    DRIPCARE_LATE_GRACE_HOURS; and a pre-care email never once the treatment time is reached."""
    late = too_late(due_at, late_window(timing, settings), now)
    if late or pre_care_too_late(timing, treated_at, now):
        return Placement(due_at, MessageStatus.SKIPPED, REASON_LATE, StopCause.LATE)
    return Placement(due_at, MessageStatus.SCHEDULED, "")
