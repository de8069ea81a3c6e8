"""Admin users and signed-in browsers (httpx TestClients) for the web admin's tests."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import time_machine
from fastapi.testclient import TestClient

from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.models import Enrollment, MessageStatus
from dripcare.outbox import checkins
from dripcare.people.admins import create_admin_user
from dripcare.sending.delivery import send_due
from dripcare.sending.transports import transport_from_url
from dripcare.web.app import create_app
from tests.factories import DAYTIME as NOW
from tests.factories import make_clinic, make_enrollment

PASSWORD = "correct horse battery staple"
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


@dataclass(frozen=True)
class ClinicWithHistory:
    """A clinic, its admin, and one patient with a sent email and a red-flag check-in."""

    clinic_id: int
    admin_email: str
    patient_id: int
    sent_id: int  # the day-0 email, sent
    upcoming_id: int  # the day-1 email, scheduled


def clinic_with_history(
    settings: Settings, name: str, first_name: str = "Ana", slug: str = "a"
) -> ClinicWithHistory:
    """Sends the day-0 email through the real send path (to the capture directory)."""
    clinic_id = make_clinic(name=name, sender=f"care@{slug}.example")
    admin = make_admin(f"admin@{slug}.example", clinic_id=clinic_id)
    enrollment_id = make_enrollment(
        settings,
        clinic_id,
        datetime.now(UTC) - timedelta(hours=3),
        email=f"patient@{slug}.example",
        first_name=first_name,
        last_name="Patient",
    )
    assert send_due(session_scope, settings, transport_from_url(settings.smtp_url))["sent"] >= 1
    with session_scope() as session:
        enrollment = session.get(Enrollment, enrollment_id)
        assert enrollment is not None
        sent, upcoming = enrollment.messages[0], enrollment.messages[1]
        assert sent.status == MessageStatus.SENT
        checkins.record(session, sent, worried=True, codes=["eye"])
        return ClinicWithHistory(clinic_id, admin, enrollment.patient_id, sent.id, upcoming.id)


@pytest.fixture
def a(settings: Settings, admin_now: datetime) -> ClinicWithHistory:
    """Clinic A, its admin, a patient whose first email was sent and answered with a red flag."""
    return clinic_with_history(settings, "Clinic A", "Ana", "a")


@pytest.fixture
def b(settings: Settings, a: ClinicWithHistory) -> ClinicWithHistory:
    """A second clinic, for what one clinic's admin must not see of another."""
    return clinic_with_history(settings, "Clinic B", "Bea", "b")
