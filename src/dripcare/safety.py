"""The check every published aftercare email must pass: the red-flag block is still there.

The emails are rendered with sample patient data and the clinic's own phone and emergency
number, and the text a patient would read is searched, so removing the include, the block's
wording or the clinic's number is caught however the templates were changed. The emails of
days 0-7 must also open with the one-line emergency pointer.
"""

from __future__ import annotations

from dripcare.campaign_spec import CampaignSpec
from dripcare.email_context import needs_emergency_pointer
from dripcare.models import Clinic
from dripcare.rendering import TemplateSet
from dripcare.template_checks import Problem, check_spec, remembered, render_sample

RED_FLAG_HEADING = "Emergency: get help now"
# The fixed emergency line of the content rules (aftercare content file, section 7.1).
EMERGENCY_LINE = "Swelling of lips, tongue or throat, or trouble breathing: call {number} now."
# The one-line pointer that opens the emails of days 0-7 (after the greeting), so the
# emergency line is on a phone's first screen; the full block stays further down.
POINTER_LINE = EMERGENCY_LINE + " More warning signs are listed below."
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
    for step in spec.steps:
        text = render_sample(templates, spec, step, clinic).text
        if needs_emergency_pointer(step.offset_days):
            if not pointer_on_top(text, clinic):
                found.append(Problem(_pointer_refusal(step.offset_days), step.key, kind="safety"))
            text = without_pointer(text, clinic)
        missing = missing_red_flags(text, clinic)
        if missing:
            found.append(Problem(_refusal(missing, clinic), step.key, kind="safety"))
    return found


def _squeezed(text: str) -> str:
    return " ".join(text.split())


def pointer_on_top(text: str, clinic: Clinic) -> bool:
    """Whether the plain text opens with the emergency pointer (within its first lines)."""
    lines = [line for line in text.splitlines() if line.strip()]
    top = _squeezed(" ".join(lines[: POINTER_WITHIN_LINES + 1]))
    return _squeezed(POINTER_LINE.format(number=clinic.emergency_number)) in top


def without_pointer(text: str, clinic: Clinic) -> str:
    """The text with the pointer taken out, so the red-flag block is checked on its own."""
    pointer = _squeezed(POINTER_LINE.format(number=clinic.emergency_number))
    return _squeezed(text).replace(pointer, "", 1)


def missing_red_flags(text: str, clinic: Clinic) -> list[str]:
    """What of the red-flag block a rendered email's plain text lacks."""
    wanted = {
        "the red-flag block heading": RED_FLAG_HEADING,
        "the emergency instruction": EMERGENCY_LINE.format(number=clinic.emergency_number),
        "the clinic's phone number": clinic.phone,
    }
    squeezed = _squeezed(text)
    return [label for label, phrase in wanted.items() if _squeezed(phrase) not in squeezed]


def _pointer_refusal(day: int) -> str:
    return (
        f"a day {day} email must open with the emergency pointer: right after the greeting, "
        f'"{POINTER_LINE.format(number="<emergency number>")}" (the block in _layout.mjml, shown '
        "when step.emergency_pointer is true). Patients reading on a phone must see it without "
        "scrolling: put it back before publishing"
    )


def _refusal(missing: list[str], clinic: Clinic) -> str:
    return (
        f"the email has lost its red-flag block ({', '.join(missing)} missing). Every "
        f"aftercare email must tell patients to call {clinic.emergency_number} in an "
        f"emergency and to call {clinic.name} on {clinic.phone} about warning signs: put "
        '{% include "_redflags.mjml" %} back (or its text) before publishing'
    )
