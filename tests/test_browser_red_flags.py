"""A red flag in a real Chromium: staff open the acknowledgement link from the alert email,
confirm, then resume the patient's held emails in the admin."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest
from sqlalchemy import select

from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.models import Message, MessageStatus
from dripcare.sending import alerts
from dripcare.sending.transports import SMTPTransport
from tests.admin_fixtures import PASSWORD, ClinicWithHistory, clinic_with_history
from tests.browser_fixtures import shot
from tests.smtp_server import SMTPServer

try:
    from playwright.sync_api import Browser, Page, expect
except ImportError:  # test_browser has skipped (or, in CI, failed) already
    pytest.skip("playwright is not installed", allow_module_level=True)

pytestmark = pytest.mark.parametrize("database", ["postgresql"], indirect=True)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 375, "height": 812}, is_mobile=True)
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def statuses(enrollment_of: int) -> set[MessageStatus]:
    with session_scope() as session:
        message = session.get(Message, enrollment_of)
        assert message is not None
        rows = session.scalars(
            select(Message.status).where(Message.enrollment_id == message.enrollment_id)
        )
        return {s for s in rows if s not in (MessageStatus.SENT, MessageStatus.SKIPPED)}


def test_staff_acknowledge_from_the_email_then_resume_in_the_admin(
    settings: Settings,
    admin_now: datetime,
    live_server: str,
    smtp_server: SMTPServer,
    page: Page,
) -> None:
    clinic: ClinicWithHistory = clinic_with_history(settings, "Riverside Skin Clinic", "Ana", "r")
    transport = SMTPTransport("127.0.0.1", smtp_server.port)
    with httpx.Client(timeout=5) as http:
        alerts.deliver_due(session_scope, transport, http, settings=settings)
    (mail,) = smtp_server.recorder.messages
    found = re.search(r"\S+/ack/\S+", mail.get_body(("plain",)).get_content())
    assert found is not None
    link = found.group(0).replace(settings.base_url, live_server)
    held = statuses(clinic.upcoming_id)

    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Acknowledge this red flag?")
    page.get_by_role("button", name="Yes, I am taking care of it").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Acknowledged")
    shot(page, "red-flag-acknowledged")

    page.get_by_role("link", name="the red flag in the admin").click()
    page.get_by_label("Email").fill(clinic.admin_email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#state")).to_contain_text("acknowledged by care@r.example")
    page.get_by_label("Resume them").check()
    page.get_by_label("Note").fill("called Ana, healing well")
    page.get_by_role("button", name="Resolve").click()
    expect(page.locator("#state")).to_contain_text("resolved (resume)")
    shot(page, "red-flag-resolved")

    assert held == {MessageStatus.HELD}
    assert statuses(clinic.upcoming_id) == {MessageStatus.SCHEDULED}


def test_an_admin_sets_escalation_in_the_form_and_a_mistake_keeps_what_they_typed(
    settings: Settings, admin_now: datetime, live_server: str, page: Page
) -> None:
    from dripcare.models import Clinic
    from dripcare.sending import escalation

    clinic: ClinicWithHistory = clinic_with_history(settings, "Riverside Skin Clinic", "Ana", "r")

    page.goto(f"{live_server}/admin/escalation")
    page.get_by_label("Email").fill(clinic.admin_email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Minutes to acknowledge before escalating").fill("10")
    page.get_by_label("Opening hours").fill("Mon-Fri 9am-6pm")
    page.get_by_label("Escalation list").fill("lead@r.example\nowner@r.example")
    page.get_by_role("button", name="Save escalation").click()
    expect(page.get_by_role("alert")).to_contain_text(
        "'Mon-Fri 9am-6pm': local time must look like 09:00"
    )
    expect(page.get_by_label("Escalation list")).to_have_value("lead@r.example\nowner@r.example")
    shot(page, "escalation-refused")
    page.get_by_label("Opening hours").fill("Mon-Fri 09:00-18:00")
    page.get_by_role("button", name="Save escalation").click()
    expect(page.get_by_role("status")).to_contain_text("Saved.")
    shot(page, "escalation-saved")

    with session_scope() as session:
        stored = escalation.settings_of(session.get_one(Clinic, clinic.clinic_id))
    assert (stored.ack_minutes, stored.open_hours) == (10, "Mon-Fri 09:00-18:00")
    assert stored.escalation_emails == ("lead@r.example", "owner@r.example")
