"""Tests for the default microneedling campaign and for load_campaign_dir's validation.

The expectations come from /work/shared/content/microneedling-aftercare.md: §2 (care values),
§4 (both red-flag tiers in every email), §6 (the sequence) and §7 (wording rules). They are
written out here rather than read from the templates, so a template edit that drops a red flag
or hard-codes a duration fails a test.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from dripcare.content.campaigns import CampaignSpec, StepSpec, load_campaign_dir
from dripcare.content.email_context import SAMPLE_CLINIC, sample_context
from dripcare.content.rendering import Rendered, TemplateSet, render_full
from dripcare.errors import UserError
from tests.campaign_fixtures import CAMPAIGN_DIR, step_named

# §6: key, days, send time, check-in.
SEQUENCE = [
    ("day-0", 0, None, False),
    ("day-1", 1, "09:00", True),
    ("day-3", 3, "09:00", True),
    ("day-7", 7, "09:00", True),
    ("day-14", 14, "09:00", False),
    ("day-28", 28, "10:00", False),
    ("day-42", 42, "10:00", False),
]
STEP_KEYS = [key for key, *_ in SEQUENCE]
CHECKIN_KEYS = {key for key, _, _, checkin in SEQUENCE if checkin}

# §2 defaults.
CARE_DEFAULTS = {
    "makeup_hours": 24,
    "spf_from_hours": 24,
    "spf_days": 14,
    "actives_days": 7,
    "exercise_hours": 72,
    "pool_hours": 72,
    "next_session_weeks": 4,
    "water_only_days": 2,
    "gentle_cleanser_until_day": 5,
}

EMERGENCY_LINE = "Swelling of lips, tongue or throat, or trouble breathing: call {number} now."

# §4, emergency tier, in the templates' plain words.
EMERGENCY_TIER = [
    "Swelling of your face, trouble swallowing, wheezing, feeling dizzy or confused: "
    "call {number} now.",
    "Redness that spreads quickly, or a fever of 38 °C (100.4 °F) or more, vomiting, a fast "
    "heartbeat or fast breathing: go to the emergency department.",
    "Painful, hot, swollen skin on your face, especially around the eye, or skin that gets worse "
    "quickly: get urgent medical care today.",
    "Eye pain or any change in your vision after treatment near your eyes: get emergency care now.",
]
# §4, call-the-clinic-today tier.
SAME_DAY_TIER = [
    "Redness, warmth or itching that is getting worse, or pus.",
    "Tingling or burning, then a group of blisters, sores or crusts, especially near your lips.",
    "Redness or swelling that is not getting better by day 3, or is still there on day 7.",
    "A new itchy, red, bumpy or scaly rash, or lumps, where you were treated.",
    "Many pimples, or pimples that hurt or have pus.",
    "Dark or light patches, or grid or track marks that last more than a week.",
]
# §3 and §7.3: no "purging", never a diagnosis.
FORBIDDEN = [
    "purging",
    "purge",
    "this may be",
    "this might be",
    "this could be",
    "this is a sign",
    "is a sign of",
    "means the treatment is working",
    "you have an infection",
    "is an infection",
    "is a cold sore",
    "is herpes",
    "is an allergic reaction",
    "you may have",
    "diagnos",
]

OTHER_CLINIC = {
    "name": "Harbour Dermatology",
    "phone": "020 7946 0000",
    "phone_uri": "tel:02079460000",
    "opening_hours": "Tuesday to Saturday, 10am to 6pm",
    "after_hours": "call NHS 111 for advice",
    "brand_color": "#1e3a8a",
    "logo_url": "https://harbour.example/logo.png",
}

TEMPLATE_SYNTAX = re.compile(r"\{\{|\}\}|\{%|%\}|\{#|#\}")


def render_step(
    spec: CampaignSpec,
    templates: TemplateSet,
    step: StepSpec,
    *,
    emergency_number: str = "911",
    clinic: dict[str, Any] | None = None,
    care: dict[str, Any] | None = None,
) -> tuple[Rendered, dict[str, Any]]:
    care = care if care is not None else spec.variables
    days, treatment = spec.clinical.pointer_days, spec.treatment
    context = sample_context(care, step, clinic, pointer_days=days, treatment=treatment)
    context["emergency_number"] = emergency_number
    rendered = render_full(templates, step.template, step.subject, step.preheader, context)
    return rendered, context


def squeeze(text: str) -> str:
    """Plain text with white space (html2text line breaks, no-break spaces) made single spaces."""
    return " ".join(text.replace("\xa0", " ").split())


# ---- the manifest ------------------------------------------------------------------------------


def test_default_campaign_loads(spec: CampaignSpec) -> None:
    assert spec.slug == "microneedling"
    assert spec.treatment == "microneedling"
    assert spec.name == "Microneedling aftercare"
    assert [step.key for step in spec.steps] == STEP_KEYS
    assert {"_layout.mjml", "_redflags.mjml"} <= set(spec.sources)
    assert {step.template for step in spec.steps} <= set(spec.sources)


@pytest.mark.parametrize(("key", "days", "send_time", "checkin"), SEQUENCE)
def test_step_timing_follows_section_6(
    spec: CampaignSpec, key: str, days: int, send_time: str | None, checkin: bool
) -> None:
    step = step_named(spec, key)
    assert step.offset_days == days
    assert step.send_time == send_time
    assert step.checkin is checkin
    assert step.offset_minutes == 0
    if key == "day-0":
        assert 1 <= step.offset_hours <= 2  # "~1-2 h after treatment"
    else:
        assert step.offset_hours == 0


def test_checkin_exactly_on_days_1_3_7(spec: CampaignSpec) -> None:
    assert [s.key for s in spec.steps if s.checkin] == ["day-1", "day-3", "day-7"]


def test_care_variables_are_the_section_2_defaults(spec: CampaignSpec) -> None:
    assert spec.variables == CARE_DEFAULTS


def test_subjects_and_preheaders_avoid_characters_autoescape_would_mangle(
    spec: CampaignSpec,
) -> None:
    assert_header_safe(spec)


def assert_header_safe(spec: CampaignSpec) -> None:
    """Subjects and preheaders go into headers: no characters autoescape turns into entities."""
    for step in spec.steps:
        for value in (step.subject, step.preheader):
            assert value.strip()
            assert not set(value) & set("&<>\"'"), (step.key, value)
            assert TEMPLATE_SYNTAX.search(value) is None


# ---- every email carries what §4 and §7 require -----------------------------------------------


@pytest.mark.parametrize("number", ["911", "999", "112"])
@pytest.mark.parametrize("key", STEP_KEYS)
def test_every_step_carries_the_emergency_line_and_both_tiers(
    spec: CampaignSpec, templates: TemplateSet, key: str, number: str
) -> None:
    rendered, _ = render_step(spec, templates, step_named(spec, key), emergency_number=number)
    text = squeeze(rendered.text)

    emergency = EMERGENCY_LINE.format(number=number)
    assert emergency in text
    assert emergency in rendered.html
    for item in EMERGENCY_TIER:
        assert item.format(number=number) in text, item
    for item in SAME_DAY_TIER:
        assert item in text, item
    same_day_heading = f"Call {SAMPLE_CLINIC['name']} today on"
    assert "Emergency: get help now" in text
    assert text.index("Emergency: get help now") < text.index(same_day_heading)
    for other in {"911", "999", "112"} - {number}:
        assert f"call {other}" not in text


POINTER_KEYS = [key for key, days, *_ in SEQUENCE if days <= 7]
# §7.1's fixed emergency line, then where the rest is: no advice of its own.
POINTER = EMERGENCY_LINE + " More warning signs are listed below."


@pytest.mark.parametrize("number", ["911", "999"])
@pytest.mark.parametrize("key", STEP_KEYS)
def test_days_0_to_7_open_with_the_emergency_pointer(
    spec: CampaignSpec, templates: TemplateSet, key: str, number: str
) -> None:
    """Issue 13: on a phone the block is far down, so the first lines point to it."""
    rendered, _ = render_step(spec, templates, step_named(spec, key), emergency_number=number)
    lines = [line for line in rendered.text.splitlines() if line.strip()]
    pointer = POINTER.format(number=number)
    if key not in POINTER_KEYS:
        assert pointer not in squeeze(rendered.text)
        assert 'id="emergency-pointer"' not in rendered.html
        return
    # clinic name, greeting, then the pointer: before any of the step's own content
    assert squeeze(lines[2]) == pointer
    html = rendered.html
    assert html.index('id="emergency-pointer"') < html.index("<h2")
    # the full block is still there further down
    text = squeeze(rendered.text)
    assert text.count(EMERGENCY_LINE.format(number=number)) == 2
    assert text.index(pointer) < text.index("Emergency: get help now")


@pytest.mark.parametrize("key", STEP_KEYS)
def test_every_step_carries_clinic_contact_and_links(
    spec: CampaignSpec, templates: TemplateSet, key: str
) -> None:
    step = step_named(spec, key)
    rendered, context = render_step(spec, templates, step, clinic=OTHER_CLINIC)
    text = squeeze(rendered.text)
    links = context["links"]

    assert "Riverside" not in rendered.html
    phone, phone_uri = OTHER_CLINIC["phone"], OTHER_CLINIC["phone_uri"]
    assert f"Call Harbour Dermatology today on [{phone}](<{phone_uri}>) if you have:" in text
    assert f"Phone: [{phone}](<{phone_uri}>)" in text
    assert f'href="{phone_uri}"' in rendered.html
    assert f"Opening hours: {OTHER_CLINIC['opening_hours']}" in text
    # the after-hours route is free text: the numbers in it are tap-to-call
    assert "When we are closed: call NHS [111](<tel:111>) for advice" in text
    assert '<a href="tel:111">111</a>' in rendered.html
    assert f'href="{links["unsubscribe"]}"' in rendered.html
    assert f'href="{links["preferences"]}"' in rendered.html
    assert f"[Unsubscribe](<{links['unsubscribe']}>)" in text
    assert f"[Email preferences](<{links['preferences']}>)" in text
    assert "Tuesday 24 November 2026" in text


def test_after_hours_default_names_the_clinic_phone(
    spec: CampaignSpec, templates: TemplateSet
) -> None:
    rendered, _ = render_step(spec, templates, step_named(spec, "day-14"))
    assert (
        "When we are closed: call [+1 555 010 0199](<tel:+15550100199>) and follow the message"
        in rendered.text
    )


@pytest.mark.parametrize("key", STEP_KEYS)
def test_checkin_buttons_only_on_checkin_steps(
    spec: CampaignSpec, templates: TemplateSet, key: str
) -> None:
    rendered, context = render_step(spec, templates, step_named(spec, key))
    ok, worried = context["links"]["checkin_ok"], context["links"]["checkin_worried"]
    if key in CHECKIN_KEYS:
        assert f'href="{ok}"' in rendered.html
        assert f'href="{worried}"' in rendered.html
        assert f"[Healing as expected](<{ok}>)" in rendered.text
        assert f"[I'm worried](<{worried}>)" in rendered.text
        assert "How is your skin today?" in rendered.text
        assert "A button is not a phone call." in rendered.text
    else:
        for value in (ok, worried, "checkin", "How is your skin today?", "I'm worried"):
            assert value not in rendered.html
            assert value not in rendered.text


@pytest.mark.parametrize("key", STEP_KEYS)
def test_no_purging_and_no_diagnosis(spec: CampaignSpec, templates: TemplateSet, key: str) -> None:
    rendered, _ = render_step(spec, templates, step_named(spec, key))
    everything = " ".join([rendered.subject, rendered.preheader, rendered.text]).lower()
    for phrase in FORBIDDEN:
        assert phrase not in everything, phrase
    source = spec.sources[step_named(spec, key).template].lower()
    assert "purg" not in source


@pytest.mark.parametrize("key", STEP_KEYS)
def test_html_compiles_and_text_has_no_template_left(
    spec: CampaignSpec, templates: TemplateSet, key: str
) -> None:
    step = step_named(spec, key)
    rendered, _ = render_step(spec, templates, step)
    assert rendered.html.startswith("<!doctype html>")
    assert rendered.html.rstrip().endswith("</html>")
    assert "<mj-" not in rendered.html and "</mj-" not in rendered.html
    assert f"<title>{step.subject}</title>" in rendered.html
    for part in (rendered.subject, rendered.preheader, rendered.html, rendered.text):
        assert TEMPLATE_SYNTAX.search(part) is None
    assert rendered.subject == step.subject
    assert rendered.text.startswith("Riverside Skin Clinic\n")
    assert "Hi Alex," in rendered.text


def test_day_42_states_the_weeks_from_the_step(spec: CampaignSpec, templates: TemplateSet) -> None:
    rendered, _ = render_step(spec, templates, step_named(spec, "day-42"))
    assert "It is 6 weeks since your microneedling treatment on Tuesday 24 November 2026." in (
        squeeze(rendered.text)
    )


@pytest.mark.parametrize("variable", sorted(CARE_DEFAULTS))
def test_every_care_value_is_the_clinics_not_hard_coded(
    spec: CampaignSpec, templates: TemplateSet, variable: str
) -> None:
    """§7.4: durations come from the clinic's values; each one shows up when it is changed."""
    care = {**spec.variables, variable: 987}
    texts = [render_step(spec, templates, step, care=care)[0].text for step in spec.steps]
    assert any("987" in text for text in texts), variable


