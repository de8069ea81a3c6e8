"""The per-clinic list of addresses that must not be emailed again, and how they get there.

Bounces and unsubscribes both land here; the send path re-checks the list under its claim, so
a message already queued when someone unsubscribes is cancelled, not sent. Patients'
unsubscribes and resubscribes are also kept as history (`SubscriptionEvent`), which outlives
the suppression row a resubscribe deletes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from dripcare.models import (
    Enrollment,
    EnrollmentStatus,
    Message,
    Patient,
    StopCause,
    SubscriptionChange,
    SubscriptionEvent,
    Suppression,
    SuppressionSource,
    utcnow,
)
from dripcare.outbox.message_lifecycle import restore, stop_unsent
from dripcare.sending.unreachable import STOPPED

# What a resubscribe undoes: emails stopped by an unsubscribe, a bounce or a complaint
# (feedback.py). The patient says they want the emails, at an address that works.
RESUBSCRIBE_RESTORES = (StopCause.UNSUBSCRIBED, *STOPPED.values())


@dataclass(frozen=True)
class Entry:
    clinic_id: int
    email: str
    reason: str
    source: SuppressionSource


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
            "source": SuppressionSource(e.source).value,  # refuses an unknown source
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
    replay: bool = False  # a replayed one-click POST, ignored: the patient has resubscribed


@dataclass(frozen=True)
class _Recipient:
    clinic_id: int
    email: str
    patient_id: int


def _recipient(session: Session, message_pk: int) -> _Recipient | None:
    found = session.execute(
        select(Message.clinic_id, Patient.email, Patient.id)
        .join(Enrollment, Message.enrollment_id == Enrollment.id)
        .join(Patient, Enrollment.patient_id == Patient.id)
        .where(Message.id == message_pk)
    ).first()
    return _Recipient(*found) if found is not None else None


def unsubscribe_by_message(
    session: Session, message_pk: int, source: SuppressionSource
) -> Unsubscribed | None:
    """Stop every email of this message's clinic to its recipient; None if no such message."""
    recipient = _recipient(session, message_pk)
    if recipient is None:
        return None
    return _unsubscribe(session, recipient, message_pk, source)


def one_click(session: Session, message_pk: int) -> Unsubscribed | None:
    """The RFC 8058 POST: unsubscribe at once, unless it replays a link the patient undid.

    Mail providers and link scanners replay POSTs. Once this message's link has unsubscribed
    the patient and the patient has resubscribed since, a POST to it again is recorded and
    ignored, so the explicit resubscription stands. A person can still unsubscribe with the
    button on that link's page, or through any other email's link.
    """
    recipient = _recipient(session, message_pk)
    if recipient is None:
        return None
    if _undone_by_resubscribe(session, recipient.patient_id, message_pk):
        _record(
            session,
            recipient,
            message_pk,
            SubscriptionChange.REPLAY_IGNORED,
            SuppressionSource.ONE_CLICK,
        )
        return Unsubscribed(recipient.clinic_id, 0, replay=True)
    return _unsubscribe(session, recipient, message_pk, SuppressionSource.ONE_CLICK)


def _unsubscribe(
    session: Session, recipient: _Recipient, message_pk: int, source: SuppressionSource
) -> Unsubscribed:
    add(session, [Entry(recipient.clinic_id, recipient.email, "unsubscribed", source)])
    _record(session, recipient, message_pk, SubscriptionChange.UNSUBSCRIBED, source)
    cancelled = cancel_unsent(session, recipient.patient_id, StopCause.UNSUBSCRIBED)
    return Unsubscribed(recipient.clinic_id, cancelled)


def _undone_by_resubscribe(session: Session, patient_id: int, message_pk: int) -> bool:
    used, undone = aliased(SubscriptionEvent), aliased(SubscriptionEvent)
    resubscribed_after = (
        select(undone.id)
        .where(
            undone.patient_id == patient_id,
            undone.change == SubscriptionChange.RESUBSCRIBED,
            undone.id > used.id,
        )
        .exists()
    )
    query = select(used.id).where(
        used.message_pk == message_pk,
        used.change == SubscriptionChange.UNSUBSCRIBED,
        resubscribed_after,
    )
    return session.scalar(query.limit(1)) is not None


def _record(
    session: Session,
    recipient: _Recipient,
    message_pk: int | None,
    change: SubscriptionChange,
    source: SuppressionSource,
) -> None:
    session.add(
        SubscriptionEvent(
            clinic_id=recipient.clinic_id,
            patient_id=recipient.patient_id,
            message_pk=message_pk,
            change=change,
            source=source,
            at=utcnow(),
        )
    )
    session.flush()


def cancel_unsent(session: Session, patient_id: int, cause: StopCause) -> int:
    """Stop every unsent message to this patient, whatever the enrollment."""
    enrollment_ids = select(Enrollment.id).where(Enrollment.patient_id == patient_id)
    return stop_unsent(session, Message.enrollment_id.in_(enrollment_ids), cause)


def hashed(email: str) -> str:
    """How an erased patient's address stays on the list: it matches the address, but the
    list no longer shows it (a SHA-256 cannot be read back; only a guess can be confirmed)."""
    return "sha256:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()


def keys(email: str) -> tuple[str, str]:
    """What an address is listed as: itself, or its hash once its patient was erased."""
    return email, hashed(email)


def keep_hashed(session: Session, clinic_id: int, email: str, now: datetime) -> None:
    """Replace the address by its hash on the list, adding it if it was not there: a patient
    erased on request is never mailed again, even if enrolled again with the same address."""
    session.execute(
        delete(Suppression).where(Suppression.clinic_id == clinic_id, Suppression.email == email)
    )
    add(
        session,
        [Entry(clinic_id, hashed(email), "patient erased on request", SuppressionSource.ERASURE)],
        now,
    )


def is_suppressed(session: Session, clinic_id: int, email: str) -> bool:
    return (
        session.scalar(
            select(Suppression.id)
            .where(Suppression.clinic_id == clinic_id, Suppression.email.in_(keys(email)))
            .limit(1)
        )
        is not None
    )


def resubscribe(
    session: Session,
    clinic_id: int,
    patient: Patient,
    now: datetime,
    message_pk: int | None = None,
    source: SuppressionSource = SuppressionSource.PREFERENCES,
) -> int:
    """Lift the suppression; emails cancelled by it (unsubscribe, bounce, complaint) that are
    still ahead come back.

    A hard bounce is lifted too: the patient says the address works. Returns how many emails
    were put back on the schedule.
    """
    lifted = session.execute(
        delete(Suppression).where(
            Suppression.clinic_id == clinic_id, Suppression.email == patient.email
        )
    )
    if lifted.rowcount:  # type: ignore[attr-defined]
        recipient = _Recipient(clinic_id, patient.email, patient.id)
        _record(session, recipient, message_pk, SubscriptionChange.RESUBSCRIBED, source)
    enrollment_ids = select(Enrollment.id).where(
        Enrollment.patient_id == patient.id, Enrollment.status == EnrollmentStatus.ACTIVE
    )
    stopped_here = Message.enrollment_id.in_(enrollment_ids)
    return sum(restore(session, stopped_here, cause, now) for cause in RESUBSCRIBE_RESTORES)
