"""The dashboard in a real headless Chromium at 1280 px and 375 px: the charts are drawn and
fit, the page never scrolls sideways, the period toggle works, and the needs-attention entries
open the page where the admin can act, also another clinic's for a platform admin.

Screenshots go to test-artifacts/screenshots/dashboard-*.png for a person to look at.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.models import Message, MessageStatus
from tests.admin_fixtures import ClinicWithHistory, clinic_with_history, make_admin
from tests.browser_fixtures import shot
from tests.test_browser_admin import layout_problems, sign_in
from tests.test_browser_admin import width_page as _width_page

try:
    from playwright.sync_api import Page, expect
except ImportError:  # test_browser has skipped (or, in CI, failed) already
    pytest.skip("playwright is not installed", allow_module_level=True)

pytestmark = pytest.mark.parametrize("database", ["postgresql"], indirect=True)
width_page = _width_page  # the page at 1280 px and at 375 px


@pytest.fixture
def riverside(settings: Settings, admin_now: datetime) -> ClinicWithHistory:
    """A clinic with a sent email, a red-flag check-in whose alert is pending, a late email."""
    clinic = clinic_with_history(settings, "Riverside Skin Clinic", "Ana", "riverside")
    with session_scope() as session:
        session.execute(
            update(Message)
            .where(Message.id == clinic.upcoming_id)
            .values(status=MessageStatus.SCHEDULED, due_at=datetime.now(UTC) - timedelta(hours=2))
        )
    return clinic


def charts_drawn(page: Page) -> None:
    charts = page.locator("svg.chart")
    expect(charts).to_have_count(5)
    for i in range(5):
        expect(charts.nth(i)).to_be_visible()
        box = charts.nth(i).bounding_box()
        assert box is not None and box["width"] > 250 and box["height"] > 100, box
    expect(page.locator("svg.chart-sent rect")).to_have_count(len(day_rows(page)))


def day_rows(page: Page) -> list[str]:
    return page.locator("table.dash-table tbody tr").all_inner_texts()


def test_the_dashboard_draws_its_charts_toggles_and_links_to_act(
    live_server: str, riverside: ClinicWithHistory, width_page: tuple[str, Page]
) -> None:
    width, page = width_page
    sign_in(page, live_server, riverside.admin_email)

    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
    charts_drawn(page)
    assert len(day_rows(page)) == 30
    assert layout_problems(page) == []
    shot(page, f"dashboard-{width}")

    page.get_by_text("The numbers, day by day").click()
    expect(page.locator("table.dash-table")).to_be_visible()
    assert layout_problems(page) == []  # the table scrolls inside its own box, if at all

    page.get_by_role("link", name="Last 90 days").click()
    expect(page.get_by_role("link", name="Last 90 days")).to_have_attribute("aria-current", "page")
    charts_drawn(page)
    assert len(day_rows(page)) == 90
    assert layout_problems(page) == []
    shot(page, f"dashboard-90-{width}")
    page.get_by_role("link", name="Last 30 days").click()
    assert len(day_rows(page)) == 30

    attention = page.locator("section.attention")
    attention.get_by_role("link", name="Ana Patient", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Ana Patient")
    expect(page.get_by_text("Eye pain or any change in your vision")).to_be_visible()
    page.go_back()
    attention.get_by_role("link", name="Ana Patient: day-1").click()
    expect(page.get_by_role("heading", level=1)).not_to_have_text("Dashboard")
    assert f"/admin/messages/{riverside.upcoming_id}" in page.url
    page.get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")


def test_a_platform_admin_views_all_clinics_and_opens_another_clinics_patient(
    live_server: str,
    settings: Settings,
    riverside: ClinicWithHistory,
    width_page: tuple[str, Page],
) -> None:
    width, page = width_page
    clinic_with_history(settings, "Hillside Clinic", "Bea", "hillside")
    sign_in(page, live_server, make_admin("root@platform.example", platform=True))

    page.locator("#dash-clinic").select_option(label="All clinics")
    page.get_by_role("button", name="Show", exact=True).click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard: All clinics")
    expect(page.get_by_text("Days are UTC days")).to_be_visible()
    charts_drawn(page)
    assert layout_problems(page) == []
    shot(page, f"dashboard-all-{width}")
    page.locator("section.attention").get_by_role("button", name="Bea Patient").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Bea Patient")
    expect(page.locator("#clinic-pick")).to_have_value(str(riverside.clinic_id + 1))
