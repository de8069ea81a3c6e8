"""POST /webhooks/<provider>: recorded-shape payloads from SES (through SNS), Postmark, SendGrid
and Mailgun, signed with keys made by the tests, reach feedback.apply; forged, stale, replayed
or unconfigured requests change nothing."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import time_machine
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from dripcare.config import Settings, get_settings
from dripcare.db import session_scope
from dripcare.models import (
    AlertKind,
    ClinicAlert,
    DeliveryAttempt,
    Message,
    MessageStatus,
    Suppression,
)
from dripcare.web.app import create_app
from dripcare.web.webhooks import sns_verifier
from dripcare.webhooks import replays
from dripcare.webhooks.sns import SNSVerifier
from tests.conftest import configure
from tests.factories import DAYTIME, make_clinic, make_enrollment
from tests.webhook_signers import (
    MAILGUN_KEY,
    TOPIC_ARN,
    FakeSNSHost,
    mailgun_signature,
    sendgrid_headers,
    sendgrid_public_key,
    sign_sns,
    sns_notification,
    sns_subscription_confirmation,
)

PATIENT = "pat@example.com"


@pytest.fixture
def sns_host() -> FakeSNSHost:
    return FakeSNSHost()


@pytest.fixture
def client(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sns_host: FakeSNSHost
) -> Iterator[TestClient]:
    configure(
        monkeypatch,
        tmp_path,
        DRIPCARE_DATABASE_URL=database,
        DRIPCARE_SES_TOPIC_ARNS=f"arn:aws:sns:eu-west-1:123456789012:other, {TOPIC_ARN}",
        DRIPCARE_POSTMARK_WEBHOOK_USER="postmark",
        DRIPCARE_POSTMARK_WEBHOOK_PASSWORD="hook-password",
        DRIPCARE_SENDGRID_WEBHOOK_PUBLIC_KEY=sendgrid_public_key(),
        DRIPCARE_MAILGUN_SIGNING_KEY=MAILGUN_KEY,
    )
    app = create_app()
    app.dependency_overrides[sns_verifier] = lambda: SNSVerifier(sns_host)
    with time_machine.travel(DAYTIME, tick=True), TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def message_id(client: TestClient) -> str:
    """The Message-ID of the patient's first email (the day-0 one), without <>."""
    make_enrollment(get_settings(), make_clinic(), DAYTIME - timedelta(hours=3), email=PATIENT)
    with session_scope() as session:
        first = session.scalars(select(Message.message_id).order_by(Message.due_at)).first()
    assert first is not None
    return first.strip("<>")


def state() -> tuple[int, int, int, list[str]]:
    """Everything a webhook can change: history rows, suppressions, alerts, message statuses."""
    with session_scope() as session:
        return (
            session.scalar(select(func.count()).select_from(DeliveryAttempt)) or 0,
            session.scalar(select(func.count()).select_from(Suppression)) or 0,
            session.scalar(select(func.count()).select_from(ClinicAlert)) or 0,
            list(session.scalars(select(Message.status).order_by(Message.id))),
        )


def suppressed() -> list[str]:
    with session_scope() as session:
        return list(session.scalars(select(Suppression.email)))


def alerts() -> list[AlertKind]:
    with session_scope() as session:
        return list(session.scalars(select(ClinicAlert.kind)))


def ses_bounce(
    message_id: str, status: str = "5.1.1", bounce_type: str = "Permanent"
) -> dict[str, Any]:
    """As SES documents a bounce notification, with the original headers included."""
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": PATIENT,
                    "action": "failed",
                    "status": status,
                    "diagnosticCode": f"smtp; 550 {status} user unknown",
                }
            ],
            "timestamp": "2026-11-25T20:00:00.000Z",
            "feedbackId": "0100017d-bounce-feedback",
            "reportingMTA": "dsn; a8-70.smtp-out.amazonses.com",
        },
        "mail": {
            "timestamp": "2026-11-25T19:59:58.000Z",
            "source": "care@riverside.example",
            "messageId": "0100017d-ses-message-id",
            "destination": [PATIENT],
            "headersTruncated": False,
            "headers": [
                {"name": "From", "value": "Riverside Skin Clinic <care@riverside.example>"},
                {"name": "Message-ID", "value": f"<{message_id}>"},
            ],
            "commonHeaders": {"from": ["care@riverside.example"], "to": [PATIENT]},
        },
    }