def test_changed_care_values_reach_the_text(spec: CampaignSpec, templates: TemplateSet) -> None:
    care = {**spec.variables, "makeup_hours": 48, "actives_days": 5, "pool_hours": 120}
    day0, _ = render_step(spec, templates, step_named(spec, "day-0"), care=care)
    day7, _ = render_step(spec, templates, step_named(spec, "day-7"), care=care)
    assert "No makeup for 48 hours." in day0.text
    assert "No pool, sauna or hot tub for 120 hours." in day0.text
    assert "Our usual rule is 5 days after treatment." in day7.text


# ---- load_campaign_dir rejects bad campaigns ---------------------------------------------------


@pytest.fixture
def campaign(tmp_path: Path) -> Path:
    target = tmp_path / "campaign"
    shutil.copytree(CAMPAIGN_DIR, target)
    return target


def edit_manifest(directory: Path, old: str, new: str) -> None:
    manifest = directory / "campaign.toml"
    text = manifest.read_text(encoding="utf-8")
    assert text.count(old) >= 1, f"fixture text not found: {old!r}"
    manifest.write_text(text.replace(old, new, 1), encoding="utf-8")


def edit_template(directory: Path, name: str, old: str, new: str) -> None:
    path = directory / name
    text = path.read_text(encoding="utf-8")
    assert old in text, f"fixture text not found: {old!r}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def rejection(directory: Path) -> str:
    with pytest.raises(UserError) as info:
        load_campaign_dir(directory)
    message = str(info.value)
    assert str(directory) in message, "the message names the campaign directory"
    return message


