"""Stopping and restoring unsent messages: the cause is recorded, and only that cause undoes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import select, update

from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.migrations import alembic_config
from dripcare.models import Message, MessageStatus, Patient, StopCause, utcnow
from dripcare.outbox import suppression
from dripcare.outbox.enrollment_changes import cancel, resume
from dripcare.outbox.enrollment_queries import get_enrollment
from dripcare.outbox.message_lifecycle import stop_unsent
from tests.factories import make_clinic, make_enrollment


def causes(enrollment_id: int) -> set[tuple[MessageStatus, StopCause | None]]:
    with session_scope() as session:
        rows = session.execute(
            select(Message.status, Message.stop_cause).where(Message.enrollment_id == enrollment_id)
        )
        return {(status, cause) for status, cause in rows}


def test_a_patients_stop_is_resumed_by_its_cause_not_by_the_words_shown(
    settings: Settings,
) -> None:
    clinic = make_clinic()
    enrollment = make_enrollment(settings, clinic, datetime.now(UTC) - timedelta(hours=1))
    with session_scope() as session:
        cancel(session, get_enrollment(session, enrollment), StopCause.PATIENT)
        session.execute(
            update(Message)
            .where(Message.enrollment_id == enrollment)
            .values(status_reason="reworded by a later release")
        )

    with session_scope() as session:
        restored = resume(session, get_enrollment(session, enrollment))

    assert restored > 0
    assert causes(enrollment) == {(MessageStatus.SCHEDULED, None)}


def test_resubscribing_restores_what_the_unsubscribe_stopped_and_nothing_else(
    settings: Settings,
) -> None:
    clinic = make_clinic()
    enrollment = make_enrollment(settings, clinic, datetime.now(UTC) - timedelta(hours=1))
    with session_scope() as session:
        last = session.scalars(
            select(Message.id).where(Message.enrollment_id == enrollment).order_by(Message.due_at)
        ).all()[-1]
        stop_unsent(session, Message.id == last, StopCause.STEP_REMOVED, "step removed")
        patient_id = get_enrollment(session, enrollment).patient_id
        suppression.cancel_unsent(session, patient_id, StopCause.UNSUBSCRIBED)
    stopped = causes(enrollment)
    with session_scope() as session:
        patient = session.get(Patient, patient_id)
        assert patient is not None
        suppression.resubscribe(session, clinic, patient, utcnow())

    assert stopped == {
        (MessageStatus.CANCELLED, StopCause.UNSUBSCRIBED),
        (MessageStatus.CANCELLED, StopCause.STEP_REMOVED),
    }
    assert causes(enrollment) == {
        (MessageStatus.SCHEDULED, None),
        (MessageStatus.CANCELLED, StopCause.STEP_REMOVED),
    }


def test_the_migration_gives_existing_rows_their_cause_from_their_words(
    settings: Settings,
) -> None:
    clinic = make_clinic()
    treated = datetime.now(UTC) - timedelta(hours=1)
    by_patient = make_enrollment(settings, clinic, treated, email="a@example.com")
    by_clinic = make_enrollment(settings, clinic, treated, email="b@example.com")
    with session_scope() as session:
        cancel(session, get_enrollment(session, by_patient), StopCause.PATIENT)
        cancel(session, get_enrollment(session, by_clinic))
    config = alembic_config()

    command.downgrade(config, "5d1e0a7c9b42")
    command.upgrade(config, "head")

    assert causes(by_patient) == {(MessageStatus.CANCELLED, StopCause.PATIENT)}
    assert causes(by_clinic) == {(MessageStatus.CANCELLED, StopCause.CLINIC)}
