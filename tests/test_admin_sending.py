"""The admin's Sending page: quiet hours, sending domains and their DNS, DKIM keys, the clinic's
own SMTP server. Clinic staff may set quiet hours and check DNS; the rest is a platform
admin's (403 for a clinic admin). On SQLite and PostgreSQL; DNS from a server in this process.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import select

from dripcare.config import Settings, get_settings
from dripcare.db import session_scope
from dripcare.models import AuditEvent, Clinic, ClinicTransport, DkimKey
from tests.admin_fixtures import AdminBrowser, ClinicWithHistory, make_admin
from tests.dns_server import LocalDNS

Browse = Callable[..., AdminBrowser]
PAGE = "/admin/sending"
PLATFORM_ONLY = {
    "/admin/sending/domains": {"domain": "a-care.example"},
    "/admin/sending/domains/remove": {"domain": "a.example"},
    "/admin/sending/dkim": {"domain": "a.example", "selector": "s1"},
    "/admin/sending/transport": {"smtp_url": "smtp://u:p@mail.a.example:587"},
    "/admin/sending/transport/clear": {},
}
# How test_admin_pages' route inventory finds each route's isolation test.
SENDING_ROUTES = {
    ("GET", PAGE): "test_admin_sending.py::test_a_clinic_admin_sees_only_their_own_sending",
    (
        "POST",
        f"{PAGE}/quiet-hours",
    ): "test_admin_sending.py::test_quiet_hours_are_saved_and_audited",
    ("POST", f"{PAGE}/check-dns"): "test_admin_sending.py::test_check_dns_shows_each_record",
    **{
        ("POST", url): "test_admin_sending.py::test_a_clinic_admin_gets_403_on_platform_actions"
        for url in PLATFORM_ONLY
    },
}


@pytest.fixture
def dns_server(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Iterator[LocalDNS]:
    server = LocalDNS().start()
    monkeypatch.setenv("DRIPCARE_DNS_NAMESERVER", server.nameserver)
    get_settings.cache_clear()
    yield server
    server.stop()


@pytest.fixture
def platform(browser_for: Browse, a: ClinicWithHistory) -> AdminBrowser:
    """A platform admin, administering clinic A (the first clinic)."""
    return browser_for(make_admin("ops@platform.example", platform=True))


def post(browser: AdminBrowser, url: str, data: dict[str, str]) -> tuple[int, str]:
    answer = browser.post_form(url, data, csrf_from=PAGE)
    if answer.status_code == 303:
        assert answer.headers["location"].startswith(PAGE)
        answer = browser.get(answer.headers["location"])
    return answer.status_code, html.unescape(answer.text)


def words(page: str) -> str:
    """The page's text without its tags (what a person reads)."""
    return " ".join(re.sub(r"<[^>]+>", " ", page).split())


def audited(action: str) -> list[tuple[int | None, str, str]]:
    with session_scope() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.action == action))
        return [(e.clinic_id, e.actor, e.detail) for e in rows]


def quiet_hours_of(clinic_id: int) -> str | None:
    with session_scope() as session:
        return session.get_one(Clinic, clinic_id).quiet_hours


# ---------------------------------------------------------------- quiet hours (clinic staff)


def test_quiet_hours_are_saved_and_audited(browser_for: Browse, a: ClinicWithHistory) -> None:
    browser = browser_for(a.admin_email)
    before = html.unescape(browser.get(PAGE).text)

    status, page = post(browser, f"{PAGE}/quiet-hours", {"quiet_hours": " 22:30 - 7:00 "})

    assert "uses the platform's quiet hours: 21:00-08:00" in words(before)
    assert status == 200 and "Quiet hours saved" in page
    assert "between 22:30-07:00 ," in words(page) and 'value="22:30-07:00"' in page
    assert quiet_hours_of(a.clinic_id) == "22:30-07:00"
    assert audited("sending.quiet-hours") == [(a.clinic_id, a.admin_email, "22:30-07:00")]

    status, page = post(browser, f"{PAGE}/quiet-hours", {"quiet_hours": ""})
    assert status == 200 and "uses the platform's quiet hours" in page
    assert quiet_hours_of(a.clinic_id) is None


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("10pm-7am", "quiet hours must look like 21:00-08:00, got '10pm-7am'"),
        ("25:00-07:00", "local time must look like 09:00"),
        ("09:00-09:00", "start and end at the same time, so they would never apply"),
    ],
)
def test_wrong_quiet_hours_are_refused_with_what_to_type(
    browser_for: Browse, a: ClinicWithHistory, typed: str, message: str
) -> None:
    browser = browser_for(a.admin_email)

    status, page = post(browser, f"{PAGE}/quiet-hours", {"quiet_hours": typed})

    assert status == 422
    assert message in page and 'id="quiet_hours-error"' in page
    assert f'value="{typed}"' in page  # kept in the form to correct
    assert quiet_hours_of(a.clinic_id) is None
    assert audited("sending.quiet-hours") == []


