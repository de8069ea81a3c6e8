"""The template editor in headless Chromium, used as an admin would: edit, preview, publish.

Screenshots: test-artifacts/screenshots/campaign-editor-1280.png (the editor) and
campaign-preview-375.png (the email at phone width).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dripcare.config import Settings
from dripcare.content.campaigns import find_campaign
from dripcare.db import session_scope
from tests.admin_fixtures import PASSWORD, make_admin
from tests.browser_fixtures import shot
from tests.conftest import IN_CI, configure
from tests.factories import make_clinic
from tests.smtp_server import SMTPServer

try:
    from playwright.sync_api import Browser, Page, expect
except ImportError:
    if IN_CI:
        raise
    pytest.skip("playwright is not installed", allow_module_level=True)

pytestmark = pytest.mark.parametrize("database", ["postgresql"], indirect=True)


@pytest.fixture
def desktop(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def live_version(clinic: int) -> int:
    with session_scope() as session:
        return find_campaign(session, clinic, "microneedling").version


def test_edit_preview_error_publish_roll_back_and_test_email(
    settings: Settings,
    smtp_server: SMTPServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    live_server: str,
    desktop: Page,
    browser: Browser,
) -> None:
    configure(monkeypatch, tmp_path, DRIPCARE_SMTP_URL=smtp_server.url)
    clinic = make_clinic()
    email = make_admin(clinic_id=clinic)
    base = live_server
    page = desktop
    page.goto(f"{base}/admin/campaigns/microneedling/steps/day-3")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button:has-text('Sign in')")
    expect(page.locator("h1")).to_contain_text("day-3")

    # Edit the subject and see the preview change (JavaScript refresh).
    page.fill("#subject", "Day 3: your skin is settling")
    page.click("#preview-button")
    expect(page.locator("#preview-subject")).to_have_text("Day 3: your skin is settling")
    phone = page.frame_locator("#frame-phone")
    expect(phone.locator("body")).to_contain_text("Emergency: get help now")
    shot(page, "campaign-editor-1280")

    # A template error shows inline with its line number, before saving.
    body = page.input_value("#body")
    page.fill("#body", body.replace("{{ care.actives_days }}", "{{ care.activs }}"))
    page.click("#preview-button")
    expect(page.locator("#problems")).to_contain_text("day-03.mjml line 20:")
    expect(page.locator("#problems")).to_contain_text("'care.activs' is undefined")
    expect(page.locator(".preview .stale-note")).to_be_visible()
    shot(page, "campaign-editor-error-1280")
    page.fill("#body", body)

    page.click("button:has-text('Save draft')")
    expect(page.locator(".flash")).to_contain_text("saved as draft version 2")

    page.goto(f"{base}/admin/campaigns/microneedling")
    page.click("button:has-text('Publish version 2')")
    expect(page.locator(".flash")).to_contain_text("version 2 is live")
    assert live_version(clinic) == 2
    expect(page.locator("#step-day-3")).to_contain_text("Day 3: your skin is settling")

    page.click("button:has-text('Roll back to 1')")
    expect(page.locator(".flash")).to_contain_text("rolled back to version 1")
    assert live_version(clinic) == 3
    expect(page.locator("#step-day-3")).to_contain_text("Day 3: flaking, pimples")

    page.goto(f"{base}/admin/campaigns/microneedling/steps/day-3")
    page.click("button:has-text('Send test email')")  # to the admin's own address, prefilled
    expect(page.locator(".flash")).to_contain_text("sent to ")
    assert smtp_server.recorder.wait_for(1, timeout=10)
    assert smtp_server.recorder.messages[0]["Subject"].startswith("[Test] Day 3")

    # The preview at phone width, as a phone shows it.
    html = page.locator("#frame-phone").get_attribute("srcdoc") or ""
    phone_context = browser.new_context(viewport={"width": 375, "height": 812})
    phone_page = phone_context.new_page()
    phone_page.set_content(html)
    width = phone_page.evaluate("document.documentElement.scrollWidth")
    shot(phone_page, "campaign-preview-375")
    phone_context.close()
    assert width <= 375

    page.goto(f"{base}/admin/campaigns/microneedling")
    shot(page, "campaign-timeline-1280")
