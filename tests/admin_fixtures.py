"""Admin users and signed-in browsers (httpx TestClients) for the web admin's tests."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import httpx
import pytest
import time_machine
from fastapi.testclient import TestClient

from dripcare.admins import create_admin_user
from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.web.app import create_app

PASSWORD = "correct horse battery staple"
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # 10:00 in New York: no quiet hours
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_admin(
    email: str = "admin@riverside.example",
    clinic_id: int | None = None,
    platform: bool = False,
    password: str = PASSWORD,
) -> str:
    with session_scope() as session:
        create_admin_user(
            session, email=email, password=password, clinic_id=clinic_id, platform=platform
        )
    return email


def csrf_of(page: httpx.Response) -> str:
    found = _CSRF.search(page.text)
    assert found is not None, f"no CSRF token on {page.url}"
    return found.group(1)


class AdminBrowser:
    """One browser: its own cookies, over https (the cookies are Secure)."""

    def __init__(self, base_url: str = "https://testserver") -> None:
        self.client = TestClient(create_app(), base_url=base_url, follow_redirects=False)

    def sign_in(
        self, email: str, password: str = PASSWORD, next_url: str = "/admin"
    ) -> httpx.Response:
        form = self.client.get("/admin/sign-in")
        data = {"email": email, "password": password, "csrf_token": csrf_of(form), "next": next_url}
        return self.client.post("/admin/sign-in", data=data)

    def get(self, url: str) -> httpx.Response:
        return self.client.get(url)

    def post_form(
        self, url: str, data: dict[str, str], csrf_from: str = "/admin/branding"
    ) -> httpx.Response:
        """A form post as the page sends it: with the CSRF token of a page of this session."""
        token = csrf_of(self.client.get(csrf_from))
        return self.client.post(url, data={"csrf_token": token, **data})


@pytest.fixture
def admin_now(settings: Settings) -> Iterator[datetime]:
    with time_machine.travel(NOW, tick=True):
        yield NOW


@pytest.fixture
def browser_for(admin_now: datetime) -> Callable[..., AdminBrowser]:
    """`browser_for(email)`: a browser signed in as that admin (made with `make_admin`)."""

    def signed_in(email: str, password: str = PASSWORD) -> AdminBrowser:
        browser = AdminBrowser()
        answer = browser.sign_in(email, password)
        assert answer.status_code == 303, answer.text
        return browser

    return signed_in
