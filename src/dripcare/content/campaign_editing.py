"""Edits an admin makes to a campaign, as pure functions from one spec to the next.

Nothing here touches the database: the result is saved as a draft by
`campaign_versions.save_draft`, which checks that it renders.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from dripcare.content.campaign_spec import CampaignSpec, StepSpec
from dripcare.errors import NotFound, UserError
from dripcare.sending.send_rules import parse_window

LAYOUT = "_layout.mjml"
STEP_FIELDS = {
    "offset_days",
    "offset_hours",
    "offset_minutes",
    "send_time",
    "send_until",
    "subject",
    "preheader",
    "checkin",
    "safety_only",
}

_STARTER_WITH_LAYOUT = """{% extends "_layout.mjml" %}
{% block content %}
    <mj-section>
      <mj-column>
        <mj-text>
          <p>Write this email here.</p>
        </mj-text>
      </mj-column>
    </mj-section>
{% endblock %}
"""
_STARTER_ALONE = """<mjml>
  <mj-body>
    <mj-section>
      <mj-column>
        <mj-text><p>Write this email here.</p></mj-text>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>
"""


def _find(spec: CampaignSpec, key: str) -> StepSpec:
    step = spec.step(key)
    if step is None:
        raise NotFound(f"no step {key!r}; steps: {', '.join(s.key for s in spec.steps)}")
    return step


def update_step(spec: CampaignSpec, key: str, **changes: Any) -> CampaignSpec:
    """Change a step's timing, subject, preheader, check-in or safety-only flag."""
    unknown = set(changes) - STEP_FIELDS
    if unknown:
        raise UserError(f"a step has no field(s) {', '.join(sorted(unknown))}")
    if "send_time" in changes:
        changes["send_time"] = (changes["send_time"] or "").strip() or None
    if "send_until" in changes:
        changes["send_until"] = _window(changes["send_until"])
    changed = dataclasses.replace(_find(spec, key), **changes)
    steps = [changed if s.key == key else s for s in spec.steps]
    return dataclasses.replace(spec, steps=steps)


def _window(text: str | None) -> str | None:
    """Blank means the default window (DRIPCARE_LATE_GRACE_HOURS); otherwise e.g. "1d"."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        parse_window(text)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    return text


def set_body(spec: CampaignSpec, key: str, source: str) -> CampaignSpec:
    """Replace the template file of a step (other steps sharing the file see it too)."""
    name = _find(spec, key).template
    return set_source(spec, name, source)


def set_source(spec: CampaignSpec, name: str, source: str) -> CampaignSpec:
    if name not in spec.sources:
        raise NotFound(f"no template file {name!r}; files: {', '.join(sorted(spec.sources))}")
    return dataclasses.replace(spec, sources={**spec.sources, name: source.replace("\r\n", "\n")})


def add_step(
    spec: CampaignSpec, key: str, *, offset_days: int, subject: str, send_time: str | None = None
) -> CampaignSpec:
    """A new step with its own template file, placed among the others by its day."""
    key = key.strip().lower()
    if spec.step(key) is not None:
        raise UserError(f"there is already a step {key!r}; pick another key")
    name = f"{key}.mjml"
    if name in spec.sources:
        raise UserError(f"a template file {name} already exists; pick another key")
    starter = _STARTER_WITH_LAYOUT if LAYOUT in spec.sources else _STARTER_ALONE
    step = StepSpec(
        key=key,
        offset_days=offset_days,
        offset_hours=0,
        offset_minutes=0,
        send_time=(send_time or "").strip() or None,
        subject=subject,
        preheader="",
        template=name,
        checkin=False,
    )
    later = next((i for i, s in enumerate(spec.steps) if s.offset_days > offset_days), None)
    steps = list(spec.steps)
    steps.insert(len(steps) if later is None else later, step)
    return dataclasses.replace(spec, steps=steps, sources={**spec.sources, name: starter})


def remove_step(spec: CampaignSpec, key: str) -> CampaignSpec:
    """Drop a step; its template file goes too unless another step uses it."""
    step = _find(spec, key)
    steps = [s for s in spec.steps if s.key != key]
    sources = dict(spec.sources)
    if all(s.template != step.template for s in steps):
        sources.pop(step.template, None)
    return dataclasses.replace(spec, steps=steps, sources=sources)


def move_step(spec: CampaignSpec, key: str, by: int) -> CampaignSpec:
    """Move a step up (by < 0) or down the list; the order is how the timeline lists them."""
    step = _find(spec, key)
    steps = [s for s in spec.steps if s.key != key]
    index = max(0, min(len(steps), spec.steps.index(step) + by))
    steps.insert(index, step)
    return dataclasses.replace(spec, steps=steps)
