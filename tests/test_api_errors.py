"""The API's answers to what it refuses: bad JSON, loose ids, missing keys, big bodies.

HTTP against the app on SQLite and PostgreSQL, as in test_api.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import time_machine
from fastapi.testclient import TestClient

from dripcare.config import Settings
from dripcare.web.app import create_app
from tests.test_api import NOW, Clinic


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with time_machine.travel(NOW, tick=True), TestClient(create_app()) as test_client:
        yield test_client


@pytest.fixture
def clinic(client: TestClient) -> Clinic:
    return Clinic(client, "Clinic A", "care@a.example")


def post_raw(clinic: Clinic, path: str, body: bytes | str) -> object:
    headers = {**clinic.headers, "Content-Type": "application/json"}
    return clinic.client.post(f"/api/v1{path}", content=body, headers=headers)


NOT_JSON = {
    "NaN": '{"email": "ana@example.com", "first_name": NaN}',
    "Infinity": '{"email": "ana@example.com", "first_name": Infinity}',
    "-Infinity": '{"email": "ana@example.com", "first_name": -Infinity}',
    "1e999": '{"email": 1e999}',
    "lone surrogate": '{"email": "ana@example.com", "first_name": "\\ud800"}',
    "lone surrogate in a key": '{"\\udfff": 1, "email": "ana@example.com"}',
    "a 5000-digit number": '{"email": ' + "9" * 5000 + "}",
}


@pytest.mark.parametrize("body", NOT_JSON.values(), ids=NOT_JSON.keys())
def test_values_json_does_not_have_are_a_422_not_a_500(clinic: Clinic, body: str) -> None:
    response = post_raw(clinic, "/patients", body)

    assert response.status_code == 422, response.text  # type: ignore[attr-defined]
    assert "not valid JSON" in response.text  # type: ignore[attr-defined]
    assert clinic.get("/patients", params={"email": "ana@example.com"}).json()["data"] == []


def test_a_surrogate_pair_is_a_character_and_accepted(clinic: Clinic) -> None:
    body = '{"email": "ana@example.com", "first_name": "Ana \\ud83d\\ude00"}'

    response = post_raw(clinic, "/patients", body)

    assert response.status_code == 201
    assert response.json()["first_name"] == "Ana \U0001f600"


def test_validation_errors_do_not_echo_the_input(clinic: Clinic) -> None:
    long_email = "x" * 100_000 + "@example.com"
    secret_name = "Ana-Private"

    too_long = clinic.post("/patients", {"email": long_email})
    wrong_type = clinic.post("/patients", {"email": "ana@example.com", "first_name": [secret_name]})

    assert too_long.status_code == wrong_type.status_code == 422
    assert len(too_long.content) < 2000
    assert "xxxxxxxxxx" not in too_long.text
    assert secret_name not in wrong_type.text
    assert "first_name" in wrong_type.text