def test_copy_of_default_campaign_loads(campaign: Path) -> None:
    assert [s.key for s in load_campaign_dir(campaign).steps] == STEP_KEYS


def test_a_loaded_campaign_is_read_again_once_a_file_changes(campaign: Path) -> None:
    first = load_campaign_dir(campaign)
    edit_template(campaign, "day-07.mjml", "{{ care.actives_days }}", "{{ care.actives_days }}!")
    edit_manifest(campaign, 'slug = "microneedling"', 'slug = "needling"')

    again = load_campaign_dir(campaign)

    assert again.slug == "needling" and first.slug == "microneedling"
    assert again.sources["day-07.mjml"] != first.sources["day-07.mjml"]


def test_each_load_of_an_unchanged_campaign_gets_its_own_containers(campaign: Path) -> None:
    first = load_campaign_dir(campaign)
    first.sources.clear()
    first.variables.clear()
    first.steps.clear()

    again = load_campaign_dir(campaign)

    assert [s.key for s in again.steps] == STEP_KEYS
    assert again.sources and again.variables


def test_directory_without_manifest(tmp_path: Path) -> None:
    (tmp_path / "day-00.mjml").write_text("<mjml></mjml>", encoding="utf-8")
    message = rejection(tmp_path)
    assert message == f"{tmp_path} is not a campaign directory: it has no campaign.toml"


