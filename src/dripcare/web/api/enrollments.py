"""/api/v1/enrollments: the same domain functions as the CLI, one clinic's view."""

from __future__ import annotations

from datetime import date, datetime

from fastapi import APIRouter, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from dripcare.config import get_settings
from dripcare.errors import UserError
from dripcare.models import Enrollment, EnrollmentStatus
from dripcare.outbox.bulk_enroll import enroll_many
from dripcare.outbox.enrollment_changes import cancel, reschedule
from dripcare.outbox.enrollment_input import EnrollRequest
from dripcare.outbox.enrollment_marks import set_mark
from dripcare.outbox.enrollment_queries import get_enrollment, list_enrollments, timeline
from dripcare.outbox.enrollments import EnrollResult, enroll
from dripcare.outbox.skip_conditions import SkipCondition
from dripcare.outbox.treatment_time import DATE_ONLY_TIME
from dripcare.people.patients import get_patient, not_erased
from dripcare.web.deps import ApiRoute, ClinicDep, IdempotencyKey, SessionDep
from dripcare.web.errors import COMMON_RESPONSES, IDEMPOTENT_POST, NOT_FOUND
from dripcare.web.idempotency import respond
from dripcare.web.pagination import Cursor, Id, IdFilter, Limit, page_of
from dripcare.web.schemas import (
    BulkEnrollmentIn,
    BulkItemResult,
    BulkOut,
    EnrollmentIn,
    EnrollmentOut,
    EnrollmentPatch,
    Page,
)
from dripcare.web.serialize import enrollment_out

router = APIRouter(
    prefix="/enrollments", tags=["enrollments"], responses=COMMON_RESPONSES, route_class=ApiRoute
)


def _treated_at(value: date | datetime) -> str | datetime:
    if isinstance(value, datetime):
        return value
    return datetime.combine(value, DATE_ONLY_TIME).isoformat()


def _request(session: Session, clinic: int, payload: EnrollmentIn) -> EnrollRequest:
    if isinstance(payload.patient, int):
        patient = not_erased(get_patient(session, clinic, payload.patient))
        email, first, last, locale = (
            patient.email,
            patient.first_name,
            patient.last_name,
            patient.locale,
        )
        zone, phone = payload.timezone, ""
    else:
        email, first, last = (
            payload.patient.email,
            payload.patient.first_name,
            payload.patient.last_name,
        )
        locale, phone = payload.patient.locale, payload.patient.phone
        zone = payload.timezone or payload.patient.timezone
    return EnrollRequest(
        clinic_id=clinic,
        email=email,
        first_name=first,
        last_name=last,
        campaign=payload.campaign,
        treated_at=_treated_at(payload.treated_at),
        timezone=zone,
        external_id=payload.external_id,
        locale=locale,
        phone=phone,
        attributes=dict(payload.treatment_attributes),
    )


def _out(session: Session, enrollment: Enrollment) -> EnrollmentOut:
    return enrollment_out(enrollment, timeline(session, enrollment))


def _result_out(session: Session, result: EnrollResult, campaign: str | None) -> EnrollmentOut:
    """A new sequence is answered from the rows just written, without reading them back."""
    if result.messages is None:
        return _out(session, result.enrollment)
    in_order = sorted(result.messages, key=lambda m: (m.due_at, m.id))
    return enrollment_out(result.enrollment, in_order, campaign)


