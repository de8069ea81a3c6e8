"""The clinic REST API as a clinic's developer uses it: the app at a fixed daytime, and a
clinic that sends its key. Shared by the API tests (test_api.py, test_api_errors.py, ...)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import time_machine
from fastapi.testclient import TestClient

from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.people.apikeys import create_key
from dripcare.web.app import create_app
from tests.factories import DAYTIME as NOW
from tests.factories import make_clinic


def new_key(clinic_id: int) -> str:
    with session_scope() as session:
        return create_key(session, clinic_id, "test").plaintext


class Clinic:
    """A clinic's view of the API: a client that sends its key."""

    def __init__(self, client: TestClient, name: str, sender: str) -> None:
        self.id = make_clinic(name=name, sender=sender)
        self.key = new_key(self.id)
        self.client = client
        self.headers = {"Authorization": f"Bearer {self.key}"}

    def get(self, path: str, **kw: object) -> httpx.Response:
        return self.client.get(f"/api/v1{path}", headers=self.headers, **kw)  # type: ignore[arg-type]

    def post(self, path: str, json: object = None, **kw: object) -> httpx.Response:
        headers = {**self.headers, **kw.pop("headers", {})}  # type: ignore[dict-item]
        return self.client.post(f"/api/v1{path}", json=json, headers=headers, **kw)  # type: ignore[arg-type]

    def patch(self, path: str, json: object) -> httpx.Response:
        return self.client.patch(f"/api/v1{path}", json=json, headers=self.headers)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The app at NOW (the clock ticking from there); a test module may define its own."""
    with time_machine.travel(NOW, tick=True), TestClient(create_app()) as test_client:
        yield test_client


@pytest.fixture
def clinic_a(client: TestClient) -> Clinic:
    return Clinic(client, "Clinic A", "care@a.example")
