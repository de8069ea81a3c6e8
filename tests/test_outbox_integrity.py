"""What the outbox's dropped foreign keys guarded still holds (migration f6a7b8c9d0e1).

`messages.clinic_id` and `messages.step_id` have no foreign keys: each outbox row's clinic is
its enrollment's, and its step one of the enrollment's campaign's, written so by code. Every
path that writes outbox rows is run here, for two clinics at once, and the rows are checked
against their enrollments: one enrolled, many in bulk, a CSV import, a step added by a publish.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import func, select

from dripcare.config import Settings
from dripcare.content import campaign_editing as edit
from dripcare.content import campaign_versions as versions
from dripcare.content.campaigns import find_campaign
from dripcare.db import session_scope
from dripcare.models import Enrollment, Message, Step
from dripcare.outbox.bulk_enroll import enroll_many
from dripcare.outbox.csv_import import import_file
from dripcare.outbox.enrollment_input import EnrollRequest
from tests.factories import DAYTIME as NOW
from tests.factories import make_clinic, make_enrollment


@pytest.fixture(autouse=True)
def daytime() -> Iterator[None]:
    with time_machine.travel(NOW, tick=True):
        yield


def misplaced_rows() -> list[tuple[int, str]]:
    """Outbox rows whose clinic is not their enrollment's, or whose step is missing or belongs
    to another campaign than their enrollment's."""
    query = (
        select(Message.id, Message.clinic_id, Enrollment.clinic_id, Step.id, Step.campaign_id)
        .join(Enrollment, Enrollment.id == Message.enrollment_id)
        .outerjoin(Step, Step.id == Message.step_id)
        .where(
            (Message.clinic_id != Enrollment.clinic_id)
            | Step.id.is_(None)
            | (Step.campaign_id != Enrollment.campaign_id)
        )
    )
    with session_scope() as session:
        return [(row[0], str(row)) for row in session.execute(query)]


def outbox_size() -> int:
    with session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(Message)) or 0)


def bulk(settings: Settings, clinic: int, tag: str) -> None:
    requests = [
        EnrollRequest(clinic, f"{tag}{i}@example.com", "2026-11-25T09:00", external_id=f"{tag}{i}")
        for i in range(5)
    ]
    with session_scope() as session:
        enroll_many(session, requests, settings, None)


def csv_file(tmp_path: Path, tag: str) -> Path:
    path = tmp_path / f"{tag}.csv"
    lines = [f"{tag}{i}@example.com,Pat,Csv,2026-11-25T09:00,,microneedling" for i in range(5)]
    path.write_text("email,first_name,last_name,treated_at,timezone,treatment\n" + "\n".join(lines))
    return path


def add_step(clinic: int) -> int:
    with session_scope() as session:
        campaign = find_campaign(session, clinic, "microneedling")
        spec = edit.add_step(
            versions.spec_of(versions.working_version(session, campaign)),
            "day-2",
            offset_days=2,
            subject="Day 2",
            send_time="09:00",
        )
        draft = versions.save_draft(session, campaign, spec, author="ana@clinic")
        return versions.publish(session, campaign, draft.number, author="ana@clinic").follow.added


def test_every_path_that_writes_outbox_rows_keeps_them_on_their_enrollment(
    settings: Settings, tmp_path: Path
) -> None:
    clinics = [make_clinic(), make_clinic(name="Harbour", sender="care@harbour.example")]
    for n, clinic in enumerate(clinics):
        make_enrollment(settings, clinic, NOW - timedelta(hours=1), email=f"one{n}@example.com")
        bulk(settings, clinic, f"bulk{n}-")
        report = import_file(csv_file(tmp_path, f"csv{n}-"), clinic, settings)
        assert (report.created, report.errors) == (5, [])
    before = outbox_size()

    added = [add_step(clinic) for clinic in clinics]

    assert all(added) and outbox_size() == before + sum(added)
    assert before >= 2 * 11 * 7
    assert misplaced_rows() == []
