"""The dashboard page (/admin) as HTML: the landing page, its charts and table, the period
toggle, what needs attention with links to act on it, and who sees which clinic."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.models import AuditEvent, Message, MessageStatus, TransportCircuit
from dripcare.sending import circuit
from dripcare.sending.smtp_replies import Stage
from dripcare.sending.transports import TransportFailure
from tests.admin_fixtures import AdminBrowser, ClinicWithHistory, make_admin

Browse = Callable[..., AdminBrowser]


def make_late(message_id: int) -> None:
    with session_scope() as session:
        session.execute(
            update(Message)
            .where(Message.id == message_id)
            .values(status=MessageStatus.SCHEDULED, due_at=datetime.now(UTC) - timedelta(hours=2))
        )


def table_rows(page: str) -> list[list[str]]:
    body = page.split('<table class="dash-table">')[1].split("<tbody>")[1].split("</tbody>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
    return [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row) for row in rows]


def test_signing_in_lands_on_the_dashboard_first_in_the_nav(
    settings: Settings, a: ClinicWithHistory, admin_now: datetime
) -> None:
    browser = AdminBrowser()
    signed_in = browser.sign_in(a.admin_email)
    page = browser.get(signed_in.headers["location"])

    assert signed_in.headers["location"] == "/admin"
    assert page.status_code == 200 and "<h1>Dashboard" in page.text
    nav = page.text.split('aria-label="Admin">')[1].split("</nav>")[0]
    assert nav.strip().startswith('<a href="/admin" aria-current="page">Dashboard</a>')


def test_charts_are_svg_images_with_a_title_a_description_and_a_table_of_the_numbers(
    browser_for: Browse, a: ClinicWithHistory
) -> None:
    page = browser_for(a.admin_email).get("/admin").text

    assert page.count('<svg class="chart') == 5 and page.count('role="img"') == 5
    assert '<title id="chart-sent-title">Emails sent</title>' in page
    assert re.search(r'<desc id="chart-sent-desc">1 in the 30 days from [^<]+25 Nov', page)
    rows = table_rows(page)
    assert len(rows) == 30
    assert rows[0] == ["Wed 25 Nov", "1", "0", "0", "0", "1"]  # today first: sent, check-in
    assert "America/New_York" in page and "<script" not in page


def test_the_toggle_shows_90_days_and_anything_else_shows_30(
    browser_for: Browse, a: ClinicWithHistory
) -> None:
    browser = browser_for(a.admin_email)

    ninety, odd = browser.get("/admin?days=90").text, browser.get("/admin?days=7").text

    assert len(table_rows(ninety)) == 90 and len(table_rows(odd)) == 30
    assert '<a href="/admin?days=90" aria-current="page">Last 90 days</a>' in ninety


def test_needs_attention_links_to_the_red_flag_patient_and_the_late_email(
    browser_for: Browse, a: ClinicWithHistory
) -> None:
    make_late(a.upcoming_id)

    page = browser_for(a.admin_email).get("/admin").text
    attention = page.split('id="attention"')[1].split('id="activity"')[0]

    assert f'<a href="/admin/patients/{a.patient_id}">Ana Patient</a>' in attention
    assert "emergency: email alert pending" in attention
    assert f'href="/admin/messages/{a.upcoming_id}"' in attention
    assert "Emails late (1)" in attention and "no way yet to mark a red flag" in attention


def test_a_clinic_admin_sees_only_their_clinic(
    browser_for: Browse, a: ClinicWithHistory, b: ClinicWithHistory
) -> None:
    browser = browser_for(a.admin_email)

    for url in ("/admin", "/admin?clinic=all", f"/admin?clinic={b.clinic_id}&days=90"):
        page = browser.get(url)
        assert page.status_code == 200, url
        for secret in ("Clinic B", "Bea", "patient@b.example", "All clinics"):
            assert secret not in page.text, (url, secret)
        assert table_rows(page.text)[0][1] == "1", url  # A's one sent email, not two


def test_a_platform_admin_sees_all_clinics_in_utc_or_one_and_opens_entries_through_the_switch(
    browser_for: Browse, a: ClinicWithHistory, b: ClinicWithHistory
) -> None:
    browser = browser_for(make_admin("root@platform.example", platform=True))

    everyone = browser.get("/admin?clinic=all").text
    only_b = browser.get(f"/admin?clinic={b.clinic_id}").text
    opened = browser.post_form(
        "/admin/clinic",
        {"clinic_id": str(b.clinic_id), "next": f"/admin/patients/{b.patient_id}"},
    )

    assert "<h1>Dashboard: All clinics" in everyone and "Days are UTC days" in everyone
    assert table_rows(everyone)[0][1] == "2"
    assert "Ana Patient" in everyone and "Bea Patient" in everyone
    assert f'name="next" value="/admin/patients/{b.patient_id}"' in everyone  # B: via the switch
    assert f'<a href="/admin/patients/{a.patient_id}">' in everyone  # A is the picked clinic
    assert "<h1>Dashboard: Clinic B" in only_b and "Ana Patient" not in only_b
    assert opened.status_code == 303 and opened.headers["location"] == (
        f"/admin/patients/{b.patient_id}"
    )
    assert browser.get(opened.headers["location"]).status_code == 200
    assert browser.get("/admin?clinic=424242").status_code == 404


def test_the_clinic_switch_goes_nowhere_outside_the_admin(
    browser_for: Browse, a: ClinicWithHistory
) -> None:
    browser = browser_for(make_admin("root@platform.example", platform=True))

    answer = browser.post_form(
        "/admin/clinic", {"clinic_id": str(a.clinic_id), "next": "https://evil.example/"}
    )
    plain = browser.post_form("/admin/clinic", {"clinic_id": str(a.clinic_id)})

    assert answer.headers["location"] == "/admin"
    assert plain.headers["location"] == "/admin/outbox"  # the header's switch, as before


def pause(key: str, error: str) -> None:
    failure = TransportFailure(error, 535, Stage.AUTH)
    with session_scope() as session:
        circuit.record_failure(session, key, failure, datetime.now(UTC))


def paused_section(page: str) -> str:
    return (
        page.split('id="paused-transports"')[1].split("</section>")[0] if "paused-" in page else ""
    )


def test_paused_transports_show_to_whom_they_concern_and_retry_now_is_audited(
    browser_for: Browse, a: ClinicWithHistory, b: ClinicWithHistory
) -> None:
    pause(circuit.PLATFORM, "535 5.7.8 platform login smtp://ops:***@mx.example refused")
    pause(circuit.key_for(a.clinic_id), "535 5.7.8 clinic A's login refused")
    pause(circuit.key_for(b.clinic_id), "535 5.7.8 clinic B's login refused")
    root = browser_for(make_admin("root@platform.example", platform=True))

    seen_by_a = paused_section(browser_for(a.admin_email).get("/admin").text)
    seen_by_root = paused_section(root.get("/admin").text)
    refused = browser_for(a.admin_email).post_form(
        "/admin/transports/retry", {"transport": circuit.key_for(a.clinic_id)}, csrf_from="/admin"
    )
    forged = root.client.post("/admin/transports/retry", data={"transport": circuit.PLATFORM})
    retried = root.post_form(
        "/admin/transports/retry", {"transport": circuit.PLATFORM}, csrf_from="/admin"
    )
    with session_scope() as session:
        state = session.get(TransportCircuit, circuit.PLATFORM)
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "transport.retry")
        ).all()

    assert "clinic A&#39;s login refused" in seen_by_a and "Clinic B" not in seen_by_a
    assert "The platform's mail server" in seen_by_a and "ops:" not in seen_by_a  # no detail
    assert "Retry now" not in seen_by_a
    assert seen_by_root.count("Retry now") == 3 and "clinic B&#39;s login refused" in seen_by_root
    assert refused.status_code == 404 and forged.status_code == 403
    assert retried.status_code == 303
    assert state is not None and state.is_open and state.probe_at is not None
    assert state.probe_at <= datetime.now(UTC)  # the next batch probes it
    assert [(e.actor, e.target_id, e.clinic_id) for e in events] == [
        ("root@platform.example", "platform", None)
    ]


def test_no_paused_transport_no_section(browser_for: Browse, a: ClinicWithHistory) -> None:
    pause(circuit.key_for(a.clinic_id + 1000), "535 another clinic's server")

    assert paused_section(browser_for(a.admin_email).get("/admin").text) == ""
