"""/api/v1/red-flags: a clinic's own systems list, acknowledge and resolve red flags, over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.models import AuditEvent, Message, MessageStatus
from dripcare.people.apikeys import create_key
from dripcare.web.app import create_app
from tests.admin_fixtures import ClinicWithHistory


class Api:
    """One clinic's key, named as the clinic's booking system would be."""

    def __init__(self, client: TestClient, clinic_id: int, name: str) -> None:
        with session_scope() as session:
            key = create_key(session, clinic_id, name).plaintext
        self.client, self.headers = client, {"Authorization": f"Bearer {key}"}

    def get(self, path: str) -> httpx.Response:
        return self.client.get(f"/api/v1/red-flags{path}", headers=self.headers)

    def post(self, path: str, body: object = None) -> httpx.Response:
        return self.client.post(f"/api/v1/red-flags{path}", json=body, headers=self.headers)


@pytest.fixture
def client(settings: Settings, admin_now: datetime) -> Iterator[TestClient]:
    with TestClient(create_app()) as test_client:
        yield test_client


def status_of(message_id: int) -> MessageStatus:
    with session_scope() as session:
        message = session.get(Message, message_id)
        assert message is not None
        return message.status


def test_list_acknowledge_then_resume_records_the_keys_name_and_puts_emails_back(
    client: TestClient, a: ClinicWithHistory
) -> None:
    api = Api(client, a.clinic_id, "front-desk system")

    listed = api.get("").json()["data"]
    flag_id = listed[0]["id"]
    held = status_of(a.upcoming_id)
    acked = api.post(f"/{flag_id}/acknowledge")
    again = api.post(f"/{flag_id}/acknowledge")
    resolved = api.post(f"/{flag_id}/resolve", {"outcome": "resume", "note": "called; fine"})
    after = api.get("").json()["data"]

    assert [(f["state"], f["patient_id"], f["answers"]) for f in listed] == [
        ("open", a.patient_id, ["eye"])
    ]
    assert held == MessageStatus.HELD
    assert acked.status_code == 200 and acked.json()["state"] == "acknowledged"
    assert acked.json()["acknowledged_by"] == "front-desk system"
    assert again.json()["acknowledged_at"] == acked.json()["acknowledged_at"]
    body = resolved.json()
    assert (body["state"], body["outcome"], body["note"]) == ("resolved", "resume", "called; fine")
    assert body["resolved_by"] == "front-desk system"
    assert status_of(a.upcoming_id) == MessageStatus.SCHEDULED
    assert after == []
    with session_scope() as session:
        actors = set(session.execute(select(AuditEvent.action, AuditEvent.actor)).all())
    assert ("red-flag.resolve", "front-desk system") in actors


def test_stop_cancels_the_held_emails_and_a_second_resolve_is_a_409_problem(
    client: TestClient, a: ClinicWithHistory
) -> None:
    api = Api(client, a.clinic_id, "")
    (flag,) = api.get("").json()["data"]

    stopped = api.post(f"/{flag['id']}/resolve", {"outcome": "stop"})
    twice = api.post(f"/{flag['id']}/resolve", {"outcome": "resume"})
    one = api.get(f"/{flag['id']}")

    assert stopped.json()["outcome"] == "stop"
    assert stopped.json()["resolved_by"].startswith("API key ")
    assert status_of(a.upcoming_id) == MessageStatus.CANCELLED
    assert twice.status_code == 409
    assert twice.headers["content-type"].startswith("application/problem+json")
    assert twice.json()["code"] == "conflict" and "already resolved" in twice.json()["detail"]
    assert one.status_code == 200 and one.json()["state"] == "resolved"


def test_a_bad_outcome_or_an_unknown_field_is_a_422_and_changes_nothing(
    client: TestClient, a: ClinicWithHistory
) -> None:
    api = Api(client, a.clinic_id, "x")
    (flag,) = api.get("").json()["data"]

    wrong = api.post(f"/{flag['id']}/resolve", {"outcome": "maybe"})
    extra = api.post(f"/{flag['id']}/resolve", {"outcome": "stop", "by": "me"})

    assert (wrong.status_code, wrong.json()["code"]) == (422, "invalid_input")
    assert extra.status_code == 422
    assert api.get(f"/{flag['id']}").json()["state"] == "open"
    assert status_of(a.upcoming_id) == MessageStatus.HELD


def test_another_clinics_key_gets_404_and_sees_none_of_them(
    client: TestClient, a: ClinicWithHistory, b: ClinicWithHistory
) -> None:
    api_a, api_b = Api(client, a.clinic_id, "a"), Api(client, b.clinic_id, "b")
    flag_a = api_a.get("").json()["data"][0]["id"]

    seen_by_b = [f["id"] for f in api_b.get("").json()["data"]]
    ack = api_b.post(f"/{flag_a}/acknowledge")
    resolve = api_b.post(f"/{flag_a}/resolve", {"outcome": "stop"})

    assert flag_a not in seen_by_b
    assert (ack.status_code, ack.json()["code"]) == (404, "not_found")
    assert resolve.status_code == 404
    assert api_a.get(f"/{flag_a}").json()["state"] == "open"
    assert status_of(a.upcoming_id) == MessageStatus.HELD
