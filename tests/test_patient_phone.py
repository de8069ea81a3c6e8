"""A patient's optional phone number: validated to E.164 wherever it comes in (API, CSV, CLI),
tap-to-call on the admin's red-flag page, in the data export, and gone after erasure."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import time_machine
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select

from dripcare.cli import main
from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.errors import UserError
from dripcare.models import CheckIn, Patient
from dripcare.validation import normalize_phone
from dripcare.web.app import create_app
from tests.admin_fixtures import ClinicWithHistory
from tests.api_fixtures import Clinic
from tests.factories import DAYTIME as NOW


@pytest.fixture
def clinic(settings: Settings) -> Iterator[Clinic]:
    with time_machine.travel(NOW, tick=True), TestClient(create_app()) as client:
        yield Clinic(client, "Clinic A", "care@a.example")


def phone_of(email: str) -> str:
    with session_scope() as session:
        return session.scalars(select(Patient.phone).where(Patient.email == email)).one()


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("+44 20 7946 0958", "+442079460958"),
        ("+1 (555) 010-0100", "+15550100100"),
        ("0044 20.7946.0958", "+442079460958"),
        ("  ", ""),
    ],
)
def test_international_numbers_are_stored_as_e164(typed: str, stored: str) -> None:
    assert normalize_phone(typed) == stored


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("020 7946 0958", "must be international, with its country code"),
        ("+44 20 7946 095x", "must be international"),
        ("+1234567", "8 to 15 digits"),
        ("+0 20 7946 0958", "8 to 15 digits"),
        ("+١٢٣٤٥٦٧٨٩", "must be international"),  # Arabic-Indic digits are not dialable
    ],
)
def test_anything_else_is_refused_saying_what_to_type(typed: str, said: str) -> None:
    with pytest.raises(UserError, match=said):
        normalize_phone(typed)


def test_the_api_takes_a_phone_on_enrollment_and_patch_and_refuses_a_bad_one(
    clinic: Clinic,
) -> None:
    body = {
        "patient": {"email": "ana@example.com", "phone": "+44 20 7946 0958"},
        "treated_at": "2026-11-24",
    }
    created = clinic.post("/enrollments", body)
    patient_id = created.json()["patient_id"]
    shown = clinic.get(f"/patients/{patient_id}").json()
    bad = clinic.patch(f"/patients/{patient_id}", {"phone": "07946 0958"})
    cleared = clinic.patch(f"/patients/{patient_id}", {"phone": ""})
    refused = clinic.post(
        "/enrollments",
        {"patient": {"email": "bo@example.com", "phone": "call me"}, "treated_at": "2026-11-24"},
    )

    assert created.status_code == 201
    assert shown["phone"] == "+442079460958"
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_input")
    assert "must be international" in bad.json()["detail"]
    assert cleared.json()["phone"] == ""
    assert refused.status_code == 422 and "must be international" in refused.json()["detail"]
    assert clinic.get("/patients", params={"email": "bo@example.com"}).json()["data"] == []


def test_csv_rows_with_a_bad_phone_are_rejected_by_line_and_the_good_ones_stored(
    clinic: Clinic, tmp_path: Path
) -> None:
    path = tmp_path / "patients.csv"
    path.write_text(
        "email,treated_at,phone\n"
        "ann@example.com,2026-11-24,+1 555 010 0100\n"
        "bob@example.com,2026-11-24,555-0100\n"
        "cy@example.com,2026-11-24,\n",
        encoding="utf-8",
    )

    result = CliRunner().invoke(main, ["import-csv", str(path), "--clinic", str(clinic.id)])

    assert result.exit_code == 1
    assert "line 3" in result.output and "must be international" in result.output
    assert phone_of("ann@example.com") == "+15550100100"
    assert phone_of("cy@example.com") == ""


def test_the_cli_enrolls_with_a_phone_and_refuses_a_bad_one_with_status_2(clinic: Clinic) -> None:
    def enroll(email: str, phone: str) -> int:
        args = ["enroll", "--clinic", str(clinic.id), "--email", email]
        args += ["--treated-at", "2026-11-24", "--phone", phone]
        return CliRunner().invoke(main, args).exit_code

    assert enroll("ann@example.com", "+33 1 23 45 67 89") == 0
    assert enroll("bob@example.com", "01 23 45 67 89") == 2
    assert phone_of("ann@example.com") == "+33123456789"


def test_the_red_flag_page_makes_the_phone_tap_to_call_and_export_and_erasure_handle_it(
    settings: Settings, a: ClinicWithHistory, browser_for
) -> None:
    with session_scope() as session:
        patient = session.get(Patient, a.patient_id)
        assert patient is not None
        patient.phone = "+12125550100"
        check_in = session.scalars(select(CheckIn).where(CheckIn.clinic_id == a.clinic_id)).one()
    browser = browser_for(a.admin_email)

    page = browser.get(f"/admin/red-flags/{check_in.id}").text
    listed = browser.get("/admin/red-flags").text
    patient_page = browser.get(f"/admin/patients/{a.patient_id}").text
    exported = browser.get(f"/admin/patients/{a.patient_id}/export").json()
    browser.post_form(
        f"/admin/patients/{a.patient_id}/erase",
        {"confirm": "ERASE"},
        csrf_from=f"/admin/patients/{a.patient_id}/erase",
    )

    assert '<a href="tel:+12125550100">+12125550100</a>' in page
    assert 'href="tel:+12125550100"' in listed
    assert 'href="tel:+12125550100"' in patient_page
    assert exported["patient"]["phone"] == "+12125550100"
    assert phone_of_id(a.patient_id) == ""


def phone_of_id(patient_id: int) -> str:
    with session_scope() as session:
        patient = session.get(Patient, patient_id)
        assert patient is not None and patient.erased_at is not None
        return patient.phone


def test_a_patient_without_a_phone_is_still_shown_how_to_reach_them(
    settings: Settings, a: ClinicWithHistory, browser_for
) -> None:
    page = browser_for(a.admin_email).get("/admin/red-flags").text

    assert "No phone number is on file for this patient" in page and "tel:+" not in page
