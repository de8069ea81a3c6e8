"""Reading enrollments: one by id (within a clinic), a sequence's timeline, a clinic's list."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from dripcare.errors import NotFound
from dripcare.models import Enrollment, EnrollmentStatus, Message


def get_enrollment(
    session: Session, enrollment_id: int, clinic_id: int | None = None
) -> Enrollment:
    enrollment = session.get(Enrollment, enrollment_id)
    if enrollment is None or (clinic_id is not None and enrollment.clinic_id != clinic_id):
        raise NotFound(f"no enrollment with id {enrollment_id}")
    return enrollment


def timeline(session: Session, enrollment: Enrollment) -> list[Message]:
    """The sequence in sending order, each message with its step."""
    return list(
        session.scalars(
            select(Message)
            .where(Message.enrollment_id == enrollment.id)
            .options(joinedload(Message.step))
            .order_by(Message.due_at, Message.id)
        )
    )


def list_enrollments(
    session: Session,
    clinic_id: int,
    *,
    status: EnrollmentStatus | None = None,
    patient_id: int | None = None,
    after_id: int = 0,
    limit: int = 50,
) -> list[Enrollment]:
    query = select(Enrollment).where(Enrollment.clinic_id == clinic_id, Enrollment.id > after_id)
    if status is not None:
        query = query.where(Enrollment.status == status)
    if patient_id is not None:
        query = query.where(Enrollment.patient_id == patient_id)
    return list(session.scalars(query.order_by(Enrollment.id).limit(limit)))
