"""The admin's escalation settings: the same rules as `dripcare clinic red-flags`, with CSRF,
audited, and only ever the admin's own clinic."""

from __future__ import annotations

import html

from click.testing import CliRunner
from sqlalchemy import select

from dripcare.cli import main
from dripcare.db import session_scope
from dripcare.models import AuditEvent, Clinic
from dripcare.sending import escalation
from tests.admin_fixtures import ClinicWithHistory

PAGE = "/admin/escalation"
ESCALATION_ROUTES = {
    ("GET", PAGE): "test_admin_escalation.py::test_each_clinic_admin_sees_and_sets_only_their_own",
    ("POST", PAGE): "test_admin_escalation.py::test_each_clinic_admin_sees_and_sets_only_their_own",
}
GOOD = {
    "ack_minutes": "20",
    "open_hours": "Mon-Fri 09:00-18:00; Sat 10:00-14:00",
    "escalation_emails": "Lead@A.example\nowner@a.example",
    "escalation_webhook": "https://hooks.a.example/red",
    "after_hours_email": "oncall@a.example",
}


def settings_of(clinic_id: int) -> escalation.EscalationSettings:
    with session_scope() as session:
        clinic = session.get(Clinic, clinic_id)
        assert clinic is not None
        return escalation.settings_of(clinic)


def audited(action: str) -> list[tuple[int | None, str]]:
    with session_scope() as session:
        rows = session.execute(
            select(AuditEvent.clinic_id, AuditEvent.actor).where(AuditEvent.action == action)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_saving_stores_normalised_settings_and_audits_it(browser_for, a: ClinicWithHistory) -> None:
    browser = browser_for(a.admin_email)

    saved = browser.post_form(PAGE, GOOD, csrf_from=PAGE)
    page = html.unescape(browser.get(f"{PAGE}?saved=true").text)

    assert saved.status_code == 303
    stored = settings_of(a.clinic_id)
    assert stored.ack_minutes == 20
    assert stored.escalation_emails == ("lead@a.example", "owner@a.example")
    assert stored.after_hours_email == "oncall@a.example"
    assert "Saved." in page and "Mon-Fri 09:00-18:00; Sat 10:00-14:00" in page
    assert audited("red-flag.escalation-set") == [(a.clinic_id, a.admin_email)]


def test_a_form_without_its_csrf_token_changes_nothing(browser_for, a: ClinicWithHistory) -> None:
    browser = browser_for(a.admin_email)

    forged = browser.client.post(PAGE, data={**GOOD, "csrf_token": "0" * 64})

    assert forged.status_code == 403
    assert settings_of(a.clinic_id) == escalation.EscalationSettings()


def test_the_form_refuses_what_the_cli_refuses_with_the_same_words(
    browser_for, a: ClinicWithHistory
) -> None:
    browser = browser_for(a.admin_email)
    cases = {
        "open_hours": ("Mon-Fri 9-18h", "--open-hours"),
        "ack_minutes": ("0", "--ack-minutes"),
        "escalation_webhook": ("ftp://x.example", "--escalation-webhook"),
    }
    for field, (typed, option) in cases.items():
        answer = browser.post_form(PAGE, {**GOOD, field: typed}, csrf_from=PAGE)
        cli = CliRunner().invoke(main, ["clinic", "red-flags", str(a.clinic_id), option, typed])

        cli_message = cli.output.strip().removeprefix("error: ")
        assert answer.status_code == 422, field
        assert cli.exit_code == 2, field
        assert cli_message and cli_message in html.unescape(answer.text), field
        assert "Nothing was changed." in answer.text
    assert settings_of(a.clinic_id) == escalation.EscalationSettings()
    assert audited("red-flag.escalation-set") == []


def test_a_window_that_is_not_a_number_says_so(browser_for, a: ClinicWithHistory) -> None:
    answer = browser_for(a.admin_email).post_form(
        PAGE, {**GOOD, "ack_minutes": "ten"}, csrf_from=PAGE
    )

    assert answer.status_code == 422
    assert "must be a whole number of minutes, got 'ten'" in html.unescape(answer.text)


def test_each_clinic_admin_sees_and_sets_only_their_own(
    browser_for, a: ClinicWithHistory, b: ClinicWithHistory
) -> None:
    browser_for(a.admin_email).post_form(PAGE, GOOD, csrf_from=PAGE)

    page_b = html.unescape(browser_for(b.admin_email).get(PAGE).text)

    assert "oncall@a.example" not in page_b and "lead@a.example" not in page_b
    assert settings_of(b.clinic_id) == escalation.EscalationSettings()
    assert settings_of(a.clinic_id).after_hours_email == "oncall@a.example"