def test_duplicate_step_keys(campaign: Path) -> None:
    edit_manifest(campaign, 'key = "day-3"', 'key = "day-1"')
    assert "step keys must be unique; repeated: day-1" in rejection(campaign)


def test_step_naming_a_missing_template(campaign: Path) -> None:
    edit_manifest(campaign, 'template = "day-03.mjml"', 'template = "day-99.mjml"')
    assert "step 'day-3' names day-99.mjml, which is missing" in rejection(campaign)


def test_deleted_template_file(campaign: Path) -> None:
    (campaign / "day-28.mjml").unlink()
    assert "step 'day-28' names day-28.mjml, which is missing" in rejection(campaign)


def test_template_with_undefined_variable(campaign: Path) -> None:
    edit_template(campaign, "day-07.mjml", "{{ care.actives_days }}", "{{ care.activs_days }}")
    message = rejection(campaign)
    assert "step 'day-7' does not render" in message
    assert "'day-07.mjml'" in message
    assert "activs_days" in message


def test_shared_partial_with_undefined_variable(campaign: Path) -> None:
    edit_template(campaign, "_redflags.mjml", "{{ emergency_number }}", "{{ emergency_phone }}")
    message = rejection(campaign)
    assert "step 'day-0' does not render" in message  # the first step already fails
    assert "'emergency_phone' is undefined" in message


