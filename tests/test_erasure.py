"""A patient's data, exported and erased: through the API, the CLI and the admin.

On SQLite and PostgreSQL. Erasure removes the person and keeps the counts; the address stays
only as a hash on the suppression list, which still stops it when it is enrolled again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from dripcare.cli import main
from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.models import AuditEvent, Enrollment, Message, MessageStatus, Patient, Suppression
from dripcare.outbox.suppression import hashed, is_suppressed
from dripcare.sending import unreachable
from dripcare.sending.delivery import send_due
from dripcare.sending.transports import transport_from_url
from dripcare.web.app import create_app
from tests.admin_fixtures import AdminBrowser, ClinicWithHistory, make_admin
from tests.api_fixtures import Clinic

ENROLL = {
    "patient": {"email": "ana@example.com", "first_name": "Ana", "last_name": "Lopez"},
    "external_id": "bk-ana",
}
Browse = Callable[..., AdminBrowser]


def daytime() -> datetime:
    """Today at 15:00 UTC (10:00 in New York): the day-0 email is due and may go."""
    return datetime.now(UTC).replace(hour=15, minute=0, second=0, microsecond=0)


@pytest.fixture
def clinic(settings: Settings) -> Iterator[Clinic]:
    with time_machine.travel(daytime(), tick=True), TestClient(create_app()) as client:
        yield Clinic(client, "Clinic A", "care@a.example")


def enroll(clinic: Clinic, **changes: object) -> dict:
    treated = (daytime() - timedelta(hours=3)).isoformat()
    answer = clinic.post("/enrollments", {**ENROLL, "treated_at": treated, **changes})
    assert answer.status_code == 201, answer.text
    return answer.json()


def send_now(settings: Settings) -> int:
    return send_due(session_scope, settings, transport_from_url(settings.smtp_url))["sent"]


def audit_text() -> str:
    with session_scope() as session:
        rows = session.scalars(select(AuditEvent)).all()
        return "\n".join(f"{e.actor} {e.target_kind} {e.target_id} {e.detail}" for e in rows)


def test_export_lists_the_patient_enrollments_messages_and_is_audited(
    clinic: Clinic, settings: Settings
) -> None:
    enrollment = enroll(clinic)
    assert send_now(settings) == 1

    answer = clinic.get(f"/patients/{enrollment['patient_id']}/export")

    assert answer.status_code == 200
    data = answer.json()
    assert data["patient"]["email"] == "ana@example.com"
    assert [e["external_id"] for e in data["enrollments"]] == ["bk-ana"]
    statuses = [m["status"] for m in data["messages"]]
    assert statuses[0] == "sent" and set(statuses[1:]) == {"scheduled"}
    assert data["messages"][0]["deliveries"][0]["outcome"] == "sent"
    assert data["check_ins"] == [] and data["suppressions"] == []
    with session_scope() as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "patient.export")
        ).one()
        assert (event.actor_kind, event.target_id) == ("api-key", str(enrollment["patient_id"]))


def test_export_lists_the_alert_that_told_the_clinic_the_patient_cannot_be_emailed(
    clinic: Clinic, settings: Settings
) -> None:
    ana = enroll(clinic)
    bea = enroll(clinic, patient={**ENROLL["patient"], "email": "b@x.example"}, external_id="b")
    with session_scope() as session:
        patient = session.get(Patient, ana["patient_id"])
        assert patient is not None
        unreachable.queue(session, patient.clinic_id, patient.id)

    told = clinic.get(f"/patients/{ana['patient_id']}/export").json()["unreachable_alerts"]
    other = clinic.get(f"/patients/{bea['patient_id']}/export").json()["unreachable_alerts"]

    assert [(a["channel"], a["status"]) for a in told] == [("email", "pending")]
    assert other == []


def test_erase_removes_the_person_cancels_unsent_and_is_idempotent(
    clinic: Clinic, settings: Settings
) -> None:
    enrollment = enroll(clinic)
    send_now(settings)
    patient_id = enrollment["patient_id"]

    first = clinic.post(f"/patients/{patient_id}/erase")
    again = clinic.post(f"/patients/{patient_id}/erase")

    assert first.status_code == 200 and again.status_code == 200
    assert first.json()["messages_cancelled"] >= 1 and not first.json()["already_erased"]
    assert again.json()["already_erased"] and again.json()["erased_at"] == first.json()["erased_at"]
    patient = clinic.get(f"/patients/{patient_id}").json()
    assert patient["email"] == f"erased-{patient_id}@erased.invalid"
    assert patient["first_name"] == patient["last_name"] == ""
    with session_scope() as session:
        statuses = session.scalars(select(Message.status)).all()
        assert statuses.count(MessageStatus.SENT) == 1  # counts kept
        assert MessageStatus.SCHEDULED not in statuses
        assert session.scalar(select(Enrollment.external_id)) is None
        assert session.scalar(select(Suppression.email)) == hashed("ana@example.com")
    logged = audit_text()
    assert "ana@example.com" not in logged and "Ana" not in logged and "Lopez" not in logged
    assert logged.count(f"patient {patient_id}") == 2  # both requests, by id only


def test_an_erased_address_enrolled_again_is_never_mailed(
    clinic: Clinic, settings: Settings
) -> None:
    first = enroll(clinic)
    clinic.post(f"/patients/{first['patient_id']}/erase")

    second = enroll(clinic, external_id="bk-ana-2")
    sent = send_now(settings)

    assert second["patient_id"] != first["patient_id"] and sent == 0
    with session_scope() as session:
        assert is_suppressed(session, clinic.id, "ana@example.com")
        day0 = session.scalars(
            select(Message).where(Message.enrollment_id == second["id"]).order_by(Message.due_at)
        ).first()
        assert day0 is not None and day0.status != MessageStatus.SENT


def test_an_erased_patient_cannot_be_changed_or_enrolled_by_id(clinic: Clinic) -> None:
    patient_id = enroll(clinic)["patient_id"]
    clinic.post(f"/patients/{patient_id}/erase")

    patch = clinic.patch(f"/patients/{patient_id}", {"email": "back@example.com"})
    again = clinic.post(
        "/enrollments",
        {
            "patient": patient_id,
            "treated_at": daytime().isoformat(),
        },
    )

    assert patch.status_code == 422 and "erased on request" in patch.text
    assert again.status_code == 422 and "erased on request" in again.text


def test_another_clinics_patient_cannot_be_exported_or_erased(clinic: Clinic) -> None:
    patient_id = enroll(clinic)["patient_id"]
    other = Clinic(clinic.client, "Clinic B", "care@b.example")

    assert other.get(f"/patients/{patient_id}/export").status_code == 404
    assert other.post(f"/patients/{patient_id}/erase").status_code == 404
    with session_scope() as session:
        patient = session.get(Patient, patient_id)
        assert patient is not None and patient.erased_at is None


# ---------------------------------------------------------------- the command line


def test_cli_exports_to_a_file_and_erases_only_with_yes(clinic: Clinic, tmp_path: Path) -> None:
    patient_id = str(enroll(clinic)["patient_id"])
    target = tmp_path / "ana.json"

    exported = CliRunner().invoke(main, ["patient", "export", patient_id, "-o", str(target)])
    refused = CliRunner().invoke(main, ["patient", "erase", patient_id])
    erased = CliRunner().invoke(main, ["patient", "erase", patient_id, "--yes", "--json"])
    again = CliRunner().invoke(main, ["patient", "erase", patient_id, "--yes"])

    assert exported.exit_code == 0, exported.output
    assert json.loads(target.read_text())["patient"]["first_name"] == "Ana"
    assert refused.exit_code == 2 and "cannot be undone" in refused.output
    assert erased.exit_code == 0 and json.loads(erased.stdout)["messages_cancelled"] >= 1
    assert again.exit_code == 0 and "already erased" in again.stdout
    log = CliRunner().invoke(main, ["audit", "--action", "patient.erase", "--json"])
    assert [e["actor_kind"] for e in json.loads(log.stdout)] == ["cli", "cli"]


def test_cli_names_an_unknown_patient(settings: Settings) -> None:
    result = CliRunner().invoke(main, ["patient", "erase", "999", "--yes"])

    assert result.exit_code == 2 and "no patient with id 999" in result.output


# ---------------------------------------------------------------- the admin


def test_admin_downloads_and_erases_a_patient_after_confirming(
    browser_for: Browse, a: ClinicWithHistory
) -> None:
    browser = browser_for(a.admin_email)
    url = f"/admin/patients/{a.patient_id}"

    page = browser.get(url)
    download = browser.get(f"{url}/export")
    confirm = browser.get(f"{url}/erase")
    erased = browser.post_form(f"{url}/erase", {}, csrf_from=f"{url}/erase")
    after = browser.get(url)

    assert f'href="{url}/erase"' in page.text and f'href="{url}/export"' in page.text
    assert download.headers["content-disposition"].startswith("attachment")
    assert download.json()["patient"]["email"] == "patient@a.example"
    assert "cannot be undone" in confirm.text and "patient@a.example" in confirm.text
    assert erased.status_code == 303 and erased.headers["location"] == url
    assert "(erased)" in after.text and "patient@a.example" not in after.text
    assert "Ana" not in after.text


def test_admin_erase_without_the_forms_token_is_refused(
    browser_for: Browse, a: ClinicWithHistory
) -> None:
    browser = browser_for(a.admin_email)

    answer = browser.client.post(f"/admin/patients/{a.patient_id}/erase", data={})

    assert answer.status_code == 403
    with session_scope() as session:
        patient = session.get(Patient, a.patient_id)
        assert patient is not None and patient.erased_at is None


def test_admin_cannot_export_or_erase_another_clinics_patient(
    browser_for: Browse, a: ClinicWithHistory, b: ClinicWithHistory
) -> None:
    browser = browser_for(a.admin_email)
    url = f"/admin/patients/{b.patient_id}"

    for answer in (
        browser.get(f"{url}/export"),
        browser.get(f"{url}/erase"),
        browser.post_form(f"{url}/erase", {}),
    ):
        assert answer.status_code == 404
        assert "patient@b.example" not in answer.text and "Bea" not in answer.text
    with session_scope() as session:
        assert session.scalar(select(func.count()).where(Patient.erased_at.is_not(None))) == 0


def test_platform_admin_erasure_is_scoped_to_the_picked_clinic(
    settings: Settings, browser_for: Browse, a: ClinicWithHistory, b: ClinicWithHistory
) -> None:
    make_admin("root@platform.example", platform=True)
    browser = browser_for("root@platform.example")  # works on the first clinic, A

    answer = browser.post_form(f"/admin/patients/{b.patient_id}/erase", {})

    assert answer.status_code == 404
