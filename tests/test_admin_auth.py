"""Signing in to the admin: sessions, cookies, CSRF and throttling, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.models import AdminSession, AdminUser
from tests.admin_fixtures import PASSWORD, AdminBrowser, csrf_of, make_admin
from tests.conftest import configure
from tests.factories import make_clinic

WRONG = "That email and password do not match an account"


@pytest.fixture
def clinic(admin_now: datetime) -> int:
    return make_clinic()


@pytest.fixture
def email(clinic: int) -> str:
    return make_admin(clinic_id=clinic)


def set_cookie_headers(answer: object) -> list[str]:
    return answer.headers.get_list("set-cookie")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "path", ["/admin", "/admin/outbox", "/admin/branding", "/admin/campaigns", "/admin/patients/1"]
)
def test_pages_without_a_session_redirect_to_sign_in(clinic: int, path: str) -> None:
    answer = AdminBrowser().get(path)

    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/admin/sign-in?next=")


def test_sign_in_sets_a_secure_httponly_lax_cookie_and_keeps_only_a_hash(email: str) -> None:
    browser = AdminBrowser()
    answer = browser.sign_in(email, next_url="/admin/branding")

    cookie = next(c for c in set_cookie_headers(answer) if c.startswith("dripcare_admin="))
    token = cookie.split(";")[0].split("=", 1)[1]
    assert answer.status_code == 303 and answer.headers["location"] == "/admin/branding"
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=lax" in cookie
    with session_scope() as session:
        stored = session.scalars(select(AdminSession.token_hash)).all()
        user = session.scalars(select(AdminUser)).one()
    assert len(stored) == 1 and token not in stored[0]
    assert user.last_login_at is not None
    assert browser.get("/admin/branding").status_code == 200


def test_plain_http_to_localhost_gets_cookies_without_secure_so_make_run_works(email: str) -> None:
    browser = AdminBrowser("http://127.0.0.1:8000")
    answer = browser.sign_in(email)

    cookie = next(c for c in set_cookie_headers(answer) if c.startswith("dripcare_admin="))
    assert "Secure" not in cookie
    assert browser.get("/admin/branding").status_code == 200


def test_the_secure_setting_forces_the_flag_even_on_localhost(
    email: str, monkeypatch: pytest.MonkeyPatch, tmp_path: object, database: str
) -> None:
    configure(monkeypatch, tmp_path, DRIPCARE_DATABASE_URL=database, DRIPCARE_COOKIE_SECURE="true")  # type: ignore[arg-type]
    answer = AdminBrowser("http://127.0.0.1:8000").client.get("/admin/sign-in")

    assert all("Secure" in c for c in set_cookie_headers(answer))


def test_wrong_password_and_unknown_email_get_the_same_answer(email: str) -> None:
    wrong_password = AdminBrowser().sign_in(email, "not the password at all")
    unknown_email = AdminBrowser().sign_in("nobody@riverside.example", PASSWORD)

    assert wrong_password.status_code == unknown_email.status_code == 400
    assert WRONG in wrong_password.text and WRONG in unknown_email.text
    assert "dripcare_admin=" not in " ".join(set_cookie_headers(wrong_password))


def test_sign_in_without_the_form_token_is_refused(email: str) -> None:
    browser = AdminBrowser()
    browser.get("/admin/sign-in")
    answer = browser.client.post("/admin/sign-in", data={"email": email, "password": PASSWORD})

    assert answer.status_code == 403
    assert "This form has expired" in answer.text


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/admin/sign-out", {}),
        ("/admin/branding", {"name": "Changed"}),
        ("/admin/clinic", {"clinic_id": "1"}),
    ],
)
def test_every_form_post_without_a_valid_token_is_refused(
    browser_for: Callable[..., AdminBrowser], email: str, path: str, data: dict[str, str]
) -> None:
    browser = browser_for(email)
    missing = browser.client.post(path, data=data)
    forged = browser.client.post(path, data={**data, "csrf_token": "0" * 64})

    assert missing.status_code == forged.status_code == 403
    assert browser.get("/admin/branding").status_code == 200  # still signed in
    assert "Changed" not in browser.get("/admin/branding").text


def test_scripts_may_send_the_token_as_a_header(
    browser_for: Callable[..., AdminBrowser], email: str
) -> None:
    browser = browser_for(email)
    token = csrf_of(browser.get("/admin/branding"))

    answer = browser.client.post("/admin/sign-out", headers={"X-CSRF-Token": token})

    assert answer.status_code == 303
    assert browser.get("/admin/branding").status_code == 303  # signed out


def test_another_sessions_token_does_not_pass(
    browser_for: Callable[..., AdminBrowser], email: str
) -> None:
    first, second = browser_for(email), browser_for(email)
    token_of_first = csrf_of(first.get("/admin/branding"))

    answer = second.client.post("/admin/sign-out", data={"csrf_token": token_of_first})

    assert answer.status_code == 403


def test_sign_out_ends_the_session_on_the_server(
    browser_for: Callable[..., AdminBrowser], email: str
) -> None:
    browser = browser_for(email)
    cookie = browser.client.cookies.get("dripcare_admin")
    answer = browser.post_form("/admin/sign-out", {})

    replay = AdminBrowser()
    replay.client.cookies.set("dripcare_admin", cookie or "")
    assert answer.status_code == 303 and answer.headers["location"] == "/admin/sign-in"
    assert replay.get("/admin/branding").status_code == 303


def test_a_session_expires_after_the_configured_hours(
    browser_for: Callable[..., AdminBrowser], email: str, settings: Settings, admin_now: datetime
) -> None:
    browser = browser_for(email)
    later = admin_now + timedelta(hours=settings.admin_session_hours, minutes=1)

    with time_machine.travel(later):
        answer = browser.get("/admin/branding")

    assert answer.status_code == 303


def test_next_never_leaves_the_admin(email: str) -> None:
    for target in ("https://evil.example/", "//evil.example/admin", "/admin\\@evil.example"):
        answer = AdminBrowser().sign_in(email, next_url=target)
        assert answer.headers["location"] == "/admin", target


def test_five_failures_for_an_email_lock_it_with_a_clear_wait(email: str) -> None:
    for _ in range(5):
        assert AdminBrowser().sign_in(email, "wrong password here").status_code == 400

    locked = AdminBrowser().sign_in(email, PASSWORD)

    assert locked.status_code == 429
    assert "Too many sign-in attempts. Try again in 15 minutes." in locked.text
    assert "dripcare_admin=" not in " ".join(set_cookie_headers(locked))


def test_the_lock_lifts_after_the_window_and_success_clears_the_count(
    email: str, admin_now: datetime
) -> None:
    with time_machine.travel(admin_now, tick=False):
        for _ in range(5):
            AdminBrowser().sign_in(email, "wrong password here")

    with time_machine.travel(admin_now + timedelta(minutes=10)):
        still_locked = AdminBrowser().sign_in(email, PASSWORD)
    with time_machine.travel(admin_now + timedelta(minutes=16)):
        after = AdminBrowser().sign_in(email, PASSWORD)
        one_more_failure = AdminBrowser().sign_in(email, "wrong password here")

    assert "Try again in 5 minutes" in still_locked.text
    assert after.status_code == 303
    assert one_more_failure.status_code == 400  # the count started again at zero


def test_unknown_emails_are_throttled_like_known_ones(clinic: int) -> None:
    for _ in range(5):
        AdminBrowser().sign_in("nobody@riverside.example", "wrong password here")

    assert AdminBrowser().sign_in("nobody@riverside.example", "x" * 12).status_code == 429


@pytest.mark.slow  # an Argon2 hash per attempt
def test_one_address_trying_many_emails_is_throttled(email: str) -> None:
    for n in range(20):
        AdminBrowser().sign_in(f"guess{n}@riverside.example", "wrong password here")

    answer = AdminBrowser().sign_in(email, PASSWORD)

    assert answer.status_code == 429


def test_the_dev_servers_demo_admin_can_sign_in_over_plain_http(admin_now: datetime) -> None:
    from dripcare.devserver import DEMO_ADMIN, seed_demo

    demo = seed_demo()
    assert demo is not None
    browser = AdminBrowser("http://127.0.0.1:8000")

    answer = browser.sign_in(DEMO_ADMIN, demo.admin_password)

    assert answer.status_code == 303
    assert "Demo Skin Clinic" in browser.get("/admin/branding").text