def post_sns(client: TestClient, message: dict[str, Any]) -> Any:
    # SNS posts JSON as text/plain.
    return client.post(
        "/webhooks/ses", content=json.dumps(message), headers={"Content-Type": "text/plain"}
    )


@pytest.mark.parametrize("version", ["1", "2"])
def test_ses_permanent_bounce_suppresses_the_patient_once(
    client: TestClient, message_id: str, version: str
) -> None:
    notification = sns_notification(ses_bounce(message_id), version)

    first = post_sns(client, notification)
    after_first = state()
    again = post_sns(client, notification)

    assert first.status_code == 200, first.text
    assert first.json() == {"events": 1, "applied": 1, "unknown": 0, "replays": 0, "alerted": 1}
    assert suppressed() == [PATIENT]
    assert alerts() == [AlertKind.UNREACHABLE]  # the clinic is told to phone the patient
    assert MessageStatus.CANCELLED in after_first[-1]
    assert again.json()["replays"] == 1 and state() == after_first


def test_ses_sender_refusal_is_recorded_but_suppresses_nobody(
    client: TestClient, message_id: str
) -> None:
    response = post_sns(client, sns_notification(ses_bounce(message_id, status="5.7.1")))

    assert response.json()["applied"] == 1
    assert suppressed() == []
    assert MessageStatus.CANCELLED not in state()[-1]


def test_ses_forged_signature_is_refused_and_changes_nothing(
    client: TestClient, message_id: str
) -> None:
    genuine = sns_notification(ses_bounce(message_id, bounce_type="Transient"))
    forged = genuine | {"Message": json.dumps(ses_bounce(message_id))}
    before = state()

    response = post_sns(client, forged)

    assert response.status_code == 401
    assert state() == before


def test_ses_certificate_off_the_sns_host_is_never_fetched(
    client: TestClient, message_id: str, sns_host: FakeSNSHost
) -> None:
    message = sns_notification(ses_bounce(message_id)) | {
        "SigningCertURL": "https://certs.attacker.example/SimpleNotificationService.pem"
    }
    before = state()

    response = post_sns(client, message)

    assert response.status_code == 401
    assert "sns.<region>.amazonaws.com" in response.json()["detail"]
    assert sns_host.fetched == [] and state() == before


def test_ses_subscription_is_confirmed_for_an_allowed_topic_only(
    client: TestClient, sns_host: FakeSNSHost
) -> None:
    confirmation = sns_subscription_confirmation()
    other_topic = sign_sns(
        {k: v for k, v in confirmation.items() if k not in ("Signature", "SignatureVersion")}
        | {"TopicArn": "arn:aws:sns:us-east-1:999999999999:not-ours"}
    )

    refused = post_sns(client, other_topic)
    fetched_after_refusal = list(sns_host.fetched)  # not even the certificate
    confirmed = post_sns(client, confirmation)

    assert refused.status_code == 403 and fetched_after_refusal == []
    assert confirmed.status_code == 200
    assert sns_host.fetched[-1] == confirmation["SubscribeURL"]


def test_unconfigured_providers_answer_404(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, tmp_path, DRIPCARE_DATABASE_URL=database)
    with TestClient(create_app()) as bare:
        for provider in ("ses", "postmark", "sendgrid", "mailgun"):
            assert bare.post(f"/webhooks/{provider}", content=b"{}").status_code == 404