def test_template_with_invalid_mjml_names_the_line(campaign: Path) -> None:
    edit_template(campaign, "day-14.mjml", "</mj-section>", "")
    message = rejection(campaign)
    assert "day-14.mjml line 3: MJML, column 5: <mj-section> is never closed" in message
    assert "MRML says: unexpected end of stream" in message


def test_template_with_syntax_error(campaign: Path) -> None:
    edit_template(campaign, "day-01.mjml", "{% endblock %}", "{% endblok %}")
    message = rejection(campaign)
    assert "day-01.mjml line 28: Jinja syntax: Encountered unknown tag 'endblok'" in message


def test_subject_with_undefined_variable(campaign: Path) -> None:
    edit_manifest(
        campaign, 'subject = "Caring for your skin today"', 'subject = "Hi {{ patient.name }}"'
    )
    message = rejection(campaign)
    assert "step 'day-0' does not render" in message
    assert "has no attribute 'name'" in message


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        ("{ days = -3, hours = 2 }", "either before the treatment (every offset ≤ 0)"),
        ("{ days = 3, hours = -1 }", "or after it (every offset ≥ 0), got days=3 hours=-1"),
        ("{ days = 1.5 }", "offset values must be whole numbers (negative: before the treatment)"),
        ('{ days = "3" }', "offset values must be whole numbers (negative: before the treatment)"),
        ("{ weeks = 1 }", "offset takes days, hours and minutes, not ['weeks']"),
        ("{ days = 3, seconds = 5 }", "offset takes days, hours and minutes, not ['seconds']"),
    ],
    ids=["mixed-signs", "negative-hours", "float", "string", "weeks", "seconds"],
)
def test_bad_offset(campaign: Path, offset: str, expected: str) -> None:
    edit_manifest(campaign, "offset = { days = 3 }", f"offset = {offset}")
    message = rejection(campaign)
    assert "step 3:" in message
    assert expected in message


@pytest.mark.parametrize("send_time", ["25:00", "09:60", "9am", "", "24:00"])
def test_bad_send_time(campaign: Path, send_time: str) -> None:
    edit_manifest(campaign, 'send_time = "10:00"', f'send_time = "{send_time}"')
    message = rejection(campaign)
    assert "step 6:" in message
    assert f"local time must look like 09:00 (00:00-23:59), got {send_time!r}" in message


def test_manifest_without_steps(campaign: Path) -> None:
    manifest = campaign / "campaign.toml"
    text = manifest.read_text(encoding="utf-8")
    manifest.write_text(text.split("[[steps]]")[0], encoding="utf-8")
    assert "a campaign needs at least one [[steps]] entry" in rejection(campaign)


def test_manifest_without_slug(campaign: Path) -> None:
    edit_manifest(campaign, 'slug = "microneedling"', 'slug = "  "')
    assert "'slug' is missing or empty" in rejection(campaign)


def test_step_without_template(campaign: Path) -> None:
    edit_manifest(campaign, 'template = "day-42.mjml"\n', "")
    assert "'template' is missing or empty" in rejection(campaign)


def test_manifest_that_is_not_toml(campaign: Path) -> None:
    edit_manifest(campaign, 'slug = "microneedling"', "slug = microneedling")
    assert "campaign.toml" in rejection(campaign)


def test_template_raising_a_python_error(campaign: Path) -> None:
    edit_template(campaign, "day-07.mjml", "{{ care.actives_days }}", "{{ 7 // 0 }}")
    message = rejection(campaign)
    assert "step 'day-7' does not render" in message
    assert "ZeroDivisionError" in message


def test_offset_that_is_not_a_table(campaign: Path) -> None:
    edit_manifest(campaign, "offset = { days = 3 }", "offset = 3")
    assert "offset" in rejection(campaign)


def test_boolean_offset(campaign: Path) -> None:
    edit_manifest(campaign, "offset = { days = 3 }", "offset = { days = true }")
    assert "offset" in rejection(campaign)


def test_checkin_must_be_a_boolean(campaign: Path) -> None:
    edit_manifest(
        campaign,
        'template = "day-14.mjml"\ncheckin = false',
        'template = "day-14.mjml"\ncheckin = "false"',
    )
    assert "checkin" in rejection(campaign)
