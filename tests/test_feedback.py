"""feedback.apply: what a bounce, delay, complaint or delivery report does to a patient."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.models import DeliveryAttempt, Enrollment, Message, MessageStatus, Suppression
from dripcare.sending import verp
from dripcare.sending.feedback import Applied, FeedbackEvent, FeedbackKind, about_recipient, apply
from tests.factories import DAYTIME, make_clinic, make_enrollment

pytestmark = pytest.mark.usefixtures("daytime")  # conftest: a working morning


def first_message(enrollment_id: int) -> Message:
    with session_scope() as session:
        return session.scalars(
            select(Message).where(Message.enrollment_id == enrollment_id).order_by(Message.due_at)
        ).first()  # type: ignore[return-value]


def statuses(enrollment_id: int) -> set[MessageStatus]:
    with session_scope() as session:
        return set(
            session.scalars(select(Message.status).where(Message.enrollment_id == enrollment_id))
        )


def applied(event: FeedbackEvent, settings: Settings) -> Applied:
    with session_scope() as session:
        return apply(session, event, settings)


@pytest.fixture
def two_patients(settings: Settings) -> tuple[int, int]:
    clinic = make_clinic()
    treated = DAYTIME - timedelta(hours=3)
    pat = make_enrollment(settings, clinic, treated, email="pat@example.com")
    sam = make_enrollment(settings, clinic, treated, email="sam@example.com")
    return pat, sam


def test_a_permanent_recipient_bounce_suppresses_and_stops_only_that_patient(
    settings: Settings, two_patients: tuple[int, int]
) -> None:
    pat, sam = two_patients
    message = first_message(pat)
    event = FeedbackEvent(
        FeedbackKind.BOUNCE,
        "dsn",
        recipient="pat@example.com",
        permanent=True,
        status="5.1.1",
        diagnostic="550 5.1.1 <pat@example.com>: user unknown",
        message_id=message.message_id.strip("<>"),
    )

    done = applied(event, settings)

    assert done.found and done.suppressed and done.cancelled > 0 and not done.replay
    with session_scope() as session:
        listed = session.execute(select(Suppression.email, Suppression.source)).all()
        reason = session.scalar(select(Suppression.reason))
        history = session.scalars(
            select(DeliveryAttempt.outcome).where(DeliveryAttempt.message_pk == message.id)
        ).all()
    assert listed == [("pat@example.com", "bounce")]
    assert reason is not None and "5.1.1 <pat@example.com>: user unknown" in reason
    assert history == ["bounce"]
    assert statuses(pat) == {MessageStatus.CANCELLED}
    assert MessageStatus.CANCELLED not in statuses(sam)
    with session_scope() as session:  # the remote's words, which may quote the address, stay off
        reasons = set(session.scalars(select(Message.status_reason).where(Message.id > 0)))
    assert reasons >= {"address bounced"} and not any("@" in r for r in reasons)


def test_a_replayed_report_changes_nothing_the_second_time(
    settings: Settings, two_patients: tuple[int, int]
) -> None:
    pat, _ = two_patients
    message = first_message(pat)
    event = FeedbackEvent(
        FeedbackKind.COMPLAINT, "ses", message_id=message.message_id, provider_event_id="ev-1"
    )

    first, again = applied(event, settings), applied(event, settings)

    assert first.suppressed and not first.replay
    assert again == Applied(found=True, message_pk=message.id, replay=True)
    with session_scope() as session:
        assert session.scalars(select(Suppression.source)).all() == ["complaint"]
        assert len(session.scalars(select(DeliveryAttempt.id)).all()) == 1


def test_delays_policy_refusals_and_full_mailboxes_are_only_recorded(
    settings: Settings, two_patients: tuple[int, int]
) -> None:
    pat, _ = two_patients
    token = verp.make_token(settings, first_message(pat).id)
    events = [
        FeedbackEvent(FeedbackKind.DELAY, "dsn", status="4.4.7", verp_token=token),
        FeedbackEvent(FeedbackKind.BOUNCE, "dsn", status="4.2.2", verp_token=token),
        FeedbackEvent(FeedbackKind.BOUNCE, "dsn", permanent=True, status="5.7.1", verp_token=token),
        FeedbackEvent(FeedbackKind.BOUNCE, "dsn", permanent=True, status="5.2.2", verp_token=token),
        FeedbackEvent(FeedbackKind.DELIVERED, "postmark", verp_token=token.upper()),
    ]

    results = [applied(event, settings) for event in events]

    assert all(r.found and not r.suppressed and not r.replay for r in results)
    with session_scope() as session:
        assert session.scalar(select(Suppression.id)) is None
        outcomes = session.scalars(select(DeliveryAttempt.outcome)).all()
    assert sorted(outcomes) == ["bounce", "bounce", "bounce", "delay", "delivered"]
    assert MessageStatus.CANCELLED not in statuses(pat)


def test_reports_about_unknown_or_forged_messages_are_ignored(
    settings: Settings, two_patients: tuple[int, int]
) -> None:
    pat, _ = two_patients
    real = first_message(pat).id
    forged = verp.make_token(settings, real)[:-1] + "a"
    events = [
        FeedbackEvent(FeedbackKind.COMPLAINT, "arf", verp_token=forged),
        FeedbackEvent(FeedbackKind.COMPLAINT, "arf", message_id="<nope@example.com>"),
        FeedbackEvent(FeedbackKind.COMPLAINT, "arf"),
    ]

    results = [applied(event, settings) for event in events]

    assert results == [Applied(found=False)] * 3
    with session_scope() as session:
        assert session.scalar(select(Suppression.id)) is None
        assert session.scalar(select(Enrollment.id).limit(1)) is not None


def test_a_sent_email_that_bounces_for_a_policy_reason_is_failed_and_logged_without_the_address(
    settings: Settings, two_patients: tuple[int, int], caplog: pytest.LogCaptureFixture
) -> None:
    pat, _ = two_patients
    message = first_message(pat)
    with session_scope() as session:
        session.execute(
            update(Message).where(Message.id == message.id).values(status=MessageStatus.SENT)
        )
    event = FeedbackEvent(
        FeedbackKind.BOUNCE,
        "dsn",
        recipient="pat@example.com",
        permanent=True,
        status="5.7.26",
        diagnostic="550 5.7.26 Unauthenticated email is not accepted due to DMARC policy",
        message_id=message.message_id,
    )

    done = applied(event, settings)

    assert done.found and not done.suppressed
    with session_scope() as session:
        failed = session.get(Message, message.id)
        assert failed is not None
        assert (failed.status, failed.status_reason) == (
            MessageStatus.FAILED,
            "bounced after it was sent (5.7.26)",
        )
    assert "check the sending setup" in caplog.text and "@" not in caplog.text
    assert MessageStatus.SCHEDULED in statuses(pat)


@pytest.mark.parametrize(
    ("status", "blames_the_address"),
    [
        ("5.1.1", True),
        ("5.1.10", True),
        ("5.2.1", True),
        ("", True),  # a hard bounce without a code: the provider's word
        ("5.1.8", False),  # our sender's system, as during sending (smtp_replies)
        ("5.1.7", False),
        ("5.2.2", False),
        ("5.7.26", False),
        ("4.1.1", False),
    ],
)
def test_a_report_blames_the_address_by_the_rule_sending_uses(
    status: str, blames_the_address: bool
) -> None:
    assert about_recipient(status) is blames_the_address
