"""Render a step with sample patient data, for people checking how an email looks."""

from __future__ import annotations

from dripcare.campaigns import find_campaign, load_campaign_dir, template_set
from dripcare.config import get_settings
from dripcare.db import session_scope
from dripcare.email_context import clinic_context, sample_context
from dripcare.enrollments import get_clinic
from dripcare.errors import NotFound
from dripcare.rendering import Rendered, TemplateSet, render_full


def render_preview(campaign_slug: str, step_key: str, clinic_id: int | None = None) -> Rendered:
    """From the clinic's stored campaign when a clinic is named, else from the shipped files."""
    if clinic_id is None:
        directory = get_settings().templates_dir / campaign_slug
        if not (directory / "campaign.toml").is_file():
            raise NotFound(f"no shipped campaign {campaign_slug!r} in {directory.parent}")
        spec = load_campaign_dir(directory)
        step = next((s for s in spec.steps if s.key == step_key), None)
        if step is None:
            raise NotFound(_unknown_step(step_key, [s.key for s in spec.steps]))
        templates = TemplateSet.from_sources(spec.sources)
        return render_full(
            templates,
            step.template,
            step.subject,
            step.preheader,
            sample_context(spec.variables, step),
        )
    with session_scope() as session:
        clinic = get_clinic(session, clinic_id)
        campaign = find_campaign(session, clinic_id, campaign_slug)
        stored = next((s for s in campaign.steps if s.key == step_key and s.active), None)
        if stored is None:
            raise NotFound(_unknown_step(step_key, [s.key for s in campaign.steps if s.active]))
        care = {**campaign.variables, **(clinic.settings or {}).get("care", {})}
        context = sample_context(care, stored, clinic_context(clinic))
        context["emergency_number"] = clinic.emergency_number
        return render_full(
            template_set(campaign), stored.template, stored.subject, stored.preheader, context
        )


def _unknown_step(key: str, known: list[str]) -> str:
    return f"no step {key!r}; steps: {', '.join(known)}"
