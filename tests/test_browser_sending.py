"""The Sending page in a real headless Chromium: a clinic admin sets quiet hours at phone and
desktop width; a platform admin makes a DKIM key and sees the TXT record to publish.

Screenshots go to test-artifacts/screenshots/admin-sending-*.png.
"""

from __future__ import annotations

import pytest

from dripcare.db import session_scope
from dripcare.models import Clinic, DkimKey
from tests.admin_fixtures import ClinicWithHistory, make_admin
from tests.browser_fixtures import shot
from tests.test_browser_admin import (  # noqa: F401 (fixtures)
    DESKTOP,
    layout_problems,
    new_page,
    riverside,
    sign_in,
    width_page,
)

try:
    from playwright.sync_api import Browser, Page, expect
except ImportError:
    pytest.skip("playwright is not installed", allow_module_level=True)

pytestmark = pytest.mark.parametrize("database", ["postgresql"], indirect=True)


def test_a_clinic_admin_sets_quiet_hours(
    live_server: str,
    riverside: ClinicWithHistory,  # noqa: F811
    width_page: tuple[str, Page],  # noqa: F811
) -> None:
    width, page = width_page
    sign_in(page, live_server, riverside.admin_email)
    page.get_by_role("link", name="Sending").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sending")
    expect(page.locator("#quiet-now")).to_contain_text("platform's quiet hours: 21:00-08:00")

    page.get_by_label("Quiet hours (HH:MM-HH:MM)").fill("08:00-08:00")
    page.get_by_role("button", name="Save quiet hours").click()
    expect(page.locator("#quiet_hours-error")).to_contain_text("start and end at the same time")

    page.get_by_label("Quiet hours (HH:MM-HH:MM)").fill("20:30-7:15")
    page.get_by_role("button", name="Save quiet hours").click()
    expect(page.get_by_role("status")).to_contain_text("Quiet hours saved")
    expect(page.locator("#quiet-now")).to_contain_text("between 20:30-07:15")
    expect(page.get_by_label("Quiet hours (HH:MM-HH:MM)")).to_have_value("20:30-07:15")
    assert layout_problems(page) == []
    shot(page, f"admin-sending-{width}")
    with session_scope() as session:
        assert session.get_one(Clinic, riverside.clinic_id).quiet_hours == "20:30-07:15"


def test_a_platform_admin_makes_a_dkim_key_and_sees_the_record(
    live_server: str,
    riverside: ClinicWithHistory,  # noqa: F811
    browser: Browser,
) -> None:
    for page in new_page(browser, DESKTOP, phone=False):
        sign_in(page, live_server, make_admin("ops@platform.example", platform=True))
        page.get_by_role("link", name="Sending").click()
        expect(page.locator("#no-dkim")).to_be_visible()

        page.get_by_label("Selector").fill("dc1")
        page.get_by_role("button", name="Make a DKIM key").click()

        expect(page.get_by_role("status")).to_contain_text("DKIM key made")
        with session_scope() as session:
            public = session.query(DkimKey).one().public_key
        expect(page.get_by_label("Name (TXT record)")).to_have_value(
            "dc1._domainkey.riverside.example"
        )
        expect(page.get_by_label("Value")).to_have_value(f"v=DKIM1; k=rsa; p={public}")
        assert layout_problems(page) == []
        shot(page, "admin-sending-dkim-1280")
