"""One headless Debian Chromium per test session, shared by every browser test module.

Playwright's sync API runs one event loop per thread: two session-scoped launches (one per
module) would collide, so the browser lives here, once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dripcare.models import Clinic
from tests.conftest import IN_CI, service_down
from tests.factories import uk_clinic

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


def new_page(browser: Any, viewport: dict[str, int], phone: bool, **options: Any) -> Iterator[Any]:
    """A page in a context of its own (a touch screen if `phone`), closed when the test is done;
    `options` go to the context (java_script_enabled=False, ...)."""
    context = browser.new_context(viewport=viewport, is_mobile=phone, has_touch=phone, **options)
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def phone_page(browser: Any) -> Iterator[Any]:
    """A page on a 375 x 667 touch screen, in a context of its own."""
    yield from new_page(browser, PHONE_SCREEN, phone=True)


def long_named_clinic(settings: dict[str, Any]) -> Clinic:
    """A UK clinic whose long name and logo push an email down as far as a real clinic's could."""
    return uk_clinic("The Harbour Dermatology and Skin Health Clinic of North London", settings)
