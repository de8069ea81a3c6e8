"""The shipped microneedling campaign, loaded once, for tests that render it."""

from __future__ import annotations

from pathlib import Path

import pytest

from dripcare.content.campaigns import CampaignSpec, StepSpec, load_campaign_dir
from dripcare.content.rendering import TemplateSet

CAMPAIGN_DIR = Path(__file__).resolve().parents[1] / "templates" / "emails" / "microneedling"


@pytest.fixture(scope="module")
def spec() -> CampaignSpec:
    return load_campaign_dir(CAMPAIGN_DIR)


@pytest.fixture(scope="module")
def templates(spec: CampaignSpec) -> TemplateSet:
    return TemplateSet.from_sources(spec.sources)


def step_named(spec: CampaignSpec, key: str) -> StepSpec:
    return next(step for step in spec.steps if step.key == key)