# ---------------------------------------------------------------- DNS checks (clinic staff)


def test_check_dns_shows_each_record(
    browser_for: Browse, platform: AdminBrowser, a: ClinicWithHistory, dns_server: LocalDNS
) -> None:
    post(platform, f"{PAGE}/dkim", {"domain": "a.example", "selector": "s1"})
    with session_scope() as session:
        public = session.scalars(select(DkimKey.public_key)).one()
    dns_server.zone.txt["a.example"] = ["v=spf1 include:mail.example ~all"]
    dns_server.zone.txt["s1._domainkey.a.example"] = [f"v=DKIM1; k=rsa; p={public}"]
    browser = browser_for(a.admin_email)

    status, page = post(browser, f"{PAGE}/check-dns", {})

    assert status == 200
    results = page.split('id="dns-results"')[1]
    assert "SPF" in results and "v=spf1 include:mail.example ~all" in results
    assert "DKIM s1" in results and ">ok<" in results
    assert "DMARC" in results and ">missing<" in results
    assert 'publish _dmarc.a.example TXT "v=DMARC1; p=none;' in results


def test_a_dns_server_that_fails_says_to_try_again(
    browser_for: Browse, a: ClinicWithHistory, dns_server: LocalDNS
) -> None:
    dns_server.zone.failing |= {"a.example", "_dmarc.a.example"}

    status, page = post(browser_for(a.admin_email), f"{PAGE}/check-dns", {})

    assert status == 200
    assert ">unknown<" in page
    assert "DNS did not answer for a.example: check again in a few minutes" in page
    assert "no DKIM key for this domain yet" in page


# ---------------------------------------------------------------- what a clinic admin may see


def test_a_clinic_admin_sees_only_their_own_sending(
    browser_for: Browse, platform: AdminBrowser, a: ClinicWithHistory, b: ClinicWithHistory
) -> None:
    post(platform, f"{PAGE}/transport", {"smtp_url": "smtp://ann:hunter2@mail.a.example:2525"})
    post(platform, f"{PAGE}/dkim", {"domain": "a.example", "selector": "s1"})

    page_a = html.unescape(browser_for(a.admin_email).get(PAGE).text)
    page_b = html.unescape(browser_for(b.admin_email).get(PAGE).text)

    assert "a.example" in page_a and "b.example" not in page_a
    assert "its own server: mail.a.example:2525" in words(page_a)
    assert "hunter2" not in page_a and "ann:" not in page_a
    assert "s1._domainkey.a.example" in page_a
    assert "b.example" in page_b and "a.example" not in page_b
    assert "the platform's server" in page_b and "No DKIM key yet" in page_b
    for page in (page_a, page_b):
        assert 'action="/admin/sending/transport"' not in page
        assert 'action="/admin/sending/dkim"' not in page
        assert 'href="/admin/sending" aria-current="page"' in page
    picked = browser_for(a.admin_email).post_form(
        "/admin/clinic", {"clinic_id": str(b.clinic_id)}, csrf_from=PAGE
    )
    assert picked.status_code == 404


@pytest.mark.parametrize("url", list(PLATFORM_ONLY))
def test_a_clinic_admin_gets_403_on_platform_actions(
    browser_for: Browse, a: ClinicWithHistory, url: str
) -> None:
    browser = browser_for(a.admin_email)

    answer = browser.post_form(url, PLATFORM_ONLY[url], csrf_from=PAGE)

    assert answer.status_code == 403
    assert "Only a platform administrator can do this" in answer.text
    with session_scope() as session:
        assert session.scalars(select(DkimKey)).all() == []
        assert session.scalars(select(ClinicTransport)).all() == []
    assert "a.example" in browser.get(PAGE).text  # not removed


