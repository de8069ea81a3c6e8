"""The per-clinic list of addresses that must not be emailed again, and how they get there.

Bounces and unsubscribes both land here; the send path re-checks the list under its claim, so
a message already queued when someone unsubscribes is cancelled, not sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dripcare.models import (
    Enrollment,
    Message,
    MessageStatus,
    Patient,
    Suppression,
    utcnow,
)


@dataclass(frozen=True)
class Entry:
    clinic_id: int
    email: str
    reason: str
    source: str  # bounce | one-click | web | mailto


def add(session: Session, entries: list[Entry], now: datetime | None = None) -> None:
    """Idempotent: an address already on the list keeps its first reason and time."""
    if not entries:
        return
    now = now or utcnow()
    rows = {
        (e.clinic_id, e.email): {
            "clinic_id": e.clinic_id,
            "email": e.email,
            "reason": e.reason[:300],
            "source": e.source,
            "created_at": now,
        }
        for e in entries
    }
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(Suppression).on_conflict_do_nothing(
        index_elements=["clinic_id", "email"]
    )
    session.execute(statement, list(rows.values()))


@dataclass(frozen=True)
class Unsubscribed:
    clinic_id: int
    cancelled: int


def unsubscribe_by_message(session: Session, message_pk: int, source: str) -> Unsubscribed | None:
    """Stop every email of this message's clinic to its recipient; None if no such message."""
    found = session.execute(
        select(Message.clinic_id, Patient.email, Patient.id)
        .join(Enrollment, Message.enrollment_id == Enrollment.id)
        .join(Patient, Enrollment.patient_id == Patient.id)
        .where(Message.id == message_pk)
    ).first()
    if found is None:
        return None
    clinic_id, email, patient_id = found
    add(session, [Entry(clinic_id, email, "unsubscribed", source)])
    return Unsubscribed(clinic_id, _cancel_unsent(session, patient_id, "unsubscribed"))


def _cancel_unsent(session: Session, patient_id: int, reason: str) -> int:
    enrollment_ids = select(Enrollment.id).where(Enrollment.patient_id == patient_id)
    result = session.execute(
        update(Message)
        .where(
            Message.enrollment_id.in_(enrollment_ids),
            Message.status.in_([MessageStatus.SCHEDULED, MessageStatus.QUEUED]),
        )
        .values(
            status=MessageStatus.CANCELLED,
            status_reason=reason,
            lease_token=None,
            lease_until=None,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0  # type: ignore[attr-defined]


def is_suppressed(session: Session, clinic_id: int, email: str) -> bool:
    return (
        session.scalar(
            select(Suppression.id).where(
                Suppression.clinic_id == clinic_id, Suppression.email == email
            )
        )
        is not None
    )


def resubscribe(session: Session, clinic_id: int, patient: Patient, now: datetime) -> int:
    """Lift the suppression; emails cancelled by the unsubscribe that are still ahead come back.

    A hard bounce is lifted too: the patient says the address works. Returns how many emails
    were put back on the schedule.
    """
    session.execute(
        delete(Suppression).where(
            Suppression.clinic_id == clinic_id, Suppression.email == patient.email
        )
    )
    enrollment_ids = select(Enrollment.id).where(
        Enrollment.patient_id == patient.id, Enrollment.status == "active"
    )
    result = session.execute(
        update(Message)
        .where(
            Message.enrollment_id.in_(enrollment_ids),
            Message.status == MessageStatus.CANCELLED,
            Message.status_reason == "unsubscribed",
            Message.due_at > now,
        )
        .values(status=MessageStatus.SCHEDULED, status_reason="", updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0  # type: ignore[attr-defined]
