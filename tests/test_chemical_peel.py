"""Tests for the default chemical-peel campaign (issue 13).

The expectations come from /work/shared/content/chemical-peel-aftercare.md: §2 and §6 (care
values), §5 (both red-flag tiers in every email, the eye-rinse line, the salicylic acid line
only for peels that contain it), §7 (the sequence) and §8 (wording rules). They are written out
here rather than read from the templates, so a template edit that drops a red flag or
hard-codes a duration fails a test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dripcare.content.campaigns import CampaignSpec, StepSpec, load_campaign_dir
from dripcare.content.email_context import SAMPLE_CLINIC, sample_context
from dripcare.content.rendering import TemplateSet, render_full
from dripcare.content.safety import check_publishable
from dripcare.models import Clinic
from tests.campaign_fixtures import step_named
from tests.factories import uk_clinic
from tests.test_content import (
    EMERGENCY_LINE,
    FORBIDDEN,
    assert_header_safe,
    render_step,
    squeeze,
)

PEEL_DIR = Path(__file__).resolve().parents[1] / "templates" / "emails" / "chemical-peel"

# §7, after the peel: key, days, send time, check-in.
AFTERCARE = [
    ("day-0", 0, None, False),
    ("day-1", 1, "09:00", True),
    ("day-3", 3, "09:00", True),
    ("day-7", 7, "09:00", True),
    ("day-14", 14, "09:00", False),
    ("day-28", 28, "10:00", False),
]

# §2 and §6 defaults; peel_first_wash has none ("" = unset).
CARE_DEFAULTS: dict[str, Any] = {
    "peel_first_wash": "",
    "peel_makeup_hours": 24,
    "peel_spf_weeks": 4,
    "peel_actives_days": 7,
    "peel_sweat_hours": 48,
    "peel_heat_pool_hours": 72,
    "peel_hair_removal_days": 7,
    "peel_other_treatments_days": 14,
    "peel_series_interval_days": 28,
    "peel_pre_sun_days": 14,
    "peel_pre_actives_days": 7,
    "peel_pre_hair_removal_days": 7,
    "peel_pre_other_treatments_days": 14,
    "peel_event_buffer_days": 7,
    "peel_contains_salicylic_acid": False,
}

# §8.1: the second fixed emergency line.
EYE_LINE = (
    "Peel liquid in your eye: rinse it with running water for 15 minutes, then call {number}."
)
# §5, emergency tier, in the templates' plain words.
EMERGENCY_TIER = [
    "Swelling of your face, trouble swallowing, wheezing, or feeling faint, dizzy or confused: "
    "call {number} now.",
    "hold the eye open under gently running, clean, lukewarm water for at least 15 to 20 minutes. "
    "Take out contact lenses. Do not rub. Then call {number} or go to the emergency department.",
    "Eye pain or any change in your vision after the peel: get emergency care now.",
    "Painful, hot, swollen skin around your eye, redness that spreads quickly, or a fever of "
    "38 °C (100.4 °F) or more",
]
SALICYLIC_LINE = (
    "Ringing in your ears, vomiting, dizziness, confusion, or fast, deep breathing after your "
    "peel: call {number} now."
)
# §5, call-the-clinic-today tier.
SAME_DAY_TIER = [
    "Tingling or burning, then a group of small blisters, sores or crusts, around your lips or "
    "nose or anywhere on the treated skin.",
    "Redness, swelling, warmth or pain that gets worse after the first day instead of better, "
    "or pus or yellow crusts.",
    "Blisters, or raw, open or weeping patches (not just dry flakes), or burning that is severe "
    "or has not eased by the next day.",
    "A new itchy rash, hives or swelling, where you were treated or beyond it",
    "Skin that is still raw, crusted, weeping, or red and sore on day 7.",
    "Dark or light patches or blotches in the days or weeks after the peel.",
    "Many pimples, or pimples that hurt or have pus.",
    "Eyelids so swollen that you cannot open your eyes.",
]
# §8.3: no medicine names (the aspirin allergy question of §6 is the one exception, and only
# for salicylic acid peels), never a link between peeling and results.
PEEL_FORBIDDEN = [
    *FORBIDDEN,
    "herpes",
    "antiviral",
    "isotretinoin",
    "hydrocortisone",
    "aciclovir",
    "acyclovir",
    "valacyclovir",
    "pigmentation",
    "working",
    "results",
    "guarantee",
]
FIRST_WASH_UNSET = "wash your face when we told you to"

US_CLINIC = Clinic(
    name="Riverside Skin Clinic",
    phone="+1 555 010 0100",
    timezone="America/New_York",
    brand_color="#0f766e",
    logo_url="",
    opening_hours="Monday to Friday, 9am to 5pm",
    after_hours="call +1 555 010 0199 and follow the message",
    country="US",
    emergency_override="",
    settings={},
)
UK_CLINIC = uk_clinic(
    settings={"care": {"peel_contains_salicylic_acid": True, "peel_first_wash": "tonight"}}
)


@pytest.fixture(scope="module")
def spec() -> CampaignSpec:
    return load_campaign_dir(PEEL_DIR)


@pytest.fixture(scope="module")
def templates(spec: CampaignSpec) -> TemplateSet:
    return TemplateSet.from_sources(spec.sources)


def step_keys() -> list[str]:
    return [step.key for step in load_campaign_dir(PEEL_DIR).steps]


def text_of(
    spec: CampaignSpec, templates: TemplateSet, step: StepSpec, number: str = "911", **care: Any
) -> str:
    rendered, _ = render_step(
        spec, templates, step, emergency_number=number, care={**spec.variables, **care}
    )
    return squeeze(rendered.text)


# ---- the manifest ------------------------------------------------------------------------------


def test_chemical_peel_campaign_loads_with_the_section_7_aftercare_sequence(
    spec: CampaignSpec,
) -> None:
    assert spec.slug == "chemical-peel"
    assert spec.name == "Chemical peel aftercare"
    after = [s for s in spec.steps if s.offset_days >= 0 and not s.late_booking]
    assert [(s.key, s.offset_days, s.send_time, s.checkin) for s in after] == AFTERCARE
    assert 1 <= step_named(spec, "day-0").offset_hours <= 2  # "~1-2 h after treatment"
    assert {"_layout.mjml", "_redflags.mjml"} <= set(spec.sources)
    assert all(step.send_until for step in spec.steps)


def test_care_variables_are_the_section_2_and_6_defaults(spec: CampaignSpec) -> None:
    assert spec.variables == CARE_DEFAULTS


def test_subjects_and_preheaders_avoid_characters_autoescape_would_mangle(
    spec: CampaignSpec,
) -> None:
    assert_header_safe(spec)


# ---- every email carries both tiers ------------------------------------------------------------


@pytest.mark.parametrize("number", ["911", "999"])
@pytest.mark.parametrize("key", step_keys())
def test_every_step_carries_both_tiers_and_the_eye_rinse_line(
    spec: CampaignSpec, templates: TemplateSet, key: str, number: str
) -> None:
    text = text_of(spec, templates, step_named(spec, key), number)
    assert "Emergency: get help now" in text
    assert EMERGENCY_LINE.format(number=number) in text
    assert EYE_LINE.format(number=number) in text
    for item in EMERGENCY_TIER:
        assert item.format(number=number) in text, item
    for item in SAME_DAY_TIER:
        assert item in text, item
    same_day_heading = f"{SAMPLE_CLINIC['name']} today on"
    assert text.index("Emergency: get help now") < text.index(same_day_heading)
    assert SAMPLE_CLINIC["phone"] in text


@pytest.mark.parametrize("key", step_keys())
def test_salicylic_acid_line_only_when_the_peel_contains_it(
    spec: CampaignSpec, templates: TemplateSet, key: str
) -> None:
    step = step_named(spec, key)
    line = SALICYLIC_LINE.format(number="911")
    assert line not in text_of(spec, templates, step)
    assert "aspirin" not in text_of(spec, templates, step)
    assert line in text_of(spec, templates, step, peel_contains_salicylic_acid=True)


@pytest.mark.parametrize("key", step_keys())
def test_no_diagnosis_no_medicine_names_no_promises(
    spec: CampaignSpec, templates: TemplateSet, key: str
) -> None:
    text = text_of(spec, templates, step_named(spec, key)).lower()
    for phrase in PEEL_FORBIDDEN:
        assert phrase not in text, phrase


def test_unset_first_wash_tells_the_patient_to_follow_the_clinic(
    spec: CampaignSpec, templates: TemplateSet
) -> None:
    day_0 = step_named(spec, "day-0")
    assert "First wash: " + FIRST_WASH_UNSET + "." in text_of(spec, templates, day_0)
    given = text_of(spec, templates, day_0, peel_first_wash="tomorrow morning")
    assert "First wash: wash your face for the first time tomorrow morning." in given
    assert FIRST_WASH_UNSET not in given


def test_durations_are_the_clinic_values_not_hard_coded(
    spec: CampaignSpec, templates: TemplateSet
) -> None:
    durations = [name for name in CARE_DEFAULTS if name.endswith(("_days", "_hours", "_weeks"))]
    odd = {name: 91 + n for n, name in enumerate(durations)}
    texts = " ".join(text_of(spec, templates, step, **odd) for step in spec.steps)
    for name, value in odd.items():
        assert str(value) in texts, name


# ---- the publish gate ------------------------------------------------------------------------


@pytest.mark.parametrize("clinic", [US_CLINIC, UK_CLINIC], ids=["us", "uk"])
def test_passes_the_safety_gate_for_a_us_and_a_uk_clinic(
    spec: CampaignSpec, clinic: Clinic
) -> None:
    assert check_publishable(spec, clinic) == []


def test_safety_gate_refuses_the_peel_emails_without_their_red_flag_block(
    spec: CampaignSpec,
) -> None:
    sources = {**spec.sources, "_redflags.mjml": "<mj-section><mj-column /></mj-section>\n"}
    broken = CampaignSpec(**{**vars(spec), "sources": sources})
    refused = check_publishable(broken, US_CLINIC)
    assert {p.step for p in refused} == {step.key for step in spec.steps}


# ---- before the peel (pre-care, branch precare) ------------------------------------------------

# §7, before the peel: key, days, send time, stop-now.
PRE_CARE = [
    ("pre-14", -14, "10:00", True),
    ("pre-7", -7, "10:00", True),
    ("pre-1", -1, "17:00", False),
]
SUN_ITEM = "No sunbathing, tanning beds or self-tan before your peel."
ACTIVES_ITEM = "Retinoids (including retinol), acids (AHA or BHA), benzoyl peroxide, scrubs"


def test_pre_care_follows_section_7_with_a_late_booking_email(spec: CampaignSpec) -> None:
    before = [s for s in spec.steps if s.offset_days < 0]
    assert [(s.key, s.offset_days, s.send_time, s.stop_now) for s in before] == PRE_CARE
    late = [s for s in spec.steps if s.late_booking]
    assert [s.key for s in late] == ["late-booking"]
    assert step_named(spec, "day-28").skip_if == ("next_session_booked", "one_off")
    assert spec.requires == {"peel_depth": ["superficial"]}


@pytest.mark.parametrize("key", ["pre-14", "pre-7", "pre-1", "late-booking"])
def test_pre_care_emails_say_when_to_postpone_and_that_the_peel_is_ahead(
    spec: CampaignSpec, templates: TemplateSet, key: str
) -> None:
    text = text_of(spec, templates, step_named(spec, key))
    assert "Call us to move your peel if you have" in text
    assert "a cold sore, or any other sore or infection on your skin" in text
    assert f"After your peel, call {SAMPLE_CLINIC['name']} today on" in text
    assert "because you booked a" in text and "because you had a" not in text


@pytest.mark.parametrize(
    ("missed", "shown", "hidden"),
    [
        (["pre-14"], [SUN_ITEM, "Tell us before your peel"], [ACTIVES_ITEM]),
        (["pre-7"], [ACTIVES_ITEM], [SUN_ITEM, "Tell us before your peel"]),
        (["pre-14", "pre-7"], [SUN_ITEM, ACTIVES_ITEM, "Tell us before your peel"], []),
    ],
)
def test_late_booking_email_lists_only_the_stop_now_items_it_stands_in_for(
    spec: CampaignSpec,
    templates: TemplateSet,
    missed: list[str],
    shown: list[str],
    hidden: list[str],
) -> None:
    step = step_named(spec, "late-booking")
    context = sample_context(
        spec.variables, step, pointer_days=7, treatment=spec.treatment, missed_steps=missed
    )
    rendered = render_full(templates, step.template, step.subject, step.preheader, context)
    text = squeeze(rendered.text)
    for item in shown:
        assert item in text, item
    for item in hidden:
        assert item not in text, item
    assert "If you could not stop them in time, tell us before your peel." in text