def _basic(password: str) -> dict[str, str]:
    token = base64.b64encode(f"postmark:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def postmark_bounce(message_id: str) -> dict[str, Any]:
    """Postmark's bounce webhook, with "Include bounce content" on."""
    return {
        "RecordType": "Bounce",
        "ID": 4323372036,
        "Type": "HardBounce",
        "TypeCode": 1,
        "Name": "Hard bounce",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "MessageStream": "outbound",
        "Description": "The server was unable to deliver your message (ex: unknown user, "
        "mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": PATIENT,
        "From": "care@riverside.example",
        "BouncedAt": "2026-11-25T15:28:10.2735393-05:00",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": True,
        "Subject": "Your aftercare",
        "Content": f"Return-Path: <>\r\nMessage-ID: <{message_id}>\r\nSubject: Your aftercare\r\n",
        "Metadata": {"dripcare-message": message_id},  # our X-PM-Metadata-dripcare-message
    }


def postmark_complaint(message_id: str) -> dict[str, Any]:
    """Postmark's spam complaint webhook: no content, only the metadata we sent."""
    return {
        "RecordType": "SpamComplaint",
        "ID": 4323372037,
        "Type": "SpamComplaint",
        "TypeCode": 512,
        "Name": "Spam complaint",
        "Tag": "",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Metadata": {"dripcare-message": message_id},
        "ServerID": 23,
        "MessageStream": "outbound",
        "Description": "The subscriber explicitly marked this message as spam.",
        "Details": "Test spam complaint details",
        "Email": PATIENT,
        "From": "care@riverside.example",
        "BouncedAt": "2026-11-25T15:28:10.2735393-05:00",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": False,
        "Subject": "Your aftercare",
        "Content": "",
    }


def test_postmark_hard_bounce_with_the_right_credentials_suppresses(
    client: TestClient, message_id: str
) -> None:
    response = client.post(
        "/webhooks/postmark", json=postmark_bounce(message_id), headers=_basic("hook-password")
    )

    assert response.status_code == 200, response.text
    assert response.json()["applied"] == 1
    assert suppressed() == [PATIENT]


def test_postmark_complaint_without_content_is_matched_by_our_metadata(
    client: TestClient, message_id: str
) -> None:
    response = client.post(
        "/webhooks/postmark", json=postmark_complaint(message_id), headers=_basic("hook-password")
    )

    assert response.status_code == 200, response.text
    assert response.json()["applied"] == 1
    assert suppressed() == [PATIENT]


def test_postmark_wrong_credentials_change_nothing(client: TestClient, message_id: str) -> None:
    before = state()
    for headers in ({}, _basic("guess")):
        response = client.post(
            "/webhooks/postmark", json=postmark_bounce(message_id), headers=headers
        )
        assert response.status_code == 401
    assert state() == before


def sendgrid_body(message_id: str) -> bytes:
    events = [
        {
            "email": PATIENT,
            "timestamp": 1764100800,
            "smtp-id": f"<{message_id}>",
            "event": "bounce",
            "category": ["aftercare"],
            "sg_event_id": "sg-bounce-1",
            "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
            "reason": "550 5.1.1 The email account that you tried to reach does not exist.",
            "status": "5.1.1",
            "type": "bounce",
        },
        {
            "email": "someone-else@example.com",
            "timestamp": 1764100801,
            "smtp-id": "<not-ours@example.com>",
            "event": "delivered",
            "sg_event_id": "sg-delivered-1",
            "response": "250 OK",
        },
    ]
    return json.dumps(events, separators=(",", ":")).encode()


def test_sendgrid_signed_events_are_applied(client: TestClient, message_id: str) -> None:
    body = sendgrid_body(message_id)

    response = client.post("/webhooks/sendgrid", content=body, headers=sendgrid_headers(body))

    assert response.status_code == 200, response.text
    assert response.json() == {"events": 2, "applied": 1, "unknown": 1, "replays": 0, "alerted": 1}
    assert suppressed() == [PATIENT]


def test_sendgrid_forged_or_stale_requests_change_nothing(
    client: TestClient, message_id: str
) -> None:
    body = sendgrid_body(message_id)
    signed = sendgrid_headers(body)
    stale = sendgrid_headers(body, int((DAYTIME - timedelta(hours=1)).timestamp()))
    before = state()

    changed = client.post(
        "/webhooks/sendgrid", content=body.replace(b"sg-bounce-1", b"x"), headers=signed
    )
    old = client.post("/webhooks/sendgrid", content=body, headers=stale)
    unsigned = client.post("/webhooks/sendgrid", content=body)

    assert [r.status_code for r in (changed, old, unsigned)] == [401, 401, 401]
    assert state() == before


def mailgun_failed(message_id: str, token: str, severity: str = "permanent") -> dict[str, Any]:
    """Mailgun's `failed` event as its webhooks post it (JSON)."""
    return {
        "signature": mailgun_signature(token),
        "event-data": {
            "id": f"G9Bn5sl1TC6nu79C8C0bwg-{token}",
            "timestamp": 1764100800.0,
            "event": "failed",
            "severity": severity,
            "reason": "bounce",
            "recipient": PATIENT,
            "envelope": {"sender": "care@riverside.example", "transport": "smtp"},
            "message": {"headers": {"message-id": message_id, "to": PATIENT}},
            "delivery-status": {
                "code": 550,
                "message": "5.1.1 The email account that you tried to reach does not exist.",
                "description": "",
                "attempt-no": 1,
            },
        },
    }


def test_mailgun_permanent_failure_suppresses_and_a_replayed_token_changes_nothing(
    client: TestClient, message_id: str
) -> None:
    first = client.post("/webhooks/mailgun", json=mailgun_failed(message_id, "token-1"))
    after_first = state()
    # The signature covers only timestamp + token: a replay may carry any event.
    replay = mailgun_failed(message_id, "token-1") | {"event-data": {"event": "complained"}}
    again = client.post("/webhooks/mailgun", json=replay)

    assert first.status_code == 200, first.text
    assert first.json()["applied"] == 1 and suppressed() == [PATIENT]
    assert again.status_code == 200 and again.json()["replays"] == 1
    assert state() == after_first


def test_mailgun_temporary_failure_is_a_delay_and_suppresses_nobody(
    client: TestClient, message_id: str
) -> None:
    response = client.post(
        "/webhooks/mailgun", json=mailgun_failed(message_id, "token-2", severity="temporary")
    )

    assert response.json()["applied"] == 1
    assert suppressed() == []


def test_mailgun_wrong_key_or_stale_timestamp_changes_nothing(
    client: TestClient, message_id: str
) -> None:
    wrong_key = mailgun_failed(message_id, "token-3")
    wrong_key["signature"] = mailgun_signature("token-3", key="not-the-key")
    stale = mailgun_failed(message_id, "token-4")
    stale["signature"] = mailgun_signature(
        "token-4", int((DAYTIME - timedelta(hours=1)).timestamp())
    )
    before = state()

    responses = [client.post("/webhooks/mailgun", json=body) for body in (wrong_key, stale)]

    assert [r.status_code for r in responses] == [401, 401]
    assert state() == before


def test_reports_about_unknown_messages_are_accepted_and_ignored(client: TestClient) -> None:
    response = post_sns(client, sns_notification(ses_bounce("not-ours@example.com")))

    assert response.status_code == 200
    assert response.json() == {"events": 1, "applied": 0, "unknown": 1, "replays": 0, "alerted": 0}


def test_webhooks_are_documented_in_openapi(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    for provider in ("ses", "postmark", "sendgrid", "mailgun"):
        assert "401" in paths[f"/webhooks/{provider}"]["post"]["responses"]


def test_ses_subscription_answers_502_when_sns_cannot_be_reached(
    client: TestClient, sns_host: FakeSNSHost, caplog: pytest.LogCaptureFixture
) -> None:
    def unreachable(url: str) -> bytes:
        if "ConfirmSubscription" in url:
            raise httpx.ConnectError("no route to host")
        return sns_host(url)

    client.app.dependency_overrides[sns_verifier] = lambda: SNSVerifier(unreachable)  # type: ignore[attr-defined]

    response = post_sns(client, sns_subscription_confirmation())

    assert response.status_code == 502
    assert "cannot confirm the SNS subscription" in caplog.text


def test_replay_tokens_are_forgotten_once_their_timestamps_would_be_refused(
    settings: Settings,
) -> None:
    later = DAYTIME + timedelta(seconds=10)
    much_later = DAYTIME + timedelta(minutes=11)  # past twice the 300 s window
    with session_scope() as session:
        first = replays.first_use(session, "mailgun", "t", DAYTIME, 300)
        again = replays.first_use(session, "mailgun", "t", later, 300)
        after_window = replays.first_use(session, "mailgun", "t", much_later, 300)

    assert (first, again, after_window) == (True, False, True)
