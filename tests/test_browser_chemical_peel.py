"""Every chemical-peel email is readable on a 375 px phone screen (issue 13), in Chromium.

Each step is rendered as the admin preview renders it (for a US clinic and for a UK clinic with
a long name, a logo and the salicylic acid line), laid out at 375 px, saved as a full-page
screenshot in test-artifacts/screenshots/chemical-peel-<step>.png (the sample clinic) for a
person to look at, and must not scroll sideways.
"""

from __future__ import annotations

import pytest

from dripcare.content.campaigns import load_campaign_dir
from dripcare.content.previews import render_step
from dripcare.models import Clinic
from tests.browser_fixtures import PHONE_SCREEN, SCREENSHOTS, long_named_clinic
from tests.conftest import IN_CI
from tests.test_chemical_peel import PEEL_DIR, UK_CLINIC

try:
    from playwright.sync_api import Page
except ImportError:
    if IN_CI:
        raise
    pytest.skip("playwright is not installed", allow_module_level=True)

SPEC = load_campaign_dir(PEEL_DIR)
LONG_NAMED = long_named_clinic(UK_CLINIC.settings)  # salicylic: the longest red flags


@pytest.fixture
def page(phone_page: Page) -> Page:
    return phone_page


@pytest.mark.parametrize("clinic", [None, LONG_NAMED], ids=["sample", "long-named-gb"])
@pytest.mark.parametrize("key", [step.key for step in SPEC.steps])
def test_every_peel_email_fits_a_375_px_screen_without_sideways_scrolling(
    page: Page, key: str, clinic: Clinic | None
) -> None:
    rendered = render_step(SPEC, key, clinic)
    page.route("**/*", lambda route: route.abort())  # no network: the logo keeps its place
    page.set_content(rendered.html)

    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.body.scrollWidth, innerWidth]"
    )
    if clinic is None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / f"chemical-peel-{key}.png", full_page=True)
    assert page.get_by_role("heading", name="Emergency: get help now").is_visible()
    assert max(widths[:2]) <= PHONE_SCREEN["width"], (
        f"{key}: {widths} (scroll width, body, viewport)"
    )
