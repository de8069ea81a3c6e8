"""Render a step with sample patient data, for people checking how an email looks.

The step editor, the version pages and the branding page all show `checked_preview`: the
step's problems, and the email when it renders.

Also sends a test copy of a step to an address an admin chooses. A test email is not an
outbox row: nothing records it as sent to a patient, the dispatcher never sees it, and the
clinic's suppression list does not apply (it lists patients, and this is the admin's choice).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from dripcare.config import Settings, get_settings
from dripcare.content.campaign_spec import CampaignSpec
from dripcare.content.campaign_versions import live_version, spec_of
from dripcare.content.campaigns import find_campaign, list_campaigns, load_campaign_dir
from dripcare.content.rendering import Rendered, RenderError, TemplateSet
from dripcare.content.template_checks import Problem, check_spec, render_sample
from dripcare.db import session_scope
from dripcare.errors import NotFound, UserError
from dripcare.models import Clinic, utcnow
from dripcare.outbox.message_ids import new_message_id, sender_domain
from dripcare.people.clinics import get_clinic
from dripcare.sending import clinic_transports, dkim_keys
from dripcare.sending.composing import Envelope, compose
from dripcare.sending.transports import DeliveryError, Transport, transport_from_url
from dripcare.validation import normalize_email

TEST_PREFIX = "[Test] "


def render_step(spec: CampaignSpec, step_key: str, clinic: Clinic | None) -> Rendered:
    """One step of any version (or unsaved edit), with sample patient data and the clinic."""
    step = spec.step(step_key)
    if step is None:
        raise NotFound(f"no step {step_key!r}; steps: {', '.join(s.key for s in spec.steps)}")
    return render_sample(TemplateSet.from_sources(spec.sources), spec, step, clinic)


def checked_preview(
    spec: CampaignSpec, key: str, clinic: Clinic, problems: list[Problem] | None = None
) -> tuple[list[Problem], Rendered | None]:
    """This step's problems (with those of the layout and partials), and the email if it
    renders at all."""
    if problems is None:
        problems = [p for p in check_spec(spec, clinic) if p.step in (None, key)]
    blocking = any(p.kind in ("syntax", "markup", "render") for p in problems)
    named = {(p.where, p.line) for p in problems if p.kind == "variable"}
    # An unknown variable is named once, with the ones that exist, not again as a render error.
    problems = [p for p in problems if p.kind != "render" or (p.where, p.line) not in named]
    if blocking:
        return problems, None
    try:
        return problems, render_step(spec, key, clinic)
    except RenderError as exc:  # a limit the check's render happened to stay under
        return [*problems, Problem(str(exc), key, exc.where, exc.line, "render")], None


@dataclass(frozen=True)
class Sample:
    """A step of a live campaign as `checked_preview` shows it."""

    campaign: str
    step: str
    problems: list[Problem]
    preview: Rendered | None


def first_live_step(session: Session, clinic_id: int, clinic: Clinic) -> Sample | None:
    """The first step of the clinic's first campaign, live version, shown with `clinic`:
    the stored row, or an unsaved copy with other branding. None without any campaign."""
    for campaign in list_campaigns(session, clinic_id):
        spec = spec_of(live_version(session, campaign))
        if spec.steps:
            key = spec.steps[0].key
            return Sample(campaign.name, key, *checked_preview(spec, key, clinic))
    return None


def render_preview(campaign_slug: str, step_key: str, clinic_id: int | None = None) -> Rendered:
    """From the clinic's live version when a clinic is named, else from the shipped files."""
    if clinic_id is None:
        directory = get_settings().templates_dir / campaign_slug
        if not (directory / "campaign.toml").is_file():
            raise NotFound(f"no shipped campaign {campaign_slug!r} in {directory.parent}")
        return render_step(load_campaign_dir(directory), step_key, None)
    with session_scope() as session:
        clinic = get_clinic(session, clinic_id)
        campaign = find_campaign(session, clinic_id, campaign_slug)
        return render_step(spec_of(live_version(session, campaign)), step_key, clinic)


TEST_SENDS_PER_HOUR = 10


def test_recipients(clinic: Clinic, admin_email: str) -> set[str]:
    """Where an admin may send a test: their own address or the clinic's staff address.

    Never a typed-in stranger's: a test email is signed as the clinic, so an open form would
    let anyone with a login send the clinic's mail to anyone."""
    return {normalize_email(a) for a in (admin_email, clinic.alert_email) if a}


def check_test_recipient(clinic: Clinic, admin_email: str, to: str) -> str:
    address = normalize_email(to)
    allowed = test_recipients(clinic, admin_email)
    if address not in allowed:
        raise UserError(
            "a test email goes only to your own address or the clinic's staff address ("
            + ", ".join(sorted(allowed))
            + ")"
        )
    return address


def send_test_email(
    spec: CampaignSpec,
    step_key: str,
    clinic: Clinic,
    to: str,
    settings: Settings,
    transport: Transport | None = None,
) -> str:
    """Send the step, rendered with sample data, marked as a test; returns its Message-ID."""
    address = normalize_email(to)
    rendered = render_step(spec, step_key, clinic)
    message_id = new_message_id(sender_domain(clinic.sender_email), prefix="test-")
    envelope = Envelope(
        from_name=clinic.name,
        from_addr=clinic.sender_email,
        to_addr=address,
        subject=TEST_PREFIX + rendered.subject,
        message_id=message_id,
        date=utcnow(),
    )
    # signed and sent as the clinic's patient emails are, so the test shows what they get
    data = dkim_keys.signed(settings, clinic, compose(envelope, rendered.text, rendered.html))
    platform = transport_from_url(settings.smtp_url, settings.smtp_timeout)
    transport = transport or clinic_transports.transport_for(clinic, settings, platform)
    try:
        with transport:
            transport.send(clinic.sender_email, address, data, message_id)
    except DeliveryError as exc:
        raise UserError(f"the test email to {address} was not sent: {exc}") from exc
    return message_id
