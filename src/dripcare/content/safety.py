"""The check every published aftercare email must pass: the red-flag block is still there.

The emails are rendered with sample patient data and the clinic's own phone and emergency
number, and the text a patient would read is searched, so removing the include, the block's
wording or the clinic's number is caught however the templates were changed. The early emails
(up to the campaign's `pointer_days`) must also open with the one-line emergency pointer. The
phrases are the campaign's own clinical data (`clinical.py`), so each treatment states its own.
"""

from __future__ import annotations

from dripcare.content.campaign_spec import CampaignSpec
from dripcare.content.clinical import Clinical
from dripcare.content.rendering import TemplateSet
from dripcare.content.template_checks import Problem, check_spec, remembered, render_sample
from dripcare.models import Clinic

# The pointer must start within this many lines of the plain text (greeting first).
POINTER_WITHIN_LINES = 6


def check_publishable(spec: CampaignSpec, clinic: Clinic) -> list[Problem]:
    """Everything that forbids publishing this content for this clinic; empty when it may go."""
    return remembered("publishable", spec, clinic, _check_publishable)


def _check_publishable(spec: CampaignSpec, clinic: Clinic | None) -> list[Problem]:
    assert clinic is not None
    problems = check_spec(spec, clinic)
    if problems:
        return problems
    templates = TemplateSet.from_sources(spec.sources)
    found = []
    lines = spec.clinical
    for step in spec.steps:
        text = render_sample(templates, spec, step, clinic).text
        if lines.needs_pointer(step.offset_days):
            if not pointer_on_top(text, clinic, lines):
                refusal = _pointer_refusal(step.offset_days, lines)
                found.append(Problem(refusal, step.key, kind="safety"))
            text = without_pointer(text, clinic, lines)
        missing = missing_red_flags(text, clinic, lines)
        if missing:
            found.append(Problem(_refusal(missing, clinic), step.key, kind="safety"))
    return found


def _squeezed(text: str) -> str:
    return " ".join(text.split())


def pointer_on_top(text: str, clinic: Clinic, lines: Clinical) -> bool:
    """Whether the plain text opens with the emergency pointer (within its first lines)."""
    shown = [line for line in text.splitlines() if line.strip()]
    top = _squeezed(" ".join(shown[: POINTER_WITHIN_LINES + 1]))
    return _squeezed(lines.pointer_line.format(number=clinic.emergency_number)) in top


def without_pointer(text: str, clinic: Clinic, lines: Clinical) -> str:
    """The text with the pointer taken out, so the red-flag block is checked on its own."""
    pointer = _squeezed(lines.pointer_line.format(number=clinic.emergency_number))
    return _squeezed(text).replace(pointer, "", 1)


def missing_red_flags(text: str, clinic: Clinic, lines: Clinical) -> list[str]:
    """What of the red-flag block a rendered email's plain text lacks."""
    wanted = {
        "the red-flag block heading": lines.emergency_heading,
        "the emergency instruction": lines.emergency_line.format(number=clinic.emergency_number),
        "the clinic's phone number": clinic.phone,
    }
    squeezed = _squeezed(text)
    return [label for label, phrase in wanted.items() if _squeezed(phrase) not in squeezed]


def _pointer_refusal(day: int, lines: Clinical) -> str:
    return (
        f"a day {day} email must open with the emergency pointer: right after the greeting, "
        f'"{lines.pointer_line.format(number="<emergency number>")}" (the block in '
        "_layout.mjml, shown when step.emergency_pointer is true). Patients reading on a phone "
        "must see it without scrolling: put it back before publishing"
    )


def _refusal(missing: list[str], clinic: Clinic) -> str:
    return (
        f"the email has lost its red-flag block ({', '.join(missing)} missing). Every "
        f"aftercare email must tell patients to call {clinic.emergency_number} in an "
        f"emergency and to call {clinic.name} on {clinic.phone} about warning signs: put "
        '{% include "_redflags.mjml" %} back (or its text) before publishing'
    )
