"""`dripcare inbound` with bounce and complaint reports: the round trip from a real SMTP send
with a VERP envelope sender to a suppressed patient, through the CLI as the mail server runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.models import Enrollment, Message, MessageStatus, Patient, Suppression
from tests.factories import DAYTIME, make_clinic, make_enrollment, send_due, unsubscribe_targets
from tests.report_samples import report_sample
from tests.smtp_server import SMTPServer

pytestmark = pytest.mark.usefixtures("daytime")  # conftest: a working morning


def sent_to_two_patients(settings: Settings, smtp_server: SMTPServer) -> dict[str, Any]:
    """Pat and Sam get their day-0 email for real; returns Pat's Message-ID and MAIL FROM."""
    clinic = make_clinic()
    for address in ("pat@example.com", "sam@example.com"):
        make_enrollment(settings, clinic, DAYTIME - timedelta(hours=3), email=address)
    send_due(smtp_server)
    recorder = smtp_server.recorder
    [index] = [i for i, m in enumerate(recorder.messages) if m["To"] == "pat@example.com"]
    return {"message_id": recorder.messages[index]["Message-ID"], "verp": recorder.senders[index]}


def inbound(raw: bytes, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "dripcare.cli", "inbound", "--json", *args],
        input=raw,
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def statuses(address: str) -> set[MessageStatus]:
    with session_scope() as session:
        return set(
            session.scalars(
                select(Message.status)
                .join(Enrollment, Message.enrollment_id == Enrollment.id)
                .join(Patient, Enrollment.patient_id == Patient.id)
                .where(Patient.email == address)
            )
        )


def suppressions() -> list[tuple[str, str, str]]:
    with session_scope() as session:
        rows = session.execute(select(Suppression.email, Suppression.source, Suppression.reason))
        return [tuple(row) for row in rows]  # type: ignore[misc]


@pytest.mark.slow  # `dripcare inbound` processes, several
def test_a_dsn_for_a_verp_sent_email_suppresses_that_patient_only(
    verp_settings: Settings, smtp_server: SMTPServer
) -> None:
    sent = sent_to_two_patients(verp_settings, smtp_server)
    assert sent["verp"].startswith("bounces+") and "@bounce.riverside.example" in sent["verp"]
    dsn = report_sample(
        "dsn_postfix_user_unknown.eml", sent["verp"], sent["message_id"], "pat@example.com"
    )

    first = inbound(dsn)
    again = inbound(dsn)

    assert first == {
        "reports": 1,
        "matched": 1,
        "replays": 0,
        "suppressed": 1,
        "cancelled_messages": first["cancelled_messages"],
    }
    assert first["cancelled_messages"] > 0
    assert again["replays"] == 1 and again["suppressed"] == 0
    [(email, source, reason)] = suppressions()
    assert (email, source) == ("pat@example.com", "bounce")
    assert "5.1.1" in reason and "User unknown in virtual mailbox table" in reason
    assert statuses("pat@example.com") == {MessageStatus.FAILED, MessageStatus.CANCELLED}
    assert MessageStatus.CANCELLED not in statuses("sam@example.com")


@pytest.mark.parametrize("name", ["arf_yahoo.eml", "arf_aol.eml"])
def test_a_complaint_for_a_sent_email_suppresses_that_patient_only(
    verp_settings: Settings, smtp_server: SMTPServer, name: str
) -> None:
    sent = sent_to_two_patients(verp_settings, smtp_server)
    arf = report_sample(name, sent["verp"], sent["message_id"], "redacted@example.net")

    done = inbound(arf)

    assert done["matched"] == 1 and done["suppressed"] == 1
    assert [(e, s) for e, s, _ in suppressions()] == [("pat@example.com", "complaint")]
    assert MessageStatus.SCHEDULED not in statuses("pat@example.com")
    assert MessageStatus.CANCELLED not in statuses("sam@example.com")


def test_the_envelope_recipient_names_the_message_when_the_report_does_not(
    verp_settings: Settings, smtp_server: SMTPServer
) -> None:
    sent = sent_to_two_patients(verp_settings, smtp_server)
    dsn = report_sample("dsn_outlook.eml", "x@y", "<unknown@example>", "pat@example.com")

    done = inbound(dsn, "--recipient", sent["verp"].upper())

    assert done["suppressed"] == 1
    assert [e for e, _, _ in suppressions()] == ["pat@example.com"]


@pytest.mark.slow  # `dripcare inbound` processes, several
def test_a_policy_bounce_or_a_report_about_no_message_of_ours_changes_nothing(
    verp_settings: Settings, smtp_server: SMTPServer
) -> None:
    sent = sent_to_two_patients(verp_settings, smtp_server)
    dmarc = report_sample(
        "dsn_gmail_dmarc_policy.eml", sent["verp"], sent["message_id"], "pat@example.com"
    )
    stranger = report_sample(
        "dsn_postfix_user_unknown.eml", "bounces@else.example", "<x@else>", "a@b.example"
    )

    policy, unknown = inbound(dmarc), inbound(stranger)

    assert policy["matched"] == 1 and policy["suppressed"] == 0
    assert unknown["matched"] == 0
    assert suppressions() == []
    assert statuses("pat@example.com") == {MessageStatus.FAILED, MessageStatus.SCHEDULED}
    assert MessageStatus.FAILED not in statuses("sam@example.com")


def test_an_auto_reply_to_the_bounce_address_quoting_the_unsubscribe_link_changes_nothing(
    verp_settings: Settings, smtp_server: SMTPServer
) -> None:
    sent = sent_to_two_patients(verp_settings, smtp_server)
    [original] = [m for m in smtp_server.recorder.messages if m["To"] == "pat@example.com"]
    https, mailto = unsubscribe_targets(original)
    reply = (
        f"From: pat@example.com\r\nTo: {sent['verp']}\r\nAuto-Submitted: auto-replied\r\n"
        f"Subject: Out of office: {mailto.split('subject=')[1].replace('%20', ' ')}\r\n\r\n"
        f"I am away until Monday.\r\n\r\n> Unsubscribe: {https}\r\n> {mailto}\r\n"
    ).encode()

    done = inbound(reply)

    assert done["reports"] == 0
    assert suppressions() == []
    assert MessageStatus.CANCELLED not in statuses("pat@example.com")