def test_platform_actions_need_the_forms_csrf_token(platform: AdminBrowser) -> None:
    answer = platform.client.post(f"{PAGE}/dkim", data={"domain": "a.example"})

    assert answer.status_code == 403 and "This form has expired" in answer.text


# ---------------------------------------------------------------- platform admin


def test_platform_admin_assigns_and_removes_domains(
    platform: AdminBrowser, a: ClinicWithHistory, b: ClinicWithHistory
) -> None:
    status, added = post(platform, f"{PAGE}/domains", {"domain": "A-Care.example."})
    taken_status, taken = post(platform, f"{PAGE}/domains", {"domain": "b.example"})
    bad_status, bad = post(platform, f"{PAGE}/domains", {"domain": "not a domain"})
    in_use_status, in_use = post(platform, f"{PAGE}/domains/remove", {"domain": "a.example"})
    removed_status, removed = post(platform, f"{PAGE}/domains/remove", {"domain": "a-care.example"})

    assert status == 200 and "Sending domain added" in added and "a-care.example" in added
    assert taken_status == 422
    assert f"b.example is already a sending domain of clinic {b.clinic_id}; remove it" in taken
    assert bad_status == 422 and "is not a domain name" in bad
    assert in_use_status == 422 and "change its sender address" in in_use
    assert removed_status == 200 and "a-care.example" not in removed
    assert [detail for _, _, detail in audited("sending.domain-assign")] == ["a-care.example"]
    assert audited("sending.domain-remove") == [
        (a.clinic_id, "ops@platform.example", "a-care.example")
    ]


def test_platform_admin_makes_a_dkim_key_and_sees_its_record(
    platform: AdminBrowser, a: ClinicWithHistory
) -> None:
    status, page = post(platform, f"{PAGE}/dkim", {"domain": "a.example", "selector": "s1"})
    again_status, again = post(platform, f"{PAGE}/dkim", {"domain": "a.example", "selector": "s1"})

    with session_scope() as session:
        key = session.scalars(select(DkimKey)).one()
    assert status == 200 and "DKIM key made" in page
    assert 'value="s1._domainkey.a.example"' in page
    assert f"v=DKIM1; k=rsa; p={key.public_key}</textarea>" in page
    assert "PRIVATE KEY" not in page
    assert again_status == 422 and "already has a key; choose another" in again
    assert audited("sending.dkim-generate") == [
        (a.clinic_id, "ops@platform.example", "s1._domainkey.a.example")
    ]


def test_platform_admin_sets_and_clears_the_smtp_server(
    platform: AdminBrowser, a: ClinicWithHistory
) -> None:
    url = "smtp://ann:hunter2@mail.a.example:587?starttls=true"
    status, page = post(platform, f"{PAGE}/transport", {"smtp_url": url})

    with session_scope() as session:
        stored = session.get_one(ClinicTransport, a.clinic_id).smtp_url
    assert status == 200 and "sends through its own server" in page
    assert "own server: smtp://ann:***@mail.a.example:587" in words(page) and "hunter2" not in page
    assert "hunter2" not in stored and "mail.a.example" not in stored  # sealed
    [(clinic, _, detail)] = audited("sending.transport-set")
    assert clinic == a.clinic_id and "hunter2" not in detail

    status, page = post(platform, f"{PAGE}/transport/clear", {})
    assert status == 200 and "sends through the platform's server" in page
    with session_scope() as session:
        assert session.get(ClinicTransport, a.clinic_id) is None
    assert len(audited("sending.transport-clear")) == 1


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("smtp://ann:hunter2@:587", "has no host"),
        ("http://ann:hunter2@mail.a.example", "unknown"),
        ("env:not a name", "name an environment variable"),
        ("", "give the clinic's SMTP URL"),
    ],
)
def test_a_wrong_smtp_url_is_refused_without_echoing_it(
    platform: AdminBrowser, a: ClinicWithHistory, typed: str, message: str
) -> None:
    status, page = post(platform, f"{PAGE}/transport", {"smtp_url": typed})

    assert status == 422 and message in page
    assert 'id="smtp_url-error"' in page and "Give it as smtp://" in page
    assert "hunter2" not in page
    with session_scope() as session:
        assert session.get(ClinicTransport, a.clinic_id) is None
