"""Marking an enrollment (next session booked, one-off) over the API, the CLI and the admin,
and the send path honouring a mark made after an email was scheduled."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
import time_machine
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from dripcare.cli import main
from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.models import Campaign, Enrollment, Message, MessageStatus, Step, StopCause
from dripcare.web.app import create_app
from tests.factories import DAYTIME, make_clinic, make_enrollment, send_due
from tests.smtp_server import SMTPServer
from tests.test_api import Clinic

ENROLL = {
    "patient": {"email": "ana@example.com", "first_name": "Ana"},
    "treated_at": "2026-11-24T14:30:00-05:00",
}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with time_machine.travel(DAYTIME, tick=True), TestClient(create_app()) as test_client:
        yield test_client


def rebook(body: dict) -> dict:
    return next(m for m in body["messages"] if m["step"] == "day-42")


def test_api_marks_the_next_session_booked_and_unmarks_it(client: TestClient) -> None:
    clinic = Clinic(client, "Clinic A", "care@a.example")
    enrollment = clinic.post("/enrollments", ENROLL).json()

    marked = clinic.post(f"/enrollments/{enrollment['id']}/next-session")
    again = clinic.post(f"/enrollments/{enrollment['id']}/next-session")
    unmarked = client.delete(
        f"/api/v1/enrollments/{enrollment['id']}/next-session", headers=clinic.headers
    )

    assert marked.status_code == again.status_code == 200
    assert marked.json()["next_session_booked_at"] is not None
    assert rebook(marked.json())["status"] == "skipped"
    assert rebook(marked.json())["status_reason"] == "skipped: the next session is booked"
    assert {m["status"] for m in marked.json()["messages"] if m["step"] != "day-42"} == {
        "scheduled"
    }
    assert unmarked.json()["next_session_booked_at"] is None
    assert rebook(unmarked.json())["status"] == "scheduled"


def test_api_marking_another_clinics_enrollment_is_a_404_problem(client: TestClient) -> None:
    a = Clinic(client, "Clinic A", "care@a.example")
    b = Clinic(client, "Clinic B", "care@b.example")
    enrollment = a.post("/enrollments", ENROLL).json()

    response = b.post(f"/enrollments/{enrollment['id']}/one-off")

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


def test_api_refuses_a_campaign_requirement_with_a_problem(client: TestClient) -> None:
    clinic = Clinic(client, "Clinic A", "care@a.example")
    with session_scope() as session:  # the shipped microneedling campaign, made to require one
        session.execute(update(Campaign).values(requires={"peel_depth": ["superficial"]}))
        session.execute(update(Campaign).values(version=Campaign.version + 1))

    refused = clinic.post("/enrollments", ENROLL | {"treatment_attributes": {"peel_depth": "deep"}})
    accepted = clinic.post(
        "/enrollments", ENROLL | {"treatment_attributes": {"peel_depth": "superficial"}}
    )

    assert refused.status_code == 422
    assert "superficial peels only" in refused.json()["detail"]
    assert accepted.status_code == 201
    assert accepted.json()["treatment_attributes"] == {"peel_depth": "superficial"}


def test_cli_marks_and_unmarks_an_enrollment(settings: Settings) -> None:
    enrollment = make_enrollment(settings, make_clinic(), DAYTIME - timedelta(days=1), now=DAYTIME)
    runner = CliRunner()

    with time_machine.travel(DAYTIME, tick=True):
        marked = runner.invoke(
            main, ["enrollment", "next-session-booked", str(enrollment), "--json"]
        )
        undone = runner.invoke(
            main, ["enrollment", "next-session-booked", str(enrollment), "--undo", "--json"]
        )
        missing = runner.invoke(main, ["enrollment", "one-off", "999999"])

    assert marked.exit_code == 0, marked.output
    assert json.loads(marked.stdout)["skipped"] == 1
    assert json.loads(undone.stdout)["put back"] == 1
    assert missing.exit_code != 0 and "no enrollment with id 999999" in missing.output


def test_a_mark_made_after_scheduling_still_stops_the_email_at_send_time(
    settings: Settings, smtp_server: SMTPServer
) -> None:
    enrollment = make_enrollment(settings, make_clinic(), DAYTIME - timedelta(hours=3), now=DAYTIME)
    with session_scope() as session:  # as if marked between the claim and the send
        session.execute(
            update(Enrollment).values(next_session_booked_at=DAYTIME + timedelta(days=1))
        )
        session.execute(
            update(Message)
            .where(Message.enrollment_id == enrollment)
            .values(due_at=DAYTIME - timedelta(hours=1))
        )

    with time_machine.travel(DAYTIME):
        send_due(smtp_server)

    with session_scope() as session:
        row = session.scalars(
            select(Message)
            .join(Message.step)
            .where(Step.key == "day-42", Message.enrollment_id == enrollment)
        ).one()
        assert (row.status, row.stop_cause) == (MessageStatus.SKIPPED, StopCause.CONDITION)
        assert row.status_reason == "skipped: the next session is booked"
        sent = session.scalars(select(Message).where(Message.status == MessageStatus.SENT)).all()
    assert len(sent) >= 1  # the other emails still went
