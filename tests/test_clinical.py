"""A campaign's clinical data: how it is read from campaign.toml and what it answers."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest

from dripcare.content.campaign_spec import CampaignSpec
from dripcare.content.campaigns import load_campaign_dir
from dripcare.content.clinical import parse_clinical
from dripcare.errors import UserError
from tests.campaign_fixtures import CAMPAIGN_DIR

MANIFEST = tomllib.loads((CAMPAIGN_DIR / "campaign.toml").read_text(encoding="utf-8"))


def shipped() -> dict[str, Any]:
    """A fresh copy of microneedling's [clinical] table, for one test to break."""
    return tomllib.loads((CAMPAIGN_DIR / "campaign.toml").read_text(encoding="utf-8"))["clinical"]


def parse(raw: Any, variables: dict[str, Any] | None = None) -> Any:
    return parse_clinical(raw, MANIFEST["variables"] if variables is None else variables, "c.toml")


def test_microneedling_carries_its_ten_flags_and_its_course() -> None:
    clinical = parse(shipped())

    assert [f.code for f in clinical.red_flags][:4] == ["airway", "spreading", "face-hot", "eye"]
    assert len(clinical.red_flags) == 10
    assert clinical.level_of(["worse"]) == "urgent"
    assert clinical.level_of(["worse", "eye"]) == "emergency"
    assert clinical.level_of([]) == "expected"
    assert clinical.course_on(1).startswith("Redness and swelling usually ease")
    assert clinical.course_on(400).startswith("By now your skin should look healed")
    assert [d for d in range(10) if clinical.needs_pointer(d)] == list(range(8))


def test_the_clinical_data_survives_a_stored_version_unchanged(spec: CampaignSpec) -> None:
    again = CampaignSpec.from_json(spec.to_json())

    assert again.clinical == spec.clinical
    assert again.digest() == spec.digest()


def test_a_conditional_flag_is_asked_only_while_its_care_value_is_true() -> None:
    raw = shipped()
    raw["red_flags"].append(
        {"code": "ears", "tier": "emergency", "text": "Ringing in your ears", "when": "salicylic"}
    )
    clinical = parse(raw, {"salicylic": False})

    assert "ears" not in [f.code for f in clinical.flags_for({"salicylic": False})]
    assert "ears" in [f.code for f in clinical.flags_for({"salicylic": True})]


@pytest.mark.parametrize(
    ("breakage", "said"),
    [
        (lambda c: c["red_flags"][4].update(tier="soon"), "tier must be 'emergency' or 'urgent'"),
        (lambda c: c["red_flags"][5].update(code="airway"), "code 'airway' is used twice"),
        (lambda c: c.pop("emergency_line"), "emergency_line is missing or empty"),
        (lambda c: c.update(pointer_line="Call us."), "pointer_line must contain {number}"),
        (lambda c: c.update(pointer_days=-1), "pointer_days must be a whole number"),
        (lambda c: c["red_flags"][0].update(colour="red"), "unknown field(s) colour"),
        (lambda c: c["red_flags"][0].update(when="nope"), "when = 'nope' must name a true/false"),
        (lambda c: c["expected_course"][-1].update(before_day=99), "the last entry takes no"),
        (lambda c: c["expected_course"][2].update(before_day=1), "before_day must grow"),
        (lambda c: c.update(red_flags=[]), "at least one [[clinical.red_flags]]"),
        (
            lambda c: c.update(red_flags=[f for f in c["red_flags"] if f["tier"] == "urgent"]),
            "at least one red flag must have tier = 'emergency'",
        ),
    ],
)
def test_broken_clinical_data_is_refused_saying_what_is_wrong(breakage: Any, said: str) -> None:
    raw = shipped()
    breakage(raw)

    with pytest.raises(UserError) as info:
        parse(raw)

    assert said in str(info.value)
    assert str(info.value).startswith("c.toml: [clinical]")


def test_a_campaign_directory_without_clinical_data_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "bare"
    shutil.copytree(CAMPAIGN_DIR, copy)
    manifest = (copy / "campaign.toml").read_text(encoding="utf-8")
    head, steps = manifest.split("\n[clinical]")[0], manifest.split("\n[[steps]]", 1)[1]
    without = head + "\n[[steps]]" + steps
    (copy / "campaign.toml").write_text(without, encoding="utf-8")

    with pytest.raises(UserError, match=r"the campaign has no \[clinical\] table"):
        load_campaign_dir(copy)
