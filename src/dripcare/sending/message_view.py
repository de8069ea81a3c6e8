"""The message as it was or will be sent, rebuilt from its row: the send path renders from it,
and the API and the admin show it (bodies are never stored: they carry health details).

Loading is by batch, in one query (plus one per campaign version): the send path is hot.
Unsent messages use the campaign's live version; sent ones the version they were sent with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dripcare.config import Settings
from dripcare.content.campaign_spec import StepSpec
from dripcare.content.compiled_campaigns import Compiled, compiled
from dripcare.content.email_context import (
    build_context,
    care_values,
    clinic_context,
    format_date,
    treatment_name,
)
from dripcare.content.render_cache import Renderer, fingerprint
from dripcare.content.rendering import Rendered, RenderError
from dripcare.db import among
from dripcare.models import (
    RENDERED,
    Campaign,
    Clinic,
    DeliveryAttempt,
    Enrollment,
    Message,
    Patient,
    Step,
)
from dripcare.people.links import MessageLinks, links_for

_renderer = Renderer()


@dataclass(frozen=True, slots=True)
class Recipient:
    """The patient as the send path needs them: read as columns, not as an ORM entity."""

    email: str
    first_name: str
    last_name: str
    link_epoch: int


@dataclass(frozen=True, slots=True)
class Treatment:
    """The enrollment as send rules, skip conditions and templates need it (duck-types the
    `Enrollment` attributes they read, so `send_rules.hold` and `marks_of` take either)."""

    id: int
    treated_at: datetime
    timezone: str
    next_session_booked_at: datetime | None
    one_off: bool
    missed_steps: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StepRef:
    """Which stored step a message is: its content comes from the compiled version."""

    id: int
    key: str


@dataclass(frozen=True, slots=True)
class CampaignRef:
    id: int
    version: int  # the live version, used for unsent messages
    treatment: str


_Shared = dict[tuple[Any, ...], tuple[dict[str, Any], str]]


@dataclass(frozen=True)
class Job:
    """Everything needed to send one message, loaded in one query, free of the session.

    Plain frozen values, except the clinic (an ORM entity, loaded once per clinic in the batch:
    transports, DKIM keys and quiet hours are looked up from it and cached by clinic)."""

    pk: int
    message_id: str
    attempts: int
    to: str
    clinic: Clinic
    campaign: CampaignRef
    step: StepRef
    enrollment: Treatment
    patient: Recipient
    content: Compiled  # the campaign version this message is rendered from
    suppressed: str | None = None
    # The context shared by recipients, per (clinic, version, step): one dict for a load's jobs.
    shared: _Shared = field(default_factory=dict, compare=False, repr=False)

    @property
    def version(self) -> int:
        return self.content.number

    @cached_property
    def content_step(self) -> StepSpec | None:
        """The step as that version has it; None when that version removed it."""
        return self.content.spec.step(self.step.key)


_COLUMNS: tuple[Any, ...] = (  # read by position in load_jobs
    Message.id,
    Message.message_id,
    Message.attempts,
    Message.status,
    Message.campaign_version,
    Message.clinic_id,
    Patient.email,
    Patient.first_name,
    Patient.last_name,
    Patient.link_epoch,
    Enrollment.id,
    Enrollment.treated_at,
    Enrollment.timezone,
    Enrollment.next_session_booked_at,
    Enrollment.one_off,
    Enrollment.missed_steps,
    Step.id,
    Step.key,
    Campaign.id,
    Campaign.version,
    Campaign.treatment,
)


def load_jobs(session: Session, message_pks: list[int]) -> list[Job]:
    """Everything needed to render and send these messages, in one query (plus one for the
    clinics and one per version).

    Columns, not entities: five ORM entities a row (with the campaign's JSON columns) were
    ~15% of the worker's CPU per email (bench/README.md, "Issue 14"). Unsent messages use the
    campaign's live version; sent ones the version they were sent with.
    """
    rows = session.execute(
        select(*_COLUMNS)
        .join(Enrollment, Message.enrollment_id == Enrollment.id)
        .join(Patient, Enrollment.patient_id == Patient.id)
        .join(Step, Message.step_id == Step.id)
        .join(Campaign, Step.campaign_id == Campaign.id)
        .where(among(session, Message.id, message_pks))
        .order_by(Message.id)
    ).all()
    clinics = _clinics(session, {row[5] for row in rows})
    versions: dict[tuple[int, int], Compiled] = {}
    campaigns: dict[int, CampaignRef] = {}
    steps: dict[int, StepRef] = {}
    shared: _Shared = {}
    jobs = []
    for row in rows:
        pk, mid, attempts, status, used, clinic_id, email, first, last, epoch = row[:10]
        step_id, key, campaign_id, live, treatment = row[16:]
        number = used if used is not None and status in RENDERED else live
        if (campaign_id, number) not in versions:
            versions[campaign_id, number] = compiled(session, campaign_id, number)
        campaign = campaigns.get(campaign_id) or CampaignRef(campaign_id, live, treatment)
        step = steps.get(step_id) or StepRef(step_id, key)
        campaigns[campaign_id], steps[step_id] = campaign, step
        jobs.append(
            Job(
                pk,
                mid,
                attempts,
                email,
                clinics[clinic_id],
                campaign,
                step,
                _treatment(row[10:16]),
                Recipient(email, first, last, epoch or 0),
                versions[campaign_id, number],
                shared=shared,
            )
        )
    return jobs


def _treatment(columns: Sequence[Any]) -> Treatment:
    eid, treated_at, zone, booked, one_off, missed = columns
    return Treatment(eid, treated_at, zone, booked, bool(one_off), tuple(missed or ()))


def _clinics(session: Session, ids: set[int]) -> dict[int, Clinic]:
    """The batch's clinics, one query: a batch has few of them, and each is a wide row."""
    if not ids:
        return {}
    found = session.scalars(select(Clinic).where(among(session, Clinic.id, ids)))
    return {clinic.id: clinic for clinic in found}


def render_job(job: Job, settings: Settings) -> tuple[Rendered, MessageLinks]:
    """The message as this patient gets it (also shown to clinics through the API)."""
    step = job.content_step
    if step is None:
        raise RenderError(f"step {job.step.key!r} is not in version {job.version} of the campaign")
    links = links_for(settings, job.pk, job.clinic.sender_email, job.patient.link_epoch)
    static, fingerprint = _shared_context(job, step)
    own = {
        "patient": {"first_name": job.patient.first_name, "last_name": job.patient.last_name},
        "treatment": {"date": format_date(job.enrollment.treated_at, job.enrollment.timezone)},
        "links": links.as_context(),
    }
    context = static | {ns: static[ns] | values for ns, values in own.items()}
    rendered = _renderer.render(
        job.content.templates, step.template, step.subject, step.preheader, context, fingerprint
    )
    return rendered, links


def _shared_context(job: Job, step: StepSpec) -> tuple[dict[str, Any], str]:
    """The context the recipients of a step share (their own values blank), and its
    fingerprint for the render cache: built and hashed once per (clinic, version, step) of a
    load, not per email. A load reads its clinics afresh, so a changed clinic is seen by the
    next batch, as before. Templates cannot change it: the sandbox refuses mutation."""
    missed = job.enrollment.missed_steps if step.late_booking else ()
    key = (job.clinic.id, job.campaign.id, job.version, step.key, missed)
    if (found := job.shared.get(key)) is not None:
        return found
    clinic = job.clinic
    static = build_context(
        clinic=clinic_context(clinic),
        emergency_number=clinic.emergency_number,
        care=care_values(job.content.spec.variables, clinic),
        step=step,
        pointer_days=job.content.spec.clinical.pointer_days,
        first_name="",
        last_name="",
        treatment_name=treatment_name(job.campaign.treatment),
        treatment_date="",
        links={},
        missed_steps=missed,
    )
    job.shared[key] = static, fingerprint(static)
    return job.shared[key]


def shown(session: Session, message_pk: int, settings: Settings) -> tuple[Rendered | None, str]:
    """One message as the patient got (or will get) it, or why it cannot be rendered now."""
    (job,) = load_jobs(session, [message_pk])
    try:
        rendered, _ = render_job(job, settings)
    except RenderError as exc:
        return None, str(exc)
    return rendered, ""


def attempts_of(session: Session, message_pk: int) -> list[DeliveryAttempt]:
    """Every delivery attempt of one message, oldest first."""
    return list(
        session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.message_pk == message_pk)
            .order_by(DeliveryAttempt.id)
        )
    )