@router.post(
    "",
    operation_id="createEnrollment",
    summary="Enroll a treatment",
    status_code=201,
    response_model=EnrollmentOut,
    responses={
        200: {"model": EnrollmentOut, "description": "Enrolled already"},
        **NOT_FOUND,
        **IDEMPOTENT_POST,
    },
)
def create(
    payload: EnrollmentIn,
    clinic: ClinicDep,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Enroll a treatment: every email of the sequence is scheduled at once and returned.

    Posting the same `external_id` again returns the existing enrollment with status 200.
    A new treatment of the same kind for the same patient replaces the older sequence.
    """

    def run() -> tuple[int, EnrollmentOut]:
        result = enroll(session, _request(session, clinic, payload), get_settings())
        return (201 if result.created else 200), _result_out(session, result, payload.campaign)

    return respond(session, clinic, idempotency_key, "POST /enrollments", payload, run)


@router.post(
    ":bulk",
    operation_id="createEnrollments",
    response_model=BulkOut,
    responses=IDEMPOTENT_POST,
    summary="Enroll many at once",
)
def create_many(
    payload: BulkEnrollmentIn,
    clinic: ClinicDep,
    session: SessionDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Enroll many at once. Each item succeeds or fails on its own; results keep the order."""

    def run() -> tuple[int, BulkOut]:
        return 200, BulkOut(data=_many(session, clinic, payload.items))

    return respond(session, clinic, idempotency_key, "POST /enrollments:bulk", payload, run)


def _many(session: Session, clinic: int, items: list[EnrollmentIn]) -> list[BulkItemResult]:
    """The CSV import's path (bulk_enroll.enroll_many); an item naming an unknown patient
    fails alone."""
    results: dict[int, BulkItemResult] = {}
    indexed: list[tuple[int, EnrollmentIn, EnrollRequest]] = []
    for index, item in enumerate(items):
        try:
            indexed.append((index, item, _request(session, clinic, item)))
        except UserError as exc:
            results[index] = BulkItemResult(index=index, status="error", error=str(exc))
    outcomes = enroll_many(session, [request for _, _, request in indexed], get_settings(), None)
    wanted = [o.enrollment_id for o in outcomes if not isinstance(o, UserError)]
    loaded = {e.id: e for e in session.scalars(select(Enrollment).where(Enrollment.id.in_(wanted)))}
    for (index, item, _), outcome in zip(indexed, outcomes, strict=True):
        if isinstance(outcome, UserError):
            results[index] = BulkItemResult(index=index, status="error", error=str(outcome))
            continue
        result = EnrollResult(loaded[outcome.enrollment_id], outcome.created, [], outcome.messages)
        results[index] = BulkItemResult(
            index=index,
            status="created" if outcome.created else "existing",
            enrollment=_result_out(session, result, item.campaign),
        )
    return [results[index] for index in range(len(items))]


@router.get(
    "",
    operation_id="listEnrollments",
    response_model=Page[EnrollmentOut],
    summary="List enrollments",
)
def search(
    clinic: ClinicDep,
    session: SessionDep,
    cursor: Cursor = None,
    status: EnrollmentStatus | None = None,
    patient_id: IdFilter = None,
    limit: Limit = 50,
) -> Page[EnrollmentOut]:
    rows = list_enrollments(
        session, clinic, status=status, patient_id=patient_id, after_id=cursor or 0, limit=limit + 1
    )
    return page_of([_out(session, e) for e in rows], limit)


@router.get(
    "/{enrollment_id}",
    operation_id="getEnrollment",
    response_model=EnrollmentOut,
    responses=NOT_FOUND,
    summary="An enrollment and its timeline",
)
def read(enrollment_id: Id, clinic: ClinicDep, session: SessionDep) -> EnrollmentOut:
    """The timeline: every message with its due time (UTC and local) and status."""
    return _out(session, get_enrollment(session, enrollment_id, clinic))


@router.post(
    "/{enrollment_id}/cancel",
    operation_id="cancelEnrollment",
    response_model=EnrollmentOut,
    responses=NOT_FOUND,
    summary="Cancel an enrollment",
)
def cancel_one(enrollment_id: Id, clinic: ClinicDep, session: SessionDep) -> EnrollmentOut:
    """Stop every unsent message. Cancelling twice is harmless."""
    enrollment = get_enrollment(session, enrollment_id, clinic)
    cancel(session, enrollment)
    session.commit()
    return _out(session, enrollment)


@router.patch(
    "/{enrollment_id}",
    operation_id="rescheduleEnrollment",
    response_model=EnrollmentOut,
    responses=NOT_FOUND,
    summary="Reschedule an enrollment",
)
def update(
    enrollment_id: Id, payload: EnrollmentPatch, clinic: ClinicDep, session: SessionDep
) -> EnrollmentOut:
    """Move the treatment time; unsent messages move with it, sent ones stay as they were."""
    enrollment = get_enrollment(session, enrollment_id, clinic)
    reschedule(session, enrollment, _treated_at(payload.treated_at), get_settings())
    session.commit()
    return _out(session, enrollment)


def _mark(
    session: Session, clinic: int, enrollment_id: int, condition: SkipCondition, on: bool
) -> EnrollmentOut:
    enrollment = get_enrollment(session, enrollment_id, clinic)
    set_mark(session, enrollment, condition, on, get_settings())
    session.commit()
    return _out(session, enrollment)


@router.post(
    "/{enrollment_id}/next-session",
    operation_id="markNextSessionBooked",
    response_model=EnrollmentOut,
    responses=NOT_FOUND,
    summary="Mark the next session booked",
)
def next_session_booked(enrollment_id: Id, clinic: ClinicDep, session: SessionDep) -> EnrollmentOut:
    """Skip the unsent emails of steps with `skip_if = ["next_session_booked"]` (the booking
    reminder), with the reason shown. Marking twice is harmless."""
    return _mark(session, clinic, enrollment_id, SkipCondition.NEXT_SESSION_BOOKED, True)


@router.delete(
    "/{enrollment_id}/next-session",
    operation_id="unmarkNextSessionBooked",
    response_model=EnrollmentOut,
    responses=NOT_FOUND,
    summary="Unmark the next session booked",
)
def next_session_not_booked(
    enrollment_id: Id, clinic: ClinicDep, session: SessionDep
) -> EnrollmentOut:
    """Put back the emails the mark skipped, where they are still due."""
    return _mark(session, clinic, enrollment_id, SkipCondition.NEXT_SESSION_BOOKED, False)


@router.post(
    "/{enrollment_id}/one-off",
    operation_id="markOneOff",
    response_model=EnrollmentOut,
    responses=NOT_FOUND,
    summary="Mark the treatment a one-off",
)
def one_off(enrollment_id: Id, clinic: ClinicDep, session: SessionDep) -> EnrollmentOut:
    """Skip the unsent emails of steps with `skip_if = ["one_off"]` (no series follows)."""
    return _mark(session, clinic, enrollment_id, SkipCondition.ONE_OFF, True)


@router.delete(
    "/{enrollment_id}/one-off",
    operation_id="unmarkOneOff",
    response_model=EnrollmentOut,
    responses=NOT_FOUND,
    summary="Unmark the treatment a one-off",
)
def not_one_off(enrollment_id: Id, clinic: ClinicDep, session: SessionDep) -> EnrollmentOut:
    """Put back the emails the mark skipped, where they are still due."""
    return _mark(session, clinic, enrollment_id, SkipCondition.ONE_OFF, False)
