"""A red flag holds the patient's reassurance emails until the clinic resumes or stops them,
and the clinic's alert quotes what the patient was shown."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest
import time_machine
from sqlalchemy import select, update

from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.models import CheckIn, Message, RedFlagState, Step, StopCause
from dripcare.outbox import checkins, red_flags
from dripcare.outbox.dispatch import claim_due
from dripcare.people import audit
from dripcare.sending import alerts
from dripcare.sending.transports import SMTPTransport
from tests.factories import DAYTIME, make_clinic, make_enrollment, send_due, step_message
from tests.smtp_server import SMTPServer

HELD = "red flag reported on 2026-11-25: waiting for the clinic"


@pytest.fixture(autouse=True)
def daytime() -> Iterator[None]:
    with time_machine.travel(DAYTIME, tick=True):
        yield


def report_red_flag(
    settings: Settings, codes: tuple[str, ...] = ("blisters",), safety_step: str = "", **clinic: str
) -> tuple[int, int]:
    """A patient treated yesterday ticks `codes` on the day-1 check-in; (check-in, enrollment)."""
    clinic_id = make_clinic(**clinic)
    enrollment = make_enrollment(settings, clinic_id, DAYTIME - timedelta(days=1, hours=2))
    with session_scope() as session:
        if safety_step:
            session.execute(update(Step).where(Step.key == safety_step).values(safety_only=True))
        day1 = step_message(session, enrollment, "day-1")
        check_in = checkins.record(session, day1, worried=True, codes=list(codes))
        return check_in.id, enrollment


def statuses(enrollment: int) -> dict[str, tuple[str, str]]:
    with session_scope() as session:
        rows = session.execute(
            select(Step.key, Message.status, Message.status_reason)
            .join(Message.step)
            .where(Message.enrollment_id == enrollment)
        )
        return {key: (status.value, reason) for key, status, reason in rows}


def resolve(check_in_id: int, outcome: str, settings: Settings, at: datetime) -> int:
    with time_machine.travel(at, tick=False), session_scope() as session:
        check_in = session.get(CheckIn, check_in_id)
        assert check_in is not None
        return red_flags.resolve(
            session, check_in, audit.Actor.cli(), outcome, "spoke to the patient", settings
        )


@pytest.mark.parametrize("codes", [("blisters",), ("airway",)], ids=["urgent", "emergency"])
def test_a_red_flag_holds_every_unsent_email_with_its_reason(
    settings: Settings, codes: tuple[str, ...]
) -> None:
    _, enrollment = report_red_flag(settings, codes)

    after = statuses(enrollment)

    assert after.pop("day-0")[0] == "skipped"  # already too late at enrollment
    assert set(after) == {"day-1", "day-3", "day-7", "day-14", "day-28", "day-42"}
    assert set(after.values()) == {("held", HELD)}


def test_held_emails_are_never_claimed_but_safety_only_steps_still_go(
    settings: Settings, smtp_server: SMTPServer
) -> None:
    _, enrollment = report_red_flag(settings, safety_step="day-14")
    with session_scope() as session:
        claim = claim_due(
            session, limit=100, lease=timedelta(minutes=5), now=DAYTIME + timedelta(days=60)
        )
        session.rollback()

    send_due(smtp_server, days_later=14)

    after = statuses(enrollment)
    with session_scope() as session:
        day14 = session.scalars(
            select(Message).join(Message.step).where(Step.key == "day-14")
        ).one()
        subject = day14.step.subject
    assert claim is not None and claim.message_ids == [day14.id]
    assert after["day-14"] == ("sent", "")
    assert [s for k, (s, _) in after.items() if k not in ("day-0", "day-14")] == ["held"] * 5
    assert [m["Subject"] for m in smtp_server.recorder.messages] == [subject]


def test_resuming_schedules_the_held_emails_again_and_skips_those_now_too_late(
    settings: Settings,
) -> None:
    check_in_id, enrollment = report_red_flag(settings)

    resumed = resolve(check_in_id, "resume", settings, DAYTIME + timedelta(days=2))

    after = statuses(enrollment)
    assert resumed == 6
    assert after["day-1"][0] == "skipped"  # its day has passed
    assert "too late to be useful after the red flag was resolved" in after["day-1"][1]
    assert {after[k] for k in ("day-3", "day-7", "day-14", "day-28", "day-42")} == {
        ("scheduled", "")
    }
    with session_scope() as session:
        check_in = session.get(CheckIn, check_in_id)
        assert check_in is not None
        assert (check_in.alert_state, check_in.outcome) == (RedFlagState.RESOLVED, "resume")
        assert check_in.resolution_note == "spoke to the patient"
        assert check_in.acknowledged_at is not None and check_in.resolved_by


def test_stopping_cancels_the_sequence_with_its_own_cause(settings: Settings) -> None:
    check_in_id, enrollment = report_red_flag(settings)

    stopped = resolve(check_in_id, "stop", settings, DAYTIME + timedelta(hours=1))

    with session_scope() as session:
        causes = set(
            session.scalars(select(Message.stop_cause).where(Message.enrollment_id == enrollment))
        )
    after = statuses(enrollment)
    assert after.pop("day-0")[0] == "skipped"
    assert stopped == 6 and causes == {StopCause.RED_FLAG, StopCause.LATE}
    assert {s for s, _ in after.values()} == {"cancelled"}
    assert all(r.startswith("stopped by the clinic after a red flag") for _, r in after.values())


def test_a_reschedule_moves_held_emails_but_keeps_them_held(settings: Settings) -> None:
    from dripcare.models import Enrollment
    from dripcare.outbox.enrollment_changes import reschedule

    _, enrollment_id = report_red_flag(settings)

    with session_scope() as session:
        enrollment = session.get(Enrollment, enrollment_id)
        assert enrollment is not None
        reschedule(session, enrollment, DAYTIME + timedelta(days=3), settings)

    after = statuses(enrollment_id)
    del after["day-0"]
    assert {s for s, _ in after.values()} == {"held"}


@pytest.mark.parametrize(
    ("codes", "shown"),
    [(("airway",), "Call 999 now"), (("rash",), "Call Riverside Skin Clinic now")],
    ids=["emergency", "urgent"],
)
def test_the_alert_quotes_what_the_patient_was_shown(
    settings: Settings,
    smtp_server: SMTPServer,
    live_server: str,
    codes: tuple[str, ...],
    shown: str,
) -> None:
    from dripcare.people.links import make_token

    _, enrollment = report_red_flag(settings, (), emergency_number="999")
    with session_scope() as session:
        day3 = step_message(session, enrollment, "day-3")
        token = make_token(settings, day3.id)
    page = httpx.post(
        f"{live_server}/c/{token}/worried", data={"symptom": list(codes)}, follow_redirects=True
    )
    transport = SMTPTransport("127.0.0.1", smtp_server.port)
    with httpx.Client(timeout=5) as http:
        alerts.deliver_due(session_scope, transport, http, settings=settings)

    (mail,) = smtp_server.recorder.messages
    body = mail.get_body(("plain",)).get_content()
    assert f"<h1>{shown}</h1>" in page.text
    assert f'The patient was shown: "{shown}".' in body
    assert f"{settings.base_url}/ack/" in body


def test_the_timeline_shows_held_emails_with_their_reason(settings: Settings) -> None:
    from click.testing import CliRunner

    from dripcare.cli import main

    _, enrollment = report_red_flag(settings)

    shown = CliRunner().invoke(main, ["timeline", str(enrollment)])

    assert shown.exit_code == 0, shown.output
    assert shown.output.count("held") >= 5 and HELD in shown.output
