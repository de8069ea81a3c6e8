"""Bringing active enrollments in line with a newly published campaign version."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from dripcare.config import Settings
from dripcare.content.campaigns import timing_of
from dripcare.models import (
    RESCHEDULABLE,
    Campaign,
    Clinic,
    Enrollment,
    EnrollmentStatus,
    Message,
    Step,
    StopCause,
)
from dripcare.outbox.enrollment_changes import replace_unsent
from dripcare.outbox.message_ids import sender_domain
from dripcare.outbox.message_lifecycle import stop_unsent
from dripcare.outbox.outbox_rows import message_row, placement, step_due
from dripcare.people.clinics import get_clinic
from dripcare.sending.send_rules import quiet_hours_of


@dataclass
class FollowResult:
    cancelled: int = 0
    retimed: int = 0
    added: int = 0


def follow_campaign_change(
    session: Session,
    campaign: Campaign,
    *,
    removed: list[Step],
    retimed: list[Step],
    added: list[Step],
    settings: Settings,
    now: datetime,
) -> FollowResult:
    """Bring active enrollments' unsent messages in line with a newly published version.

    A removed step's unsent messages are cancelled. A step whose timing changed moves its
    unsent messages, as a reschedule does (one more than the grace period late is skipped).
    A new step gets a message only where its time is still ahead: it is never sent late in a
    burst to patients already past it. Messages already sending or sent are never touched.
    """
    result = FollowResult()
    for step in removed:
        result.cancelled += stop_unsent(
            session,
            Message.step_id == step.id,
            StopCause.STEP_REMOVED,
            f"step {step.key!r} removed in version {campaign.version}",
        )
    active = select(Enrollment).where(
        Enrollment.campaign_id == campaign.id, Enrollment.status == EnrollmentStatus.ACTIVE
    )
    if retimed:
        pairs = session.execute(
            select(Enrollment, Message)
            .join(Message, Message.enrollment_id == Enrollment.id)
            .where(
                Enrollment.campaign_id == campaign.id,
                Enrollment.status == EnrollmentStatus.ACTIVE,
                Message.step_id.in_([s.id for s in retimed]),
                Message.status.in_(RESCHEDULABLE),
            )
        ).all()
        result.retimed = replace_unsent(session, [(e, m) for e, m in pairs], settings, now)
    if added:
        clinic = get_clinic(session, campaign.clinic_id)
        for enrollment in session.scalars(active):
            result.added += _add_steps(session, clinic, enrollment, added, settings, now)
    session.flush()
    return result


def _add_steps(
    session: Session,
    clinic: Clinic,
    enrollment: Enrollment,
    steps: list[Step],
    settings: Settings,
    now: datetime,
) -> int:
    have = set(
        session.scalars(select(Message.step_id).where(Message.enrollment_id == enrollment.id))
    )
    domain = sender_domain(clinic.sender_email)
    rows = []
    for step in steps:
        if step.late_booking:  # it stands in for emails missed at enrollment: only then
            continue
        timing = timing_of(step)
        due = step_due(enrollment, timing, settings, quiet_hours_of(clinic, settings))
        if step.id not in have and due >= now:
            place = placement(due, now, settings, timing, enrollment.treated_at)
            rows.append(message_row(enrollment.clinic_id, enrollment.id, domain, step.id, place))
    if rows:
        session.execute(insert(Message), rows)
    return len(rows)
