"""The admin's pages as clinic staff use them, and what one clinic can never see of another.

On SQLite and PostgreSQL. Every admin route is listed in ROUTES with how it is checked for
tenant isolation; a new route fails `test_every_admin_route_is_checked_for_isolation` until
it is added there.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import datetime

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import select

from dripcare.config import Settings, get_settings
from dripcare.db import session_scope
from dripcare.models import Clinic, Enrollment
from dripcare.sending.message_view import load_jobs, render_job
from dripcare.web.app import ADMIN_PAGE_GROUPS
from tests.admin_fixtures import AdminBrowser, ClinicWithHistory, clinic_with_history, make_admin
from tests.test_admin_campaigns import CAMPAIGN_ROUTES
from tests.test_admin_escalation import ESCALATION_ROUTES
from tests.test_admin_sending import SENDING_ROUTES

SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
Browse = Callable[..., AdminBrowser]


# ---------------------------------------------------------------- what a clinic admin sees


def test_outbox_lists_upcoming_and_recent_and_red_flags(
    browser_for: Browse, a: ClinicWithHistory
) -> None:
    page = browser_for(a.admin_email).get("/admin/outbox")

    upcoming, recent = page.text.split('id="upcoming"')[1].split('id="recent"')
    assert page.status_code == 200
    assert f"/admin/messages/{a.upcoming_id}" in upcoming
    assert "held" in upcoming and "waiting for the clinic" in upcoming  # the red flag holds it
    assert f"/admin/messages/{a.sent_id}" in recent and "sent" in recent
    assert (
        "Red-flag check-ins" in page.text and "Eye pain or any change in your vision" in page.text
    )
    assert "EST" in page.text  # due times in the patient's zone


def test_outbox_filters_by_patient_email_or_id(
    browser_for: Browse, settings: Settings, a: ClinicWithHistory
) -> None:
    other = clinic_with_history_same_clinic(settings, a)
    browser = browser_for(a.admin_email)

    by_text = browser.get("/admin/outbox?q=PATIENT@A.EXAMPLE")
    by_id = browser.get(f"/admin/outbox?patient={a.patient_id}")
    nobody = browser.get("/admin/outbox?q=%25")  # LIKE wildcards are taken literally

    for page in (by_text, by_id):
        assert "patient@a.example" in page.text and other not in page.text
    assert "patient@a.example" not in nobody.text


def clinic_with_history_same_clinic(settings: Settings, a: ClinicWithHistory) -> str:
    from tests.factories import make_enrollment

    make_enrollment(settings, a.clinic_id, "2026-11-26T10:00", email="zed@a.example")
    return "zed@a.example"


def test_patient_page_shows_treatments_emails_check_ins_and_alerts(
    browser_for: Browse, a: ClinicWithHistory
) -> None:
    page = browser_for(a.admin_email).get(f"/admin/patients/{a.patient_id}")

    assert page.status_code == 200
    assert "Microneedling aftercare" in page.text
    assert f"/admin/messages/{a.sent_id}" in page.text
    assert "emergency" in page.text and "Eye pain" in page.text
    assert "Clinic alerts:" in page.text and "pending" in page.text


def test_a_sent_email_is_shown_as_the_patient_saw_it(
    browser_for: Browse, settings: Settings, a: ClinicWithHistory
) -> None:
    browser = browser_for(a.admin_email)
    page = browser.get(f"/admin/messages/{a.sent_id}")
    html = browser.get(f"/admin/messages/{a.sent_id}/html")
    with session_scope() as session:
        (job,) = load_jobs(session, [a.sent_id])
        expected, _ = render_job(job, settings)

    assert page.status_code == html.status_code == 200
    assert '<iframe class="email"' in page.text and "sandbox" in page.text
    assert expected.subject in page.text
    assert "Hi Ana" in expected.text and "Hi Ana" in page.text  # the plain-text part
    assert html.text == expected.html
    assert html.headers["content-security-policy"].startswith("sandbox;")


def test_branding_saves_and_new_emails_use_it(
    browser_for: Browse, settings: Settings, a: ClinicWithHistory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIPCARE_LOGO_HOSTS", "cdn.riverside.example")
    get_settings.cache_clear()
    browser = browser_for(a.admin_email)
    fields = {
        "name": "Riverside Renewed",
        "brand_color": "#AA3300",
        "logo_url": "https://cdn.riverside.example/logo.png",
        "phone": "+1 555 010 0199",
        "sender_email": "Hello@A.example",  # a sending domain of the clinic's
    }
    saved = browser.post_form("/admin/branding", fields)
    page = browser.get(saved.headers["location"])
    with session_scope() as session:
        clinic = session.get(Clinic, a.clinic_id)
        assert clinic is not None
        stored = (clinic.name, clinic.brand_color, clinic.logo_url, clinic.phone)
        sender = clinic.sender_email
        (job,) = load_jobs(session, [a.upcoming_id])
        rendered, _ = render_job(job, settings)

    assert saved.status_code == 303
    assert "Saved." in page.text
    assert stored == ("Riverside Renewed", "#aa3300", fields["logo_url"], "+1 555 010 0199")
    assert sender == "hello@a.example"
    assert "+1 555 010 0199" in rendered.text and "#aa3300" in rendered.html.lower()


def test_branding_sets_the_country_and_emails_tell_its_emergency_number(
    browser_for: Browse, settings: Settings, a: ClinicWithHistory
) -> None:
    browser = browser_for(a.admin_email)
    fields = {
        "name": "Clinic A",
        "brand_color": "#0f766e",
        "logo_url": "",
        "phone": "+1 555 010 0100",
        "sender_email": "care@a.example",
        "country": "gb",
        "emergency_override": "",
    }
    saved = browser.post_form("/admin/branding", fields)
    page = browser.get("/admin/branding").text
    with session_scope() as session:
        clinic = session.get(Clinic, a.clinic_id)
        assert clinic is not None
        stored = (clinic.country, clinic.emergency_override, clinic.emergency_number)
        (job,) = load_jobs(session, [a.upcoming_id])
        rendered, _ = render_job(job, settings)
    overridden = browser.post_form("/admin/branding", {**fields, "emergency_override": "112"})
    with session_scope() as session:
        clinic = session.get(Clinic, a.clinic_id)
        assert clinic is not None
        own = clinic.emergency_number

    assert saved.status_code == 303 and overridden.status_code == 303
    assert stored == ("GB", "", "999")
    assert 'value="GB"' in page and "(now 999)" in page
    assert "trouble breathing: call 999 now." in " ".join(rendered.text.split())
    assert "call 911" not in rendered.text
    assert own == "112"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "", "clinic name must be 1 to 200 characters"),
        ("brand_color", "teal", "must be a hex colour such as #0f766e"),
        ("brand_color", "#12345", "must be a hex colour"),
        ("logo_url", "http://riverside.example/logo.png", "must start with https://"),
        ("logo_url", "javascript:alert(1)", "must start with https://"),
        ("logo_url", 'https://x.example/a".png', "no spaces or quotes"),
        ("logo_url", "https:///logo.png", "plain https address"),
        ("logo_url", "https://tracker.example/pixel.png", "upload the logo instead"),
        ("phone", "call us", "must have digits"),
        ("sender_email", "not-an-email", "invalid email address"),
        ("country", "XX", "no emergency number is known for country XX"),
        ("country", "Germany", "must be a two-letter ISO 3166 code"),
        ("emergency_override", "call 112", "must be digits only"),
    ],
)
def test_branding_refuses_bad_values_field_by_field_and_saves_nothing(
    browser_for: Browse, a: ClinicWithHistory, field: str, value: str, message: str
) -> None:
    good = {
        "name": "Clinic A",
        "brand_color": "#0f766e",
        "logo_url": "",
        "phone": "+1 555 010 0100",
        "sender_email": "care@a.example",
    }
    answer = browser_for(a.admin_email).post_form("/admin/branding", {**good, field: value})

    assert answer.status_code == 422
    assert f'id="{field}-error"' in answer.text and message in answer.text
    assert "Nothing was saved." in answer.text
    with session_scope() as session:
        clinic = session.get(Clinic, a.clinic_id)
        assert clinic is not None and clinic.name == "Clinic A" and clinic.brand_color == "#0f766e"


def test_branding_refuses_a_sender_outside_the_clinics_domains_and_says_how(
    browser_for: Browse, a: ClinicWithHistory
) -> None:
    fields = {**GOOD_BRANDING, "sender_email": "care@bank.example"}
    answer = browser_for(a.admin_email).post_form("/admin/branding", fields)

    assert answer.status_code == 422
    assert "care@bank.example is not in one of this clinic&#39;s sending domains (a.example)" in (
        answer.text
    )
    assert f"dripcare clinic domains --clinic {a.clinic_id} --add bank.example" in answer.text
    with session_scope() as session:
        clinic = session.get(Clinic, a.clinic_id)
        assert clinic is not None and clinic.sender_email == "care@a.example"


@pytest.mark.parametrize("typed", ["Harbour Dental", "  harbour   DENTAL ", "HarbourDental"])
def test_branding_refuses_another_clinics_name_whatever_its_case_and_spaces(
    browser_for: Browse, a: ClinicWithHistory, typed: str
) -> None:
    from tests.factories import make_clinic

    make_clinic(name="Harbour Dental", sender="care@harbour.example")
    fields = {**GOOD_BRANDING, "name": typed}
    answer = browser_for(a.admin_email).post_form("/admin/branding", fields)

    assert answer.status_code == 422
    assert "another clinic already has this name" in answer.text
    with session_scope() as session:
        clinic = session.get(Clinic, a.clinic_id)
        assert clinic is not None and clinic.name != typed


def test_only_a_platform_admin_adds_a_sending_domain(
    browser_for: Browse, a: ClinicWithHistory
) -> None:
    clinic_admin = browser_for(a.admin_email)
    assert "Sending domains of this clinic: a.example." in clinic_admin.get("/admin/branding").text
    refused = clinic_admin.post_form("/admin/branding/domains", {"domain": "bank.example"})
    assert refused.status_code == 404

    platform = browser_for(make_admin("ops@platform.example", platform=True))
    bad = platform.post_form("/admin/branding/domains", {"domain": "not a domain"})
    added = platform.post_form("/admin/branding/domains", {"domain": "A-Care.example"})

    assert bad.status_code == 422 and "is not a domain name" in bad.text
    assert added.status_code == 303
    page = platform.get("/admin/branding").text
    assert "Sending domains of this clinic: a-care.example, a.example." in page


GOOD_BRANDING = {
    "name": "Clinic A",
    "brand_color": "#0f766e",
    "logo_url": "",
    "phone": "+1 555 010 0100",
    "sender_email": "care@a.example",
}


def frames_of(page: str) -> list[str]:
    """The srcdoc of each preview iframe (desktop, phone), unescaped."""
    return [html.unescape(doc) for doc in re.findall(r'<iframe[^>]* srcdoc="([^"]*)"', page)]


def test_branding_page_previews_the_saved_branding(
    browser_for: Browse, a: ClinicWithHistory
) -> None:
    page = browser_for(a.admin_email).get("/admin/branding")

    frames = frames_of(page.text)
    assert page.status_code == 200
    assert "the saved branding" in page.text
    assert len(frames) == 2 and 'class="email phone"' in page.text
    assert all("#0f766e" in frame and "Clinic A" in frame for frame in frames)


def test_branding_preview_shows_the_form_values_and_saves_nothing(
    browser_for: Browse, a: ClinicWithHistory
) -> None:
    browser = browser_for(a.admin_email)
    typed = {**GOOD_BRANDING, "name": "Riverside Preview", "brand_color": "#AA3300"}

    answer = browser.post_form("/admin/branding", {**typed, "action": "preview"})

    frames = frames_of(answer.text)
    assert answer.status_code == 200
    assert "not saved yet" in answer.text and 'value="Riverside Preview"' in answer.text
    assert all("#aa3300" in frame and "Riverside Preview" in frame for frame in frames)
    assert "Saved." not in answer.text
    with session_scope() as session:
        clinic = session.get(Clinic, a.clinic_id)
        assert clinic is not None and (clinic.name, clinic.brand_color) == ("Clinic A", "#0f766e")
    assert "Riverside Preview" not in browser.get("/admin/branding").text


def test_branding_preview_of_a_bad_value_shows_the_field_error_instead(
    browser_for: Browse, a: ClinicWithHistory
) -> None:
    answer = browser_for(a.admin_email).post_form(
        "/admin/branding", {**GOOD_BRANDING, "brand_color": "teal", "action": "preview"}
    )

    assert answer.status_code == 422
    assert 'id="brand_color-error"' in answer.text
    assert frames_of(answer.text) == []


def test_branding_preview_needs_the_csrf_token(browser_for: Browse, a: ClinicWithHistory) -> None:
    browser = browser_for(a.admin_email)
    data = {**GOOD_BRANDING, "name": "Forged", "action": "preview"}

    missing = browser.client.post("/admin/branding", data=data)
    forged = browser.client.post("/admin/branding", data={**data, "csrf_token": "0" * 64})

    assert missing.status_code == forged.status_code == 403
    assert "Forged" not in missing.text + forged.text


def test_branding_preview_shows_only_the_admins_own_clinic(
    browser_for: Browse, a: ClinicWithHistory, b: ClinicWithHistory
) -> None:
    data = {**GOOD_BRANDING, "name": "B previewing", "action": "preview"}

    answer = browser_for(b.admin_email).post_form("/admin/branding", data)

    assert answer.status_code == 200 and "B previewing" in answer.text
    assert "Clinic A" not in answer.text and "Ana" not in answer.text
    with session_scope() as session:
        clinic_a = session.get(Clinic, a.clinic_id)
        assert clinic_a is not None and clinic_a.name == "Clinic A"
    assert "B previewing" not in browser_for(a.admin_email).get("/admin/branding").text


def test_campaigns_page_lists_the_steps(browser_for: Browse, a: ClinicWithHistory) -> None:
    page = browser_for(a.admin_email).get("/admin/campaigns")

    assert page.status_code == 200
    assert "day-0" in page.text and "day-42" in page.text and "day 1 at 09:00" in page.text


def test_admin_pages_are_not_cached_and_lock_down_scripts(
    browser_for: Browse, a: ClinicWithHistory
) -> None:
    page = browser_for(a.admin_email).get("/admin/outbox")

    assert page.headers["cache-control"] == "no-store"
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "frame-ancestors 'self'" in page.headers["content-security-policy"]


# ---------------------------------------------------------------- escaping


def test_a_patient_named_like_a_script_is_shown_as_text_everywhere(
    browser_for: Browse, settings: Settings, admin_now: datetime
) -> None:
    evil = clinic_with_history(settings, "Clinic E", SCRIPT, "e")
    browser = browser_for(evil.admin_email)

    pages = [
        browser.get("/admin/outbox"),
        browser.get(f"/admin/patients/{evil.patient_id}"),
        browser.get(f"/admin/messages/{evil.sent_id}"),
    ]
    email = browser.get(f"/admin/messages/{evil.sent_id}/html")

    for page in pages:
        assert page.status_code == 200
        assert SCRIPT not in page.text and ESCAPED in page.text, page.url
    assert SCRIPT not in email.text


def test_a_clinic_name_like_a_script_is_shown_as_text(
    browser_for: Browse, a: ClinicWithHistory
) -> None:
    browser = browser_for(a.admin_email)
    browser.post_form(
        "/admin/branding",
        {
            "name": SCRIPT,
            "brand_color": "#0f766e",
            "logo_url": "",
            "phone": "+1 555 010 0100",
            "sender_email": "care@a.example",
        },
    )

    page = browser.get("/admin/branding")

    assert SCRIPT not in page.text and ESCAPED in page.text


# ---------------------------------------------------------------- tenant isolation

# Every admin route, and how its isolation is checked below.
ROUTES = {
    ("GET", "/admin"): "test_admin_dashboard.py::test_a_clinic_admin_sees_only_their_clinic",
    ("GET", "/admin/sign-in"): "public",
    ("POST", "/admin/sign-in"): "public",
    ("POST", "/admin/sign-out"): "own session only",
    ("POST", "/admin/clinic"): "test_a_clinic_admin_cannot_pick_another_clinic",
    ("GET", "/admin/campaigns"): "test_list_pages_show_nothing_of_another_clinic",
    ("POST", "/admin/campaigns/default"): "test_admin_campaigns.py::"
    "test_the_default_campaign_is_chosen_on_the_campaigns_page (the admin's own clinic only)",
    ("GET", "/admin/outbox"): "test_list_pages_show_nothing_of_another_clinic",
    ("GET", "/admin/branding"): "test_list_pages_show_nothing_of_another_clinic",
    ("POST", "/admin/branding"): "test_saving_branding_changes_only_the_admins_clinic, "
    "test_branding_preview_shows_only_the_admins_own_clinic",
    ("POST", "/admin/branding/domains"): "test_only_a_platform_admin_adds_a_sending_domain",
    (
        "POST",
        "/admin/branding/logo",
    ): "test_logos.py::test_a_logo_upload_changes_only_the_admins_clinic",
    ("GET", "/admin/patients/{patient_id}"): "test_another_clinics_objects_are_404",
    ("GET", "/admin/messages/{message_id}"): "test_another_clinics_objects_are_404",
    ("GET", "/admin/messages/{message_id}/html"): "test_another_clinics_objects_are_404",
    **{
        route: "test_admin_campaigns.py::test_another_clinics_admin_gets_404_on_every_route"
        for route in CAMPAIGN_ROUTES
    },
    **{
        route: "test_erasure.py::test_admin_cannot_export_or_erase_another_clinics_patient"
        for route in (
            ("GET", "/admin/patients/{patient_id}/export"),
            ("GET", "/admin/patients/{patient_id}/erase"),
            ("POST", "/admin/patients/{patient_id}/erase"),
        )
    },
    (
        "POST",
        "/admin/enrollments/{enrollment_id}/marks/{condition}",
    ): "test_the_patient_page_marks_the_next_session_booked_for_the_admins_clinic_only",
    ("GET", "/admin/audit"): "test_audit.py::test_a_clinic_admin_sees_only_their_clinics_events",
    ("POST", "/admin/transports/retry"): "test_admin_dashboard.py::"
    "test_paused_transports_show_to_whom_they_concern_and_retry_now_is_audited (404 for a clinic)",
    **{
        route: "test_admin_red_flags.py::test_another_clinics_admin_cannot_see_or_act_on_a_red_flag"
        for route in (
            ("GET", "/admin/red-flags"),
            ("GET", "/admin/red-flags/{check_in_id}"),
            ("POST", "/admin/red-flags/{check_in_id}/acknowledge"),
            ("POST", "/admin/red-flags/{check_in_id}/resolve"),
        )
    },
    **SENDING_ROUTES,
    **ESCALATION_ROUTES,
}


def test_every_admin_route_is_checked_for_isolation() -> None:
    routes = {
        (method, "/admin" + route.path)
        for group in ADMIN_PAGE_GROUPS
        for route in group.router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }

    assert routes == set(ROUTES)


def other_clinic_urls(b: ClinicWithHistory) -> list[str]:
    return [
        f"/admin/patients/{b.patient_id}",
        f"/admin/messages/{b.sent_id}",
        f"/admin/messages/{b.sent_id}/html",
        f"/admin/messages/{b.upcoming_id}",
        f"/admin/outbox?patient={b.patient_id}",
        "/admin/patients/999999",
        "/admin/messages/99999999999999",
    ]


def test_another_clinics_objects_are_404(
    browser_for: Browse, a: ClinicWithHistory, b: ClinicWithHistory
) -> None:
    browser = browser_for(a.admin_email)

    for url in other_clinic_urls(b):
        answer = browser.get(url)
        assert answer.status_code == 404, url
        assert "Bea" not in answer.text and "patient@b.example" not in answer.text, url


def test_the_patient_page_marks_the_next_session_booked_for_the_admins_clinic_only(
    browser_for: Browse, a: ClinicWithHistory, b: ClinicWithHistory
) -> None:
    browser = browser_for(a.admin_email)
    with session_scope() as session:
        own = session.scalars(select(Enrollment).where(Enrollment.clinic_id == a.clinic_id)).one()
        other = session.scalars(select(Enrollment).where(Enrollment.clinic_id == b.clinic_id)).one()
    page = f"/admin/patients/{a.patient_id}"
    assert "Mark: next session booked" in browser.get(page).text

    marked = browser.post_form(
        f"/admin/enrollments/{own.id}/marks/next_session_booked", {"on": "true"}, page
    )
    refused = browser.post_form(
        f"/admin/enrollments/{other.id}/marks/next_session_booked", {"on": "true"}, page
    )

    assert marked.status_code == 303
    after = browser.get(page).text
    assert "✓ Next session booked (undo)" in after
    assert "skipped: the next session is booked" in after
    assert refused.status_code == 404
    with session_scope() as session:
        assert session.get_one(Enrollment, other.id).next_session_booked_at is None


# URLs that name nothing: the same page as a missing object, never FastAPI's JSON.
MALFORMED_URLS = [
    "/admin/patients/abc",
    "/admin/patients/0",
    "/admin/patients/1.5",
    "/admin/patients/99999999999999999999",
    "/admin/messages/xyz",
    "/admin/messages/xyz/html",
    "/admin/messages/-3/html",
    "/admin/outbox?patient=abc",
    "/admin/no-such-page",
    "/admin/patients",
]


def test_a_url_that_names_nothing_gets_the_admins_404_page(
    browser_for: Browse, a: ClinicWithHistory
) -> None:
    browser = browser_for(a.admin_email)
    missing = browser.get("/admin/patients/999999")

    for url in MALFORMED_URLS:
        answer = browser.get(url)
        assert answer.status_code == 404, url
        assert answer.headers["content-type"].startswith("text/html"), url
        assert answer.headers["cache-control"] == "no-store", url
        assert answer.text == missing.text, url
    assert "There is nothing at this address" in missing.text


def test_a_malformed_url_sends_a_signed_out_browser_to_sign_in(settings: Settings) -> None:
    answer = AdminBrowser().get("/admin/patients/abc")

    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/sign-in?next=/admin/patients/abc"


def test_list_pages_show_nothing_of_another_clinic(
    browser_for: Browse, a: ClinicWithHistory, b: ClinicWithHistory
) -> None:
    browser = browser_for(a.admin_email)

    for url in (
        "/admin/outbox",
        "/admin/outbox?q=b.example",
        "/admin/branding",
        "/admin/campaigns",
    ):
        answer = browser.get(url)
        assert answer.status_code == 200, url
        for secret in ("Clinic B", "Bea", "patient@b.example", "care@b.example"):
            assert secret not in answer.text, (url, secret)


def test_saving_branding_changes_only_the_admins_clinic(
    browser_for: Browse, a: ClinicWithHistory, b: ClinicWithHistory
) -> None:
    browser_for(a.admin_email).post_form(
        "/admin/branding",
        {
            "name": "A renamed",
            "brand_color": "#111111",
            "logo_url": "",
            "phone": "+1 555 000 0000",
            "sender_email": "new@a.example",
        },
    )

    with session_scope() as session:
        clinic_b = session.get(Clinic, b.clinic_id)
        clinic_a = session.get(Clinic, a.clinic_id)
        assert clinic_a is not None and clinic_a.name == "A renamed"
        assert clinic_b is not None and clinic_b.name == "Clinic B"


def test_a_clinic_admin_cannot_pick_another_clinic(
    browser_for: Browse, a: ClinicWithHistory, b: ClinicWithHistory
) -> None:
    browser = browser_for(a.admin_email)

    answer = browser.post_form("/admin/clinic", {"clinic_id": str(b.clinic_id)})

    assert answer.status_code == 404
    assert "Clinic A" in browser.get("/admin/branding").text
    assert browser.get(f"/admin/patients/{b.patient_id}").status_code == 404


def test_a_platform_admin_picks_any_clinic_and_sees_only_that_one(
    browser_for: Browse, a: ClinicWithHistory, b: ClinicWithHistory
) -> None:
    browser = browser_for(make_admin("root@platform.example", platform=True))

    first = browser.get("/admin/outbox")
    picked = browser.post_form("/admin/clinic", {"clinic_id": str(b.clinic_id)})
    after = browser.get("/admin/outbox")

    assert "patient@a.example" in first.text and "patient@b.example" not in first.text
    assert 'name="clinic_id"' in first.text and "Clinic B (#" in first.text
    assert picked.status_code == 303
    assert "patient@b.example" in after.text and "patient@a.example" not in after.text
    assert browser.get(f"/admin/patients/{b.patient_id}").status_code == 200
    assert browser.get(f"/admin/patients/{a.patient_id}").status_code == 404
    assert browser.post_form("/admin/clinic", {"clinic_id": "424242"}).status_code == 404


def test_a_platform_admin_before_any_clinic_is_told_to_create_one(
    browser_for: Browse, admin_now: datetime
) -> None:
    browser = browser_for(make_admin("root@platform.example", platform=True))

    page = browser.get("/admin/outbox")

    assert page.status_code == 409 and "dripcare clinic create" in page.text
