"""Enrolling a treatment: the hot path that checks a request, finds or creates the patient,
supersedes an older sequence for the same treatment and writes the new one's outbox rows.

Enrolling writes every message of the sequence at once (outbox_rows.py): cancel, reschedule
and supersede are then updates of unsent rows (enrollment_changes.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from sqlalchemy import String, Table, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session, make_transient_to_detached

from dripcare.config import Settings
from dripcare.content.campaigns import (
    CampaignPlan,
    campaign_plan,
    slug_for_unnamed,
    unknown_campaign,
)
from dripcare.models import (
    Campaign,
    Clinic,
    Enrollment,
    EnrollmentStatus,
    Message,
    Patient,
    StopCause,
    utcnow,
)
from dripcare.outbox.enrollment_input import EnrollRequest, clean_external_id
from dripcare.outbox.message_lifecycle import stop_unsent
from dripcare.outbox.outbox_rows import ScheduledMessage, materialize
from dripcare.outbox.treatment_attributes import check_attributes
from dripcare.outbox.treatment_time import parse_treated_at
from dripcare.people.clinics import no_clinic
from dripcare.sending.send_rules import clinic_quiet_hours
from dripcare.validation import check_timezone, normalize_email, normalize_phone


@dataclass
class EnrollResult:
    enrollment: Enrollment
    created: bool
    superseded: list[int] = field(default_factory=list)
    messages: list[ScheduledMessage] | None = None  # the new sequence, when created


@dataclass(frozen=True)
class _KnownPatient:
    id: int
    first_name: str
    last_name: str
    timezone: str | None
    phone: str


@dataclass(frozen=True)
class _Found:
    """What enrolling needs to know before it writes anything."""

    clinic_id: int
    clinic_timezone: str
    sender_email: str
    plan: CampaignPlan
    existing_id: int | None
    patient: _KnownPatient | None
    quiet_hours: str | None = None  # the clinic's own; None: DRIPCARE_QUIET_HOURS


def enroll(
    session: Session, req: EnrollRequest, settings: Settings, now: datetime | None = None
) -> EnrollResult:
    """Idempotent per (clinic, external_id), and per (patient, campaign, treated_at) without one.

    This is the API's hot path: a new patient costs one query (clinic, campaign, patient and
    external id together), then three inserts (patient, enrollment, messages).
    """
    now = now or utcnow()
    email = normalize_email(req.email)
    zone_override = check_timezone(req.timezone) if req.timezone else None
    phone = normalize_phone(req.phone)
    external_id = clean_external_id(req.external_id)
    found = _look_up(session, req.clinic_id, req.campaign, email, external_id)
    if found.existing_id is not None:
        return EnrollResult(session.get_one(Enrollment, found.existing_id), created=False)
    known_zone = found.patient.timezone if found.patient else None
    zone = zone_override or known_zone or found.clinic_timezone
    treated_at = parse_treated_at(req.treated_at, zone, now)
    attributes = check_attributes(found.plan.slug, found.plan.requires, req.attributes)
    # Every check is above this line: a refused request writes nothing (bulk relies on it).
    patient_id = _upsert_patient(session, found, email, req, zone_override, phone)
    plan = found.plan
    active = [] if found.patient is None else _active_enrollments(session, patient_id, plan)
    for same in active:
        if same.campaign_id == plan.id and same.treated_at == treated_at:
            return EnrollResult(same, created=False)
    enrollment = _insert_enrollment(
        session,
        clinic_id=found.clinic_id,
        patient_id=patient_id,
        campaign_id=plan.id,
        treatment=plan.treatment,
        treated_at=treated_at,
        timezone=zone,
        external_id=external_id,
        attributes=attributes,
    )
    older = [e for e in active if e.treatment == enrollment.treatment]
    superseded = _supersede(session, older, enrollment)
    quiet = clinic_quiet_hours(found.quiet_hours, settings)
    messages = materialize(session, enrollment, plan, found.sender_email, settings, now, quiet)
    return EnrollResult(enrollment, created=True, superseded=superseded, messages=messages)


# The hot path's statements are built once: building and keying a statement on each call cost
# more CPU than executing it.
_SLUG = bindparam("slug", type_=String)  # None: the clinic's default campaign
_LOOK_UP = (
    select(
        Clinic.timezone,
        Clinic.sender_email,
        Clinic.quiet_hours,
        Campaign.id.label("campaign_id"),
        Campaign.version,
        Campaign.updated_at,
        select(Enrollment.id)
        .where(
            Enrollment.clinic_id == bindparam("clinic_id"),
            Enrollment.external_id == bindparam("external_id"),  # NULL matches nothing
        )
        .scalar_subquery()
        .label("existing_id"),
        Patient.id.label("patient_id"),
        Patient.first_name,
        Patient.last_name,
        Patient.timezone.label("patient_timezone"),
        Patient.phone.label("patient_phone"),
    )
    .outerjoin(
        Campaign,
        (Campaign.clinic_id == Clinic.id)
        & (Campaign.slug == func.coalesce(_SLUG, Clinic.default_campaign)),
    )
    .outerjoin(Patient, (Patient.clinic_id == Clinic.id) & (Patient.email == bindparam("email")))
    .where(Clinic.id == bindparam("clinic_id"))
)
# Core inserts on the tables: the ORM's bulk path would process every row's values again.
_PATIENTS, _ENROLLMENTS = (cast(Table, model.__table__) for model in (Patient, Enrollment))
_NEW_PATIENT = insert(_PATIENTS).returning(_PATIENTS.c.id)
_NEW_ENROLLMENT = insert(_ENROLLMENTS).returning(_ENROLLMENTS.c.id)


def _look_up(
    session: Session, clinic_id: int, slug: str | None, email: str, external_id: str | None
) -> _Found:
    """Clinic, campaign, patient and an enrollment with the same external id: one query.

    Without a slug the clinic's default campaign is joined; a clinic without one costs a
    second look (slug_for_unnamed), which also explains what to do when it is ambiguous."""
    params = {"clinic_id": clinic_id, "slug": slug, "email": email, "external_id": external_id}
    row = session.connection().execute(_LOOK_UP, params).first()
    if row is None:
        raise no_clinic(clinic_id)
    if row.campaign_id is None and slug is None:
        chosen = slug_for_unnamed(session, clinic_id)
        return _look_up(session, clinic_id, chosen, email, external_id)
    if row.campaign_id is None:
        assert slug is not None
        raise unknown_campaign(session, clinic_id, slug)
    patient = None
    if row.patient_id is not None:
        patient = _KnownPatient(
            row.patient_id, row.first_name, row.last_name, row.patient_timezone, row.patient_phone
        )
    return _Found(
        clinic_id,
        row.timezone,
        row.sender_email,
        campaign_plan(session, row.campaign_id, row.version, row.updated_at),
        row.existing_id,
        patient,
        row.quiet_hours,
    )


def _upsert_patient(
    session: Session, found: _Found, email: str, req: EnrollRequest, zone: str | None, phone: str
) -> int:
    """The clinic's patient with this email, updated or created."""
    given = {
        "first_name": req.first_name.strip(),
        "last_name": req.last_name.strip(),
        "timezone": zone,
        "phone": phone,
    }
    known = found.patient
    if known is None:
        values = {"clinic_id": found.clinic_id, "email": email, "locale": req.locale, **given}
        return int(session.connection().execute(_NEW_PATIENT, values).scalar_one())
    changes = {
        name: value for name, value in given.items() if value and value != getattr(known, name)
    }
    if changes:
        session.execute(update(Patient).where(Patient.id == known.id).values(**changes))
    return known.id


