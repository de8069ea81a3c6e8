"""The API's answers to what it refuses: bad JSON, loose ids, missing keys, big bodies.

HTTP against the app on SQLite and PostgreSQL, as in test_api.py.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from fastapi.utils import generate_unique_id

from dripcare.web.app import create_app
from tests.api_fixtures import Clinic
from tests.conftest import configure
from tests.test_api import ENROLL


@pytest.fixture
def clinic(clinic_a: Clinic) -> Clinic:
    """Clinic A of api_fixtures.py, the only clinic here."""
    return clinic_a


def oversized_bulk() -> bytes:
    """A bulk enrollment body of 20,000 items: over the 1 MB limit on a request body."""
    return b'{"items": [' + b", ".join([json.dumps(ENROLL).encode()] * 20000) + b"]}"


def in_chunks(body: bytes) -> Iterator[bytes]:
    """The body sent chunked, with no Content-Length: the server learns its size by reading."""
    yield from (body[i : i + 65536] for i in range(0, len(body), 65536))


def post_raw(clinic: Clinic, path: str, body: bytes | str) -> httpx.Response:
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

    assert response.status_code == 422, response.text
    assert "not valid JSON" in response.text
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


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert body["type"] == f"urn:dripcare:problem:{code}"
    assert (body["status"], body["code"]) == (status, code)
    assert body["title"] and body["detail"]
    assert body["instance"] == response.request.url.path
    return body


def test_every_kind_of_api_error_is_a_problem_document(client: TestClient, clinic: Clinic) -> None:
    first = clinic.post("/patients", {"email": "ana@example.com"}, headers={"Idempotency-Key": "k"})
    reused = clinic.post("/patients", {"email": "cy@example.com"}, headers={"Idempotency-Key": "k"})
    bad_key = {"Authorization": "Bearer dc_x_y"}

    assert first.status_code == 201
    assert_problem(client.get("/api/v1/enrollments"), 401, "missing_api_key")
    assert_problem(client.get("/api/v1/enrollments", headers=bad_key), 401, "invalid_api_key")
    assert_problem(clinic.get("/patients/4242"), 404, "not_found")
    assert_problem(clinic.get("/no-such-resource"), 404, "not_found")
    assert_problem(clinic.client.delete("/api/v1/patients"), 405, "method_not_allowed")
    assert "different request" in assert_problem(reused, 409, "idempotency_key_reused")["detail"]
    invalid = assert_problem(
        clinic.post("/enrollments", {**ENROLL, "treated_at": "x"}), 422, "invalid_input"
    )
    assert invalid["errors"][0]["loc"][:2] == ["body", "treated_at"]
    assert "treated_at" in invalid["detail"]
    taken = assert_problem(
        clinic.post("/patients", {"email": "ana@example.com"}), 422, "invalid_input"
    )
    assert "exists already" in taken["detail"]
    assert_problem(post_raw(clinic, "/patients", "{"), 422, "invalid_json")


def test_admin_pages_keep_their_html_error_pages(client: TestClient) -> None:
    admin = client.get("/admin/patients/abc")
    patient_link = client.get("/u/not-a-token/x")

    assert admin.headers["content-type"].startswith("text/html")
    assert patient_link.status_code == 404
    assert patient_link.headers["content-type"].startswith("text/html")


def test_every_operation_is_named_and_documents_its_problems(client: TestClient) -> None:
    spec = client.app.openapi()  # type: ignore[attr-defined]
    generated = {
        generate_unique_id(route)
        for route in client.app.routes
        if isinstance(route, APIRoute)  # type: ignore[attr-defined]
    }
    responses = spec["components"]["responses"]

    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            assert operation.get("operationId"), where
            assert operation["operationId"] not in generated, where
            if not path.startswith("/api/v1/") or path.endswith(("/healthz", "/readyz")):
                continue
            for status in ("400", "401", "413", "422", "429", "500", "503"):
                ref = operation["responses"][status]["$ref"]
                answer = responses[ref.rsplit("/", 1)[1]]
                assert list(answer["content"]) == ["application/problem+json"], where
    ids = [op["operationId"] for ops in spec["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    documented = {name for name in responses}
    assert {"Unauthorized", "Forbidden", "NotFound", "Conflict", "ContentTooLarge"} <= documented
    assert {"InvalidInput", "TooManyRequests"} <= documented


@pytest.mark.parametrize("written", ["true", "1.0", "+1", "1_0", " 1", "١"])
def test_an_id_in_the_url_is_digits_only(clinic: Clinic, written: str) -> None:
    patient = clinic.post("/patients", {"email": "ana@example.com"}).json()
    assert patient["id"] in (1, 10)  # "1" and "1_0" would find a patient under lax parsing

    for path in (f"/patients/{written}", f"/enrollments?patient_id={written}"):
        body = assert_problem(clinic.get(path), 422, "invalid_input")
        assert "an id is a whole number such as 42" in body["errors"][0]["msg"]


@pytest.mark.parametrize("patient", [True, "1", 1.0], ids=["true", "string", "float"])
def test_an_id_in_a_body_is_a_json_integer(clinic: Clinic, patient: object) -> None:
    created = clinic.post("/patients", {"email": "ana@example.com"}).json()
    assert created["id"] == 1

    response = clinic.post("/enrollments", {**ENROLL, "patient": patient})

    body = assert_problem(response, 422, "invalid_input")
    assert "an id is a whole number such as 42" in body["detail"]
    assert clinic.get("/enrollments").json()["data"] == []


def test_the_key_is_checked_before_the_body_is_read(client: TestClient, clinic: Clinic) -> None:
    big = oversized_bulk()

    headers = {"Content-Type": "application/json"}
    broken = client.post("/api/v1/patients", content=b"{", headers=headers)
    oversized = client.post("/api/v1/enrollments:bulk", content=in_chunks(big), headers=headers)

    assert_problem(broken, 401, "missing_api_key")
    assert_problem(oversized, 401, "missing_api_key")


def test_requests_without_a_live_key_are_limited_per_address(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(
        monkeypatch,
        tmp_path,
        DRIPCARE_DATABASE_URL=database,
        DRIPCARE_API_RATE_PER_SECOND="0.01",
        DRIPCARE_API_RATE_BURST="20",  # 2 a burst for an address without a live key
    )
    wrong = {"Authorization": "Bearer dc_x_y"}
    with TestClient(create_app()) as client:
        clinic = Clinic(client, "Busy", "care@busy.example")
        statuses = [client.get("/api/v1/enrollments", headers=wrong).status_code for _ in range(2)]
        limited = client.get("/api/v1/enrollments")
        keyed = clinic.get("/enrollments")
        other_address = TestClient(create_app(), client=("203.0.113.9", 50000))
        elsewhere = other_address.get("/api/v1/enrollments")

    assert statuses == [401, 401]
    assert_problem(limited, 429, "rate_limited")
    assert int(limited.headers["Retry-After"]) >= 1
    assert keyed.status_code == 200
    assert elsewhere.status_code == 401


def test_a_body_announced_over_the_limit_is_our_413_problem_on_the_api_only(
    clinic: Clinic, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    big = oversized_bulk()
    headers = {**clinic.headers, "Content-Type": "application/json"}

    announced = clinic.client.post("/api/v1/enrollments:bulk", content=big, headers=headers)
    stranger = clinic.client.post(
        "/api/v1/enrollments:bulk", content=big, headers={"Content-Type": "application/json"}
    )

    assert "larger than" in assert_problem(announced, 413, "body_too_large")["detail"]
    assert_problem(stranger, 401, "missing_api_key")  # the key first, as for any body
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in caplog.records if "body over" in r.getMessage()] == [
        "POST /api/v1/enrollments:bulk: body over 1000000 bytes refused"
    ]
    assert "POST /api/v1/enrollments:bulk 413" in caplog.text
    admin = clinic.client.post("/admin/sign-in", content=big, headers=headers)
    assert (admin.status_code, admin.text) == (413, "Content Too Large")  # as before


def test_a_body_announced_over_the_limit_of_a_page_is_a_413_in_the_log_not_an_error(
    clinic: Clinic, caplog: pytest.LogCaptureFixture
) -> None:
    """Starlette's limit answers it; its exception used to reach our log as a 500."""
    caplog.set_level(logging.INFO)
    big = b"a=" + b"x" * 1_100_000
    headers = {"Content-Type": "application/x-www-form-urlencoded"}

    admin = clinic.client.post("/admin/sign-in", content=big, headers=headers)

    assert admin.status_code == 413
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "POST /admin/sign-in 413" in caplog.text


def test_a_body_over_the_limit_is_a_logged_413_however_it_is_sent(
    clinic: Clinic, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    big = oversized_bulk()
    headers = {**clinic.headers, "Content-Type": "application/json"}

    chunked = clinic.client.post(
        "/api/v1/enrollments:bulk", content=in_chunks(big), headers=headers
    )
    lying = clinic.client.post(
        "/api/v1/enrollments:bulk", content=big, headers={**headers, "Content-Length": "10"}
    )

    for response in (chunked, lying):
        assert (
            "larger than 1000000 bytes" in assert_problem(response, 413, "body_too_large")["detail"]
        )
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    refused = [r.getMessage() for r in caplog.records if "body over" in r.getMessage()]
    assert len(refused) == 2
    assert "POST /api/v1/enrollments:bulk 413" in caplog.text
