"""Login throttling holds when attempts arrive at once, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from dripcare.config import Settings, get_settings
from dripcare.db import session_scope
from dripcare.people.admins import SignIn, TooManyAttempts, authenticate
from dripcare.web.app import create_app
from dripcare.web.ratelimit import client_address
from tests.admin_fixtures import AdminBrowser, make_admin
from tests.factories import make_clinic

ATTEMPTS = 16


def test_a_burst_of_wrong_passwords_gets_only_the_allowed_tries(
    admin_now: datetime, settings: Settings
) -> None:
    email = make_admin(clinic_id=make_clinic())
    start = threading.Barrier(ATTEMPTS)

    def attempt(n: int) -> str:
        start.wait()
        try:
            with session_scope() as session:
                user = authenticate(
                    session,
                    settings,
                    SignIn(email, "wrong password here", f"10.0.0.{n}"),
                    admin_now,
                )
        except TooManyAttempts:
            return "throttled"
        return "tried" if user is None else "signed in"

    with ThreadPoolExecutor(ATTEMPTS) as pool:
        answers = list(pool.map(attempt, range(ATTEMPTS)))

    assert answers.count("tried") == settings.login_max_failures
    assert answers.count("throttled") == ATTEMPTS - settings.login_max_failures


def request_from(peer: str, *forwarded: str) -> Request:
    headers = [(b"x-forwarded-for", line.encode()) for line in forwarded]
    return Request({"type": "http", "client": (peer, 5000), "headers": headers})


@pytest.mark.parametrize(
    ("proxies", "peer", "forwarded", "client"),
    [
        ("", "10.0.0.2", ["203.0.113.7"], "10.0.0.2"),  # no setting: the socket peer
        ("10.0.0.0/8", "198.51.100.9", ["203.0.113.7"], "198.51.100.9"),  # peer not a proxy
        ("10.0.0.0/8", "10.0.0.2", ["203.0.113.7"], "203.0.113.7"),
        ("10.0.0.0/8", "10.0.0.2", ["1.2.3.4, 203.0.113.7, 10.0.0.9"], "203.0.113.7"),
        ("10.0.0.0/8,::1", "::1", ["1.2.3.4", "203.0.113.7"], "203.0.113.7"),  # two headers
        ("10.0.0.0/8", "10.0.0.2", ["10.0.0.5"], "10.0.0.5"),  # every hop trusted
        ("10.0.0.0/8", "10.0.0.2", ["not-an-ip"], "10.0.0.2"),
        ("10.0.0.0/8", "10.0.0.2", [], "10.0.0.2"),
    ],
)
def test_the_client_is_the_first_untrusted_hop_from_the_right(
    proxies: str, peer: str, forwarded: list[str], client: str
) -> None:
    settings = Settings(trusted_proxies=proxies)

    assert client_address(request_from(peer, *forwarded), settings) == client


def test_a_bad_trusted_proxies_setting_names_the_entry() -> None:
    with pytest.raises(ValueError, match="is not an IP address or CIDR"):
        Settings(trusted_proxies="127.0.0.1, 10.0.0.0/33")


def test_behind_a_trusted_proxy_one_guessing_address_does_not_lock_out_others(
    admin_now: datetime, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIPCARE_TRUSTED_PROXIES", "10.0.0.0/8")
    get_settings.cache_clear()
    email = make_admin(clinic_id=make_clinic())

    def browser(forwarded_for: str) -> AdminBrowser:
        browser = AdminBrowser()
        browser.client = TestClient(
            create_app(),
            base_url="https://testserver",
            follow_redirects=False,
            client=("10.0.0.2", 5000),
            headers={"X-Forwarded-For": forwarded_for},
        )
        return browser

    attacker = browser("203.0.113.7")
    for n in range(settings.login_max_failures_per_address):
        attacker.sign_in(f"guess{n}@riverside.example", "wrong password here")

    assert attacker.sign_in(email).status_code == 429
    assert browser("198.51.100.20").sign_in(email).status_code == 303
