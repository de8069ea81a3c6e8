"""Enrolling many at once gives every request the answer `enroll` gives it, in a few statements."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC
from typing import Any

import pytest
from sqlalchemy import event, select

from dripcare.config import Settings
from dripcare.db import get_engine, session_scope
from dripcare.errors import UserError
from dripcare.models import Enrollment, Message, Patient, Step
from dripcare.outbox.bulk_enroll import Enrolled, Schedules, enroll_many
from dripcare.outbox.enrollment_input import EnrollRequest
from dripcare.outbox.enrollments import enroll
from tests.factories import DAYTIME as NOW
from tests.factories import make_clinic


def requests(clinic_id: int) -> list[EnrollRequest]:
    """Every case enroll distinguishes, each after the one it depends on."""

    def req(email: str, treated_at: str, **fields: Any) -> EnrollRequest:
        return EnrollRequest(clinic_id=clinic_id, email=email, treated_at=treated_at, **fields)

    return [
        req("ana@example.com", "2026-11-24T14:30", external_id="a1", first_name="Ana"),
        req("Bo@Example.com", "2026-11-20", timezone="Europe/London"),
        req("not-an-address", "2026-11-24"),
        req("cy@example.com", "2026-11-24", timezone="Mars/Base"),
        req("dee@example.com", "24/11/2026"),
        req("eve@example.com", "2026-11-24", campaign="no-such-campaign"),
        req("fay@example.com", "2026-09-01T10:00"),  # most steps too late: skipped
        req("gus@example.com", "2026-11-24", external_id="dup"),
        req("hal@example.com", "2026-11-23", external_id="dup"),  # same id: existing
        req("ivy@example.com", "2026-11-22"),
        req("ivy@example.com", "2026-11-22"),  # twice in one batch: existing
        req("ivy@example.com", "2026-11-24"),  # a newer treatment supersedes
        req("known@example.com", "2026-11-21", external_id="k1"),  # enrolled before: existing
        req("known@example.com", "2026-11-21T12:00"),  # same time, no id: existing
        req("known@example.com", "2026-11-24", first_name="Kim"),  # supersedes, renames
        req("pat@example.com", "2026-11-24", phone="+44 20 7946 0958"),
        req("peel@example.com", "2026-11-30T10:00", campaign="chemical-peel",
            attributes={"peel_depth": "superficial"}),  # pre-care missed: the late-booking email
        req("deep@example.com", "2026-12-10", campaign="chemical-peel",
            attributes={"peel_depth": "medium"}),  # refused: superficial peels only
        req("nod@example.com", "2026-12-10", campaign="chemical-peel"),  # refused: no depth
    ]  # fmt: skip


def snapshot(clinic_id: int, outcomes: list[Any]) -> dict[str, Any]:
    """What a patient and the send path would see, without ids."""
    with session_scope() as session:
        patients = session.execute(
            select(Patient.email, Patient.first_name, Patient.timezone)
            .where(Patient.clinic_id == clinic_id)
            .order_by(Patient.email)
        ).all()
        sequences = session.execute(
            select(
                Patient.email,
                Enrollment.treated_at,
                Enrollment.status,
                Enrollment.timezone,
                Step.key,
                Message.due_at,
                Message.status,
                Message.status_reason,
            )
            .join(Enrollment, Enrollment.patient_id == Patient.id)
            .join(Message, Message.enrollment_id == Enrollment.id)
            .join(Step, Step.id == Message.step_id)
            .where(Patient.clinic_id == clinic_id)
            .order_by(Patient.email, Enrollment.treated_at, Message.due_at)
        ).all()
    return {
        "outcomes": outcomes,
        "patients": [tuple(p) for p in patients],
        "messages": [(*row[:7], row[7].split(" ")[0]) for row in sequences],
    }


def one_by_one(settings: Settings, clinic_id: int) -> list[Any]:
    outcomes: list[Any] = []
    for request in requests(clinic_id):
        with session_scope() as session:
            try:
                result = enroll(session, request, settings, NOW)
            except UserError as exc:
                outcomes.append(str(exc).replace(f"clinic {clinic_id} ", "clinic C "))
                continue
            outcomes.append(result.created)
    return outcomes


def all_at_once(settings: Settings, clinic_id: int) -> list[Any]:
    with session_scope() as session:
        outcomes = enroll_many(session, requests(clinic_id), settings, NOW)
    return [
        str(o).replace(f"clinic {clinic_id} ", "clinic C ")
        if isinstance(o, UserError)
        else o.created
        for o in outcomes
    ]


def enroll_known_patient(settings: Settings, clinic_id: int) -> None:
    with session_scope() as session:
        request = EnrollRequest(
            clinic_id=clinic_id, email="known@example.com", treated_at="2026-11-21T12:00"
        )
        request.external_id = "k1"
        enroll(session, request, settings, NOW)


def test_a_batch_gets_the_same_answers_and_rows_as_enrolling_one_at_a_time(
    settings: Settings,
) -> None:
    # Given two clinics alike, each with one patient enrolled before
    single, bulk = make_clinic(), make_clinic()
    for clinic_id in (single, bulk):
        enroll_known_patient(settings, clinic_id)

    # When the same requests go in one at a time, and all at once
    expected = snapshot(single, one_by_one(settings, single))
    got = snapshot(bulk, all_at_once(settings, bulk))

    # Then every answer, patient, sequence and email is the same
    assert got["outcomes"] == expected["outcomes"]
    assert got["patients"] == expected["patients"]
    assert got["messages"] == expected["messages"]
    assert expected["outcomes"][:2] == [True, True]
    assert "invalid email address" in expected["outcomes"][2]
    assert expected["outcomes"][8] is False and expected["outcomes"][10] is False


def test_running_the_same_batch_again_writes_nothing(settings: Settings) -> None:
    clinic_id = make_clinic()
    enroll_known_patient(settings, clinic_id)
    # without the two newer treatments: each would supersede the other again, as enroll does
    batch = [r for n, r in enumerate(requests(clinic_id)) if n not in (11, 14)]
    with session_scope() as session:
        first = enroll_many(session, batch, settings, NOW)
    before = snapshot(clinic_id, [])

    with session_scope() as session:
        again = enroll_many(session, batch, settings, NOW)

    assert (
        len([o for o in first if not isinstance(o, UserError) and o.created]) == 7
    )  # and pat, peel
    assert not [o for o in again if not isinstance(o, UserError) and o.created]
    assert snapshot(clinic_id, []) == before


@pytest.fixture
def statements(settings: Settings) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def test_new_patients_cost_a_few_statements_whatever_their_number(
    settings: Settings, statements: list[str]
) -> None:
    clinic_id = make_clinic()
    batch = [
        EnrollRequest(
            clinic_id=clinic_id,
            email=f"p{n}@example.com",
            treated_at=f"2026-11-{10 + n % 10}",
            timezone=["Europe/London", "Asia/Tokyo", ""][n % 3],
            external_id=f"e{n}" if n % 2 else None,
        )
        for n in range(300)
    ]
    statements.clear()

    with session_scope() as session:
        outcomes = enroll_many(session, batch, settings, NOW)

    assert all(not isinstance(o, UserError) and o.created for o in outcomes)
    # two of them find the clinic's campaign for requests naming none, once per chunk
    assert len(statements) <= 14, "\n".join(s[:90] for s in statements)
    with session_scope() as session:
        assert len(session.scalars(select(Message.id)).all()) == 300 * 7


def test_the_answered_sequences_are_the_rows_written(settings: Settings) -> None:
    # Given new patients in several zones (PostgreSQL writes their outbox rows by COPY)
    clinic_id = make_clinic()
    batch = [
        EnrollRequest(
            clinic_id=clinic_id,
            email=f"p{n}@example.com",
            treated_at=f"2026-11-{20 + n % 5}T10:00",
            timezone=["Europe/London", "Asia/Tokyo", ""][n % 3],
        )
        for n in range(30)
    ]

    # When they are enrolled with their sequences answered
    with session_scope() as session:
        outcomes = enroll_many(session, batch, settings, NOW)

    # Then each answered message is the row stored, under a Message-ID of its own
    with session_scope() as session:
        stored = {
            row.id: row
            for row in session.execute(
                select(Message.id, Message.enrollment_id, Message.due_at, Message.status)
                .add_columns(Message.message_id, Step.key)
                .join(Step, Step.id == Message.step_id)
            )
        }
    answered = [
        (o.enrollment_id, m) for o in outcomes if isinstance(o, Enrolled) for m in o.messages or []
    ]
    assert len(answered) == len(stored) == 30 * 7
    for enrollment_id, message in answered:
        row = stored[message.id]
        assert (row.enrollment_id, row.key) == (enrollment_id, message.step_key)
        assert (row.due_at.replace(tzinfo=UTC), row.status) == (message.due_at, message.status)
    message_ids = [row.message_id for row in stored.values()]
    assert len(set(message_ids)) == len(message_ids)
    assert all(re.fullmatch(r"<[0-9a-f]{32}@riverside\.example>", m) for m in message_ids)


def test_chunks_sharing_their_schedules_write_what_separate_chunks_write(
    settings: Settings,
) -> None:
    # Given two clinics alike, and a batch split in two chunks
    shared, separate = make_clinic(), make_clinic()

    def chunks(clinic_id: int) -> list[list[EnrollRequest]]:
        batch = [
            EnrollRequest(
                clinic_id=clinic_id,
                email=f"p{n}@example.com",
                treated_at=f"2026-11-{20 + n % 3}",
                timezone=["Europe/London", ""][n % 2],
            )
            for n in range(40)
        ]
        return [batch[:20], batch[20:]]

    # When one clinic's chunks share a schedule cache and the other's do not
    schedules = Schedules(NOW)
    for chunk in chunks(shared):
        with session_scope() as session:
            enroll_many(session, chunk, settings, NOW, schedules=schedules)
    for chunk in chunks(separate):
        with session_scope() as session:
            enroll_many(session, chunk, settings, NOW)

    # Then both wrote the same sequences, the second chunk's from the cache
    assert snapshot(shared, []) == snapshot(separate, [])
    assert len(schedules.placed) == 6  # 3 treatment days x 2 zones
