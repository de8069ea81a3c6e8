"""The audit log: what is recorded, who can read it, and that it holds no secrets.

On SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from click.testing import CliRunner
from sqlalchemy import select

from dripcare.cli import main
from dripcare.db import session_scope
from dripcare.models import AuditEvent
from tests.admin_fixtures import (
    PASSWORD,
    AdminBrowser,
    ClinicWithHistory,
    make_admin,
)

Browse = Callable[..., AdminBrowser]


def events(action: str) -> list[AuditEvent]:
    with session_scope() as session:
        query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        return list(session.scalars(query))


def test_sign_ins_are_recorded_without_passwords_or_typed_unknown_emails(
    a: ClinicWithHistory,
) -> None:
    browser = AdminBrowser()

    browser.sign_in(a.admin_email, "wrong password, a long one")
    browser.sign_in("not-an-account@a.example", PASSWORD)
    browser.sign_in(a.admin_email)

    failed, succeeded = events("admin.sign-in-failed"), events("admin.sign-in")
    assert [e.actor for e in failed] == [a.admin_email, "(no such account)"]
    assert [(e.actor, e.clinic_id) for e in succeeded] == [(a.admin_email, a.clinic_id)]
    with session_scope() as session:
        text = " ".join(f"{e.actor} {e.detail}" for e in session.scalars(select(AuditEvent)))
    assert "wrong password" not in text and PASSWORD not in text
    assert "not-an-account" not in text


def test_publish_and_roll_back_from_the_admin_name_the_admin(
    browser_for: Browse, a: ClinicWithHistory
) -> None:
    browser = browser_for(a.admin_email)
    slug = "microneedling"
    draft = browser.post_form(
        f"/admin/campaigns/{slug}/steps/day-3/timing",
        {"offset_days": "4"},
        csrf_from=f"/admin/campaigns/{slug}",
    )
    assert draft.status_code == 303, draft.text

    published = browser.post_form(f"/admin/campaigns/{slug}/publish", {"number": "2"})
    rolled = browser.post_form(f"/admin/campaigns/{slug}/rollback", {"number": "1"})

    assert published.status_code == 303 and rolled.status_code == 303, rolled.text
    (publish,) = [e for e in events("campaign.publish") if e.actor_kind == "admin"]
    (rollback,) = events("campaign.rollback")
    assert (publish.actor, publish.target_id, publish.detail) == (
        a.admin_email,
        slug,
        "version 2 live",
    )
    assert (rollback.actor, rollback.clinic_id) == (a.admin_email, a.clinic_id)


def test_api_keys_created_and_revoked_at_the_command_line_name_the_operator(
    a: ClinicWithHistory,
) -> None:
    created = CliRunner().invoke(main, ["apikey", "create", "--clinic", str(a.clinic_id), "--json"])
    key_id = json.loads(created.stdout)["id"]
    CliRunner().invoke(main, ["apikey", "revoke", str(key_id)])
    CliRunner().invoke(main, ["apikey", "revoke", str(key_id)])  # again: nothing to record

    made, revoked = events("apikey.create"), events("apikey.revoke")
    assert [(e.actor_kind, e.target_id) for e in made] == [("cli", str(key_id))]
    assert [(e.actor_kind, e.target_id) for e in revoked] == [("cli", str(key_id))]
    plaintext = json.loads(created.stdout)["key"]
    assert all(plaintext.split("_")[2] not in e.detail for e in made)


def test_a_clinic_admin_sees_only_their_clinics_events(
    browser_for: Browse, a: ClinicWithHistory, b: ClinicWithHistory
) -> None:
    browser_for(b.admin_email)  # B's sign-in: an event of clinic B

    page = browser_for(a.admin_email).get("/admin/audit")

    assert page.status_code == 200
    assert a.admin_email in page.text and b.admin_email not in page.text
    assert "Bea" not in page.text and "patient@" not in page.text


def test_a_platform_admin_sees_every_clinics_events_and_can_filter(
    browser_for: Browse, a: ClinicWithHistory, b: ClinicWithHistory
) -> None:
    browser_for(a.admin_email), browser_for(b.admin_email)
    make_admin("root@platform.example", platform=True)
    browser = browser_for("root@platform.example")

    everything = browser.get("/admin/audit")
    sign_ins = browser.get("/admin/audit?action=admin.sign-in")
    publishes = browser.get("/admin/audit?action=campaign.publish")

    assert a.admin_email in everything.text and b.admin_email in everything.text
    assert "root@platform.example" in sign_ins.text
    assert "admin.sign-in" not in publishes.text.split('id="audit"')[1]


def test_audit_command_lists_newest_first_and_filters_by_clinic(
    a: ClinicWithHistory, b: ClinicWithHistory
) -> None:
    AdminBrowser().sign_in(b.admin_email)

    every = json.loads(CliRunner().invoke(main, ["audit", "--json"]).stdout)
    only_a = json.loads(
        CliRunner().invoke(main, ["audit", "--clinic", str(a.clinic_id), "--json"]).stdout
    )

    assert every[0]["action"] == "admin.sign-in" and every[0]["actor"] == b.admin_email
    assert [e["id"] for e in every] == sorted((e["id"] for e in every), reverse=True)
    assert {e["clinic_id"] for e in only_a} == {a.clinic_id}
