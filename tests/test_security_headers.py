"""Patient pages carry the admin's protections plus no-referrer; /healthz hides its reasons."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from dripcare.config import Settings, get_settings
from dripcare.web.app import create_app
from tests.api_fixtures import new_key
from tests.conftest import free_port
from tests.factories import make_clinic


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app()) as test_client:
        yield test_client


@pytest.mark.parametrize("path", ["/u/forged", "/p/forged", "/c/forged/ok", "/c/forged/worried"])
def test_patient_pages_send_security_headers_and_no_referrer(client: TestClient, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 404
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


def test_other_paths_starting_with_the_same_letter_are_not_patient_pages(
    client: TestClient,
) -> None:
    assert "referrer-policy" not in client.get("/unknown").headers


@pytest.fixture
def broker_down(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("DRIPCARE_BROKER_URL", f"redis://127.0.0.1:{free_port()}/0")
    monkeypatch.setenv("DRIPCARE_METRICS_TOKEN", "m" * 40)
    get_settings.cache_clear()
    return get_settings()


@pytest.mark.slow  # each probe waits on a dead broker
def test_healthz_says_only_error_to_strangers(broker_down: Settings, client: TestClient) -> None:
    for path in ("/healthz", "/readyz"):
        response = client.get(path)
        assert response.status_code == 503
        assert response.json() == {"status": "error", "database": "ok", "broker": "error"}


@pytest.mark.slow  # each probe waits on a dead broker
def test_healthz_names_the_reason_with_an_api_key_or_the_metrics_token(
    broker_down: Settings, client: TestClient
) -> None:
    key = new_key(make_clinic())
    for token in (key, "m" * 40):
        response = client.get("/healthz", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 503
        assert response.json()["broker"].startswith("error: ")
    wrong = client.get("/healthz", headers={"Authorization": "Bearer wrong"})
    assert wrong.json()["broker"] == "error"
