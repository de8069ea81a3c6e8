"""The check every published aftercare email must pass: the red-flag block is still there.

The emails are rendered with sample patient data and the clinic's own phone and emergency
number, and the text a patient would read is searched, so removing the include, the block's
wording or the clinic's number is caught however the templates were changed.
"""

from __future__ import annotations

from dripcare.campaign_spec import CampaignSpec
from dripcare.models import Clinic
from dripcare.rendering import TemplateSet
from dripcare.template_checks import Problem, check_spec, remembered, render_sample

RED_FLAG_HEADING = "Emergency: get help now"
# The fixed emergency line of the content rules (aftercare content file, section 7.1).
EMERGENCY_LINE = "Swelling of lips, tongue or throat, or trouble breathing: call {number} now."


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
        text = " ".join(render_sample(templates, spec, step, clinic).text.split())
        missing = missing_red_flags(text, clinic)
        if missing:
            found.append(Problem(_refusal(missing, clinic), step.key, kind="safety"))
    return found


def missing_red_flags(text: str, clinic: Clinic) -> list[str]:
    """What of the red-flag block a rendered email's plain text lacks."""
    wanted = {
        "the red-flag block heading": RED_FLAG_HEADING,
        "the emergency instruction": EMERGENCY_LINE.format(number=clinic.emergency_number),
        "the clinic's phone number": clinic.phone,
    }
    squeezed = " ".join(text.split())
    return [label for label, phrase in wanted.items() if " ".join(phrase.split()) not in squeezed]


def _refusal(missing: list[str], clinic: Clinic) -> str:
    return (
        f"the email has lost its red-flag block ({', '.join(missing)} missing). Every "
        f"aftercare email must tell patients to call {clinic.emergency_number} in an "
        f"emergency and to call {clinic.name} on {clinic.phone} about warning signs: put "
        '{% include "_redflags.mjml" %} back (or its text) before publishing'
    )
