"""The message as it was or will be sent, rebuilt from its row: the send path renders from it,
and the API and the admin show it (bodies are never stored: they carry health details).

Loading is by batch, in one query (plus one per campaign version): the send path is hot.
Unsent messages use the campaign's live version; sent ones the version they were sent with.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

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
from dripcare.content.render_cache import Renderer
from dripcare.content.rendering import Rendered, RenderError
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


@dataclass
class Job:
    """Everything needed to send one message, loaded in one query, free of the session."""

    pk: int
    message_id: str
    attempts: int
    to: str
    clinic: Clinic
    campaign: Campaign
    step: Step
    enrollment: Enrollment
    patient: Patient
    content: Compiled  # the campaign version this message is rendered from
    suppressed: str | None = None

    @property
    def version(self) -> int:
        return self.content.number

    @cached_property
    def content_step(self) -> StepSpec | None:
        """The step as that version has it; None when that version removed it."""
        return self.content.spec.step(self.step.key)


def load_jobs(session: Session, message_pks: list[int]) -> list[Job]:
    """Everything needed to render and send these messages, in one query (plus one per version).

    Unsent messages use the campaign's live version; sent ones the version they were sent with.
    """
    rows = session.execute(
        select(
            Message.id,
            Message.message_id,
            Message.attempts,
            Message.status,
            Message.campaign_version,
            Patient,
            Clinic,
            Campaign,
            Step,
            Enrollment,
        )
        .join(Enrollment, Message.enrollment_id == Enrollment.id)
        .join(Patient, Enrollment.patient_id == Patient.id)
        .join(Clinic, Message.clinic_id == Clinic.id)
        .join(Step, Message.step_id == Step.id)
        .join(Campaign, Step.campaign_id == Campaign.id)
        .where(Message.id.in_(message_pks))
        .order_by(Message.id)
    ).all()
    versions: dict[tuple[int, int], Compiled] = {}
    jobs = []
    for pk, mid, attempts, status, used, patient, clinic, campaign, step, enrollment in rows:
        number = used if used is not None and status in RENDERED else campaign.version
        if (campaign.id, number) not in versions:
            versions[campaign.id, number] = compiled(session, campaign.id, number)
        content = versions[campaign.id, number]
        jobs.append(
            Job(
                pk,
                mid,
                attempts,
                patient.email,
                clinic,
                campaign,
                step,
                enrollment,
                patient,
                content,
            )
        )
    return jobs


def render_job(job: Job, settings: Settings) -> tuple[Rendered, MessageLinks]:
    """The message as this patient gets it (also shown to clinics through the API)."""
    clinic, campaign, step = job.clinic, job.campaign, job.content_step
    if step is None:
        raise RenderError(f"step {job.step.key!r} is not in version {job.version} of the campaign")
    links = links_for(settings, job.pk, clinic.sender_email, job.patient.link_epoch or 0)
    context = build_context(
        clinic=clinic_context(clinic),
        emergency_number=clinic.emergency_number,
        care=care_values(job.content.spec.variables, clinic),
        step=step,
        pointer_days=job.content.spec.clinical.pointer_days,
        first_name=job.patient.first_name,
        last_name=job.patient.last_name,
        treatment_name=treatment_name(campaign.treatment),
        treatment_date=format_date(job.enrollment.treated_at, job.enrollment.timezone),
        links=links.as_context(),
        missed_steps=job.enrollment.missed_steps if step.late_booking else (),
    )
    rendered = _renderer.render(
        job.content.templates, step.template, step.subject, step.preheader, context
    )
    return rendered, links


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
