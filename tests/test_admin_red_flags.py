"""Red flags in the admin and through the alert email's acknowledgement link."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import time_machine
from sqlalchemy import select

from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.models import AuditEvent, CheckIn, Message, MessageStatus
from dripcare.people import staff_links
from tests.admin_fixtures import AdminBrowser, ClinicWithHistory


def the_check_in() -> CheckIn:
    with session_scope() as session:
        (check_in,) = session.scalars(select(CheckIn))
        return check_in


def the_check_in_of(clinic_id: int) -> CheckIn:
    with session_scope() as session:
        return session.scalars(select(CheckIn).where(CheckIn.clinic_id == clinic_id)).one()


def ack_path(settings: Settings, to: str = "desk@a.example") -> str:
    with session_scope() as session:
        (check_in,) = session.scalars(select(CheckIn))
        return staff_links.ack_url(settings, check_in, to).removeprefix(settings.base_url)


def status_of(message_id: int) -> MessageStatus:
    with session_scope() as session:
        message = session.get(Message, message_id)
        assert message is not None
        return message.status


def test_the_dashboard_shows_open_red_flags_first_with_answers_step_and_time(
    settings: Settings, a: ClinicWithHistory, browser_for, admin_now: datetime
) -> None:
    browser = browser_for(a.admin_email)

    with time_machine.travel(the_check_in().created_at + timedelta(minutes=7), tick=False):
        page = browser.get("/admin").text

    section = page.split('id="red-flags"')[1].split("</section>")[0]
    assert page.index('id="red-flags"') < page.index("<h2", page.index("</section>"))
    assert "Eye pain or any change in your vision" in section
    assert "day-0 email" in section and "7 min ago" in section and "open" in section
    assert 'href="mailto:patient@a.example"' in section
    assert "Call 911 now" in section


def test_staff_acknowledge_in_the_admin_with_csrf_and_it_is_audited(
    settings: Settings, a: ClinicWithHistory, browser_for
) -> None:
    browser = browser_for(a.admin_email)
    check_in = the_check_in()
    url = f"/admin/red-flags/{check_in.id}"

    forged = browser.client.post(f"{url}/acknowledge", data={"csrf_token": "nope"})
    done = browser.post_form(f"{url}/acknowledge", {}, csrf_from=url)
    page = browser.get(url).text

    assert forged.status_code == 403 and done.status_code == 303
    assert "acknowledged by admin@a.example" in page
    with session_scope() as session:
        actions = list(session.scalars(select(AuditEvent.action)))
    assert "red-flag.acknowledge" in actions


def test_another_clinics_admin_cannot_see_or_act_on_a_red_flag(
    settings: Settings, a: ClinicWithHistory, b: ClinicWithHistory, browser_for
) -> None:
    browser = browser_for(b.admin_email)
    with session_scope() as session:
        ours = session.scalars(select(CheckIn).where(CheckIn.clinic_id == a.clinic_id)).one()

    listed = browser.get("/admin/red-flags").text
    seen = browser.get(f"/admin/red-flags/{ours.id}")
    acted = browser.post_form(f"/admin/red-flags/{ours.id}/acknowledge", {}, "/admin/red-flags")
    resolved = browser.post_form(
        f"/admin/red-flags/{ours.id}/resolve", {"outcome": "stop"}, "/admin/red-flags"
    )

    assert "Bea Patient" in listed and "Ana Patient" not in listed
    assert seen.status_code == acted.status_code == resolved.status_code == 404
    assert the_check_in_of(a.clinic_id).alert_state == "open"


def test_the_email_link_asks_first_acknowledges_on_post_and_works_once(
    settings: Settings, a: ClinicWithHistory, admin_now: datetime
) -> None:
    browser = AdminBrowser()
    path = ack_path(settings)

    opened = browser.get(path)
    still_open = the_check_in().alert_state
    posted = browser.client.post(path)
    again = browser.client.post(path)

    assert opened.status_code == 200 and "Acknowledge this red flag?" in opened.text
    assert opened.headers["Referrer-Policy"] == "no-referrer"
    assert still_open == "open"  # a scanner opening the link acknowledges nothing
    assert posted.status_code == 200 and "desk@a.example" in posted.text
    check_in = the_check_in()
    assert (check_in.alert_state, check_in.acknowledged_by) == ("acknowledged", "desk@a.example")
    assert again.status_code == 404 and "no longer works" in again.text


def test_the_email_link_expires_and_a_patient_token_is_not_one(
    settings: Settings, a: ClinicWithHistory, admin_now: datetime
) -> None:
    from dripcare.people.links import make_token

    path = ack_path(settings)
    browser = AdminBrowser()

    with time_machine.travel(admin_now + timedelta(hours=73), tick=False):
        expired = browser.client.post(path)
    patient = browser.client.post(f"/ack/{make_token(settings, a.sent_id)}")

    assert expired.status_code == patient.status_code == 404
    assert the_check_in().alert_state == "open"


def test_resolving_with_resume_schedules_the_held_email_again_with_the_note(
    settings: Settings, a: ClinicWithHistory, browser_for
) -> None:
    browser = browser_for(a.admin_email)
    url = f"/admin/red-flags/{the_check_in().id}"
    held_before = status_of(a.upcoming_id)

    nothing = browser.post_form(f"{url}/resolve", {"note": "?"}, csrf_from=url)
    done = browser.post_form(
        f"{url}/resolve", {"outcome": "resume", "note": "called her, all fine"}, csrf_from=url
    )
    page = browser.get(url).text

    assert held_before == MessageStatus.HELD
    assert nothing.status_code == 422 and "outcome must be resume or stop" in nothing.text
    assert done.status_code == 303
    assert status_of(a.upcoming_id) == MessageStatus.SCHEDULED
    assert re.search(r"resolved \(resume\) by admin@a.example .*: called her, all fine", page)


def test_the_red_flag_page_lists_every_alert_and_escalation_row(
    settings: Settings, a: ClinicWithHistory, browser_for, admin_now: datetime
) -> None:
    from dripcare.sending import escalation

    with (
        time_machine.travel(admin_now + timedelta(minutes=16), tick=False),
        session_scope() as session,
    ):
        escalation.escalate_due(session)
    browser = browser_for(a.admin_email)

    page = browser.get(f"/admin/red-flags/{the_check_in().id}").text

    table = page.split('id="deliveries"')[1]
    assert "first alert" in table and "escalation 1" in table