def _insert_enrollment(session: Session, **values: object) -> Enrollment:
    """One INSERT; the row then joins the session as if it had been loaded.

    On this hot path the unit of work's flush costs more than the insert itself.
    """
    values |= {
        "status": EnrollmentStatus.ACTIVE,
        "superseded_by_id": None,
        "cancelled_at": None,
        "created_at": utcnow(),
        "next_session_booked_at": None,
        "one_off": False,
        "missed_steps": [],
    }
    new_id = session.connection().execute(_NEW_ENROLLMENT, values).scalar_one()
    enrollment = Enrollment(id=new_id, **values)
    make_transient_to_detached(enrollment)
    session.add(enrollment)
    return enrollment


def _active_enrollments(session: Session, patient_id: int, plan: CampaignPlan) -> list[Enrollment]:
    """The patient's active sequences this enrollment may repeat or replace, in one query."""
    return list(
        session.scalars(
            select(Enrollment).where(
                Enrollment.patient_id == patient_id,
                Enrollment.status == EnrollmentStatus.ACTIVE,
                or_(Enrollment.treatment == plan.treatment, Enrollment.campaign_id == plan.id),
            )
        )
    )


def _supersede(session: Session, older: list[Enrollment], newer: Enrollment) -> list[int]:
    """No two overlapping sequences for the same treatment: the new one replaces the old."""
    for old in older:
        old.status = EnrollmentStatus.SUPERSEDED
        old.superseded_by_id = newer.id
        stop_unsent(
            session,
            Message.enrollment_id == old.id,
            StopCause.SUPERSEDED,
            f"superseded by enrollment {newer.id}",
        )
    return [old.id for old in older]
