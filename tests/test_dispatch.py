"""Claiming due messages fairly between clinics, and recovering expired leases, on both
databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select, update

from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.models import Enrollment, Message, MessageStatus, Patient, Step
from dripcare.outbox.dispatch import (
    RECORD_GRACE,
    Claim,
    TickResult,
    claim_due,
    claim_fair,
    dispatch_tick,
    due_clinics,
    recover_expired,
)
from dripcare.sending import delivery
from dripcare.sending.transports import transport_from_url
from tests.factories import make_clinic, make_enrollment
from tests.smtp_server import SMTPServer

LEASE = timedelta(minutes=5)


def due_messages(clinic_id: int, count: int, due_at: datetime) -> set[int]:
    """`count` due messages of one clinic, one per enrollment, inserted in bulk."""
    with session_scope() as session:
        patient = Patient(clinic_id=clinic_id, email=f"p{clinic_id}@example.com")
        session.add(patient)
        session.flush()
        step_id = session.scalars(
            select(Step.id).join(Step.campaign).where(Step.campaign.has(clinic_id=clinic_id))
        ).first()
        enrollments = session.scalars(
            insert(Enrollment).returning(Enrollment.id),
            [
                {
                    "clinic_id": clinic_id,
                    "patient_id": patient.id,
                    "campaign_id": session.get_one(Step, step_id).campaign_id,
                    "treatment": "microneedling",
                    "treated_at": due_at,
                    "timezone": "UTC",
                }
                for _ in range(count)
            ],
        ).all()
        ids = session.scalars(
            insert(Message).returning(Message.id),
            [
                {
                    "clinic_id": clinic_id,
                    "enrollment_id": enrollment,
                    "step_id": step_id,
                    "due_at": due_at,
                    "message_id": f"<{clinic_id}.{enrollment}@test>",
                }
                for enrollment in enrollments
            ],
        ).all()
        return set(ids)


def test_a_big_import_does_not_push_another_clinics_emails_out_of_the_first_tick(
    settings: Settings,
) -> None:
    # Given clinic A's import of 5,000 due emails, all older than clinic B's 10
    now = datetime.now(UTC)
    a, b = make_clinic(), make_clinic(name="Hillside", sender="care@hillside.example")
    due_messages(a, 5000, now - timedelta(hours=2))
    b_ids = due_messages(b, 10, now - timedelta(hours=1))
    claims: list[Claim] = []

    # When the dispatcher runs one tick with the default batch size and tick cap
    result = dispatch_tick(
        session_scope,
        claims.append,
        batch_size=settings.batch_size,
        max_per_tick=settings.max_per_tick,
        lease=LEASE,
    )

    # Then B's 10 are all in the first batch, beside A's oldest, and the tick is full
    assert b_ids <= set(claims[0].message_ids)
    assert len(claims[0].message_ids) == settings.batch_size
    assert result.claimed == settings.max_per_tick


def test_a_capped_tick_leaves_a_burst_in_the_database_so_the_next_tick_serves_other_clinics(
    settings: Settings,
) -> None:
    # Given clinic A's 09:00 burst of 2,000 due emails and a cap of 300 waiting for a worker
    now = datetime.now(UTC)
    a, b = make_clinic(), make_clinic(name="Hillside", sender="care@hillside.example")
    due_messages(a, 2000, now - timedelta(seconds=30))
    claims: list[Claim] = []

    def tick() -> TickResult:
        return dispatch_tick(
            session_scope,
            claims.append,
            batch_size=100,
            max_per_tick=5000,
            lease=LEASE,
            max_queued=300,
        )

    # When a tick runs, then another before any worker started a batch
    first, idle = tick(), tick()

    # Then the first claims only up to the cap (and says it is full: the task runs the next
    # tick at once) and the second nothing, without asking for another: the rest stays unclaimed
    assert (first.claimed, first.full) == (300, True)
    assert (idle.claimed, idle.full) == (0, False)
    # And once workers have started those batches, clinic B's emails due since then are all
    # claimed in the very next tick (the broker's queue holds at most 300 of A's before them)
    with session_scope() as session:
        session.execute(
            update(Message)
            .where(Message.status == MessageStatus.QUEUED)
            .values(status=MessageStatus.SENDING)
        )
    b_ids = due_messages(b, 10, now - timedelta(seconds=1))
    claims.clear()
    assert tick().claimed == 300
    assert b_ids <= set(claims[0].message_ids)


def test_due_clinics_are_those_with_a_scheduled_email_due_now(settings: Settings) -> None:
    now = datetime.now(UTC)
    due, later, done = make_clinic(), make_clinic(), make_clinic()
    due_messages(due, 2, now - timedelta(minutes=1))
    due_messages(later, 3, now + timedelta(hours=1))
    finished = due_messages(done, 2, now - timedelta(minutes=1))
    with session_scope() as session:
        session.execute(
            update(Message).where(Message.id.in_(finished)).values(status=MessageStatus.SENT)
        )

    with session_scope() as session:
        assert due_clinics(session) == [due]
        assert due_clinics(session, now + timedelta(hours=2)) == [due, later]


def test_a_fair_claim_splits_a_batch_and_rotates_between_clinics(settings: Settings) -> None:
    now = datetime.now(UTC)
    clinics = [make_clinic(), make_clinic(), make_clinic()]
    owned = {c: due_messages(c, 5, now - timedelta(minutes=5)) for c in clinics}

    with session_scope() as session:
        tick = due_clinics(session)
        assert tick == clinics
        first = claim_fair(session, tick, limit=4, lease=LEASE)
    with session_scope() as session:
        second = claim_fair(session, tick, limit=4, lease=LEASE)

    def per_clinic(claim: Claim | None) -> list[int]:
        assert claim is not None
        return [len(owned[c] & set(claim.message_ids)) for c in clinics]

    assert per_clinic(first) == [2, 1, 1]  # a share of 1 each, then the rest to the first
    assert per_clinic(second) == [1, 2, 1]  # the next batch starts after the last served
    assert tick == [clinics[2], clinics[0], clinics[1]]


def test_an_expired_sending_row_waits_for_its_worker_to_record_it_before_it_is_sent_again(
    settings: Settings,
) -> None:
    # Given two claims whose leases expired: one only queued, one already sending
    clinic = make_clinic()
    now = datetime.now(UTC)
    due_messages(clinic, 2, now - timedelta(minutes=1))
    with session_scope() as session:
        claim = claim_due(session, limit=2, lease=LEASE, now=now)
        assert claim is not None
        queued, sending = claim.message_ids
        session.get_one(Message, sending).status = MessageStatus.SENDING
    later = now + LEASE + timedelta(seconds=1)

    with session_scope() as session:
        assert recover_expired(session, now=later) == 2
        # the queued row never reached the server: due again at once, the claim forgotten
        row = session.get_one(Message, queued)
        assert (row.status, row.lease_token, row.due_at <= later) == ("scheduled", None, True)
        # the sending row may have: its worker can still record it under its token, and
        # nobody claims it before the grace is over
        row = session.get_one(Message, sending)
        assert (row.status, row.lease_token) == ("scheduled", claim.token)
        assert row.due_at == later + RECORD_GRACE
        assert claim_due(session, limit=2, lease=LEASE, now=later) is not None
    with session_scope() as session:
        assert session.get_one(Message, sending).status == MessageStatus.SCHEDULED
        regained = claim_due(session, limit=2, lease=LEASE, now=later + RECORD_GRACE)
        assert regained is not None and regained.message_ids == [sending]


@pytest.mark.usefixtures("daytime")  # conftest: a working morning
def test_a_worker_whose_lease_was_recovered_cannot_send_or_overwrite(
    settings: Settings, smtp_server: SMTPServer
) -> None:
    clinic = make_clinic()
    make_enrollment(settings, clinic, datetime.now(UTC) - timedelta(hours=3))
    with session_scope() as session:
        stale = claim_due(session, limit=10, lease=timedelta(seconds=1))
    assert stale is not None
    with session_scope() as session:
        assert recover_expired(session, now=datetime.now(UTC) + timedelta(seconds=5)) == 1
        fresh = claim_due(session, limit=10, lease=timedelta(minutes=5))
    assert fresh is not None

    late = delivery.send_batch(
        session_scope, stale.token, stale.message_ids, transport_from_url(smtp_server.url), settings
    )
    on_time = delivery.send_batch(
        session_scope, fresh.token, fresh.message_ids, transport_from_url(smtp_server.url), settings
    )

    assert (late.sent, on_time.sent) == (0, 1)
    assert len(smtp_server.recorder.messages) == 1
