"""One headless Debian Chromium per test session, shared by every browser test module.

Playwright's sync API runs one event loop per thread: two session-scoped launches (one per
module) would collide, so the browser lives here, once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI, service_down

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        if IN_CI:
            raise
        pytest.skip("playwright is not installed")
    if not CHROMIUM.exists():
        service_down(f"Chromium ({CHROMIUM})")
    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
        except PlaywrightError as exc:
            service_down(f"Chromium ({exc.message.splitlines()[0]})")
        yield launched
        launched.close()


def shot(page: Any, name: str) -> None:
    """Save the whole page for a person to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


PHONE_SCREEN = {"width": 375, "height": 667}  # the smaller phone screen of issue 13


@pytest.fixture
def phone_page(browser: Any) -> Iterator[Any]:
    """A page on a 375 x 667 touch screen, in a context of its own."""
    context = browser.new_context(viewport=PHONE_SCREEN, is_mobile=True, has_touch=True)
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def long_named_clinic(settings: dict[str, Any]) -> Any:
    """A UK clinic whose long name and logo push an email down as far as a real clinic's could."""
    from dripcare.models import Clinic

    return Clinic(
        name="The Harbour Dermatology and Skin Health Clinic of North London",
        phone="020 7946 0000",
        timezone="Europe/London",
        brand_color="#1e3a8a",
        logo_url="https://harbour.example/logo.png",
        opening_hours="Tuesday to Saturday, 10am to 6pm",
        after_hours="call NHS 111 for advice",
        country="GB",
        emergency_override="",
        settings=settings,
    )
