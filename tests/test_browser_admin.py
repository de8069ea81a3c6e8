"""The admin in a real headless Chromium, at desktop (1280 px) and phone (375 px) width:
sign in, see the outbox, open a sent email, edit the branding.

Screenshots go to test-artifacts/screenshots/admin-*.png for a person to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import select

from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.models import Clinic
from tests.admin_fixtures import PASSWORD, ClinicWithHistory, clinic_with_history
from tests.browser_fixtures import new_page, shot

try:
    from playwright.sync_api import Browser, Page, expect
except ImportError:  # test_browser has skipped (or, in CI, failed) already
    pytest.skip("playwright is not installed", allow_module_level=True)

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 812}

# One browser database is enough: the pages' SQL is covered on both by the httpx tests.
pytestmark = pytest.mark.parametrize("database", ["postgresql"], indirect=True)


@pytest.fixture
def riverside(settings: Settings, admin_now: datetime) -> ClinicWithHistory:
    return clinic_with_history(settings, "Riverside Skin Clinic", "Ana", "riverside")


@pytest.fixture(params=["1280", "375"])
def width_page(request: pytest.FixtureRequest, browser: Browser) -> Iterator[tuple[str, Page]]:
    phone = request.param == "375"
    for page in new_page(browser, PHONE if phone else DESKTOP, phone):
        yield request.param, page


def sign_in(page: Page, live_server: str, email: str) -> None:
    page.goto(f"{live_server}/admin")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


LAYOUT_PROBLEMS = """() => {
  const problems = [];
  const { scrollWidth, clientWidth } = document.documentElement;
  if (scrollWidth > clientWidth) problems.push(`${scrollWidth} px wide on ${clientWidth}`);
  if (window.visualViewport.scale !== 1) problems.push(`zoomed to ${window.visualViewport.scale}`);
  window.scrollTo(0, 0);
  for (const control of document.querySelectorAll("header a, header button, header select")) {
    const box = control.getBoundingClientRect();
    const hit = document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2);
    if (!control.contains(hit)) problems.push(`${control.textContent.trim()} is covered`);
  }
  return problems;
}"""


def layout_problems(page: Page) -> list[str]:
    """Nothing but the tables' own scroll areas may be wider than the screen, the browser must
    not zoom out to fit the page, and every header control must take a tap at its centre."""
    return list(page.evaluate(LAYOUT_PROBLEMS))


def test_sign_in_see_the_outbox_open_a_sent_email_and_edit_branding(
    live_server: str, riverside: ClinicWithHistory, width_page: tuple[str, Page]
) -> None:
    width, page = width_page
    page.goto(f"{live_server}/admin/sign-in")
    shot(page, f"admin-sign-in-{width}")

    sign_in(page, live_server, riverside.admin_email)
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
    page.get_by_role("link", name="Outbox").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Outbox")
    expect(page.get_by_role("heading", name="Red-flag check-ins")).to_be_visible()
    assert layout_problems(page) == []
    shot(page, f"admin-outbox-{width}")

    recent = page.locator("section", has=page.get_by_role("heading", name="Recent"))
    recent.get_by_role("link", name="Caring for your skin today").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Caring for your skin today")
    email = page.frame_locator("iframe.email")
    expect(email.locator("body")).to_contain_text("Ana")
    expect(email.locator("body")).to_contain_text("Riverside Skin Clinic")
    expect(page.locator("pre.text")).to_contain_text("Ana")
    assert layout_problems(page) == []
    shot(page, f"admin-email-{width}")

    page.get_by_role("link", name="Branding").click()
    page.get_by_label("Logo", exact=True).fill("http://not-https.example/logo.png")
    page.get_by_role("button", name="Save branding").click()
    expect(page.locator("#logo_url-error")).to_contain_text("must start with https://")
    shot(page, f"admin-branding-error-{width}")

    page.get_by_label("Logo", exact=True).fill("")
    page.get_by_label("Clinic name").fill(f"Riverside Skin & Laser {width}")
    page.get_by_label("Brand colour").fill("#7c3aed")
    page.get_by_role("button", name="Save branding").click()
    expect(page.get_by_role("status")).to_contain_text("Saved.")
    assert layout_problems(page) == []
    shot(page, f"admin-branding-{width}")
    with session_scope() as session:
        clinic = session.scalars(select(Clinic).where(Clinic.id == riverside.clinic_id)).one()
        assert (clinic.name, clinic.brand_color) == (f"Riverside Skin & Laser {width}", "#7c3aed")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    page.goto(f"{live_server}/admin/outbox")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")


def test_branding_preview_shows_the_unsaved_colour_beside_the_form(
    live_server: str, riverside: ClinicWithHistory, browser: Browser
) -> None:
    for page in new_page(browser, DESKTOP, phone=False):
        sign_in(page, live_server, riverside.admin_email)
        page.get_by_role("link", name="Branding").click()
        desktop = page.frame_locator("#frame-desktop")
        expect(desktop.locator("body")).to_contain_text("Riverside Skin Clinic")

        page.get_by_label("Clinic name").fill("Riverside Preview Clinic")
        page.get_by_label("Brand colour").fill("#b45309")
        page.get_by_role("button", name="Preview").click()

        expect(page.locator("#preview-source")).to_contain_text("not saved yet")
        for frame in ("#frame-desktop", "#frame-phone"):
            email = page.frame_locator(frame)
            expect(email.locator("body")).to_contain_text("Riverside Preview Clinic")
            header = email.locator('div[style*="background-color:#b45309"]').first
            expect(header).to_be_visible()
        assert page.locator("#frame-phone").bounding_box()["width"] == 375  # type: ignore[index]
        expect(page.get_by_label("Brand colour")).to_have_value("#b45309")
        assert layout_problems(page) == []
        page.set_viewport_size({"width": 1280, "height": 1700})  # both frames get painted
        shot(page, "admin-branding-preview-1280")
        with session_scope() as session:
            clinic = session.scalars(select(Clinic).where(Clinic.id == riverside.clinic_id)).one()
            assert (clinic.name, clinic.brand_color) == ("Riverside Skin Clinic", "#0f766e")
