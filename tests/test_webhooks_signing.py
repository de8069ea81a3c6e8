"""Each provider's check accepts what that provider signs and refuses everything else."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from dripcare.webhooks import mailgun, postmark, sendgrid
from dripcare.webhooks.signing import Rejected
from dripcare.webhooks.sns import SNSVerifier
from tests.webhook_signers import (
    CERT_URL,
    MAILGUN_KEY,
    FakeSNSHost,
    mailgun_signature,
    sendgrid_headers,
    sendgrid_public_key,
    sign_sns,
    sns_notification,
    sns_subscription_confirmation,
)

SES_BOUNCE = {"notificationType": "Bounce", "bounce": {"bounceType": "Permanent"}}


@pytest.mark.parametrize("version", ["1", "2"])
def test_sns_accepts_both_signature_versions(version: str) -> None:
    host = FakeSNSHost()
    SNSVerifier(host).verify(sns_notification(SES_BOUNCE, version))
    SNSVerifier(host).verify(sns_subscription_confirmation(version))
    assert host.fetched == [CERT_URL, CERT_URL]  # checked against the signing certificate


def test_sns_refuses_a_changed_message() -> None:
    message = sns_notification(SES_BOUNCE) | {"Message": json.dumps({"notificationType": "x"})}
    with pytest.raises(Rejected, match="does not match"):
        SNSVerifier(FakeSNSHost()).verify(message)


def test_sns_refuses_an_unknown_signature_version() -> None:
    message = sns_notification(SES_BOUNCE) | {"SignatureVersion": "3"}
    with pytest.raises(Rejected, match="SignatureVersion"):
        SNSVerifier(FakeSNSHost()).verify(message)


@pytest.mark.parametrize(
    "url",
    [
        "https://attacker.example/SimpleNotificationService-test.pem",
        "https://sns.us-east-1.amazonaws.com.attacker.example/cert.pem",
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem",
        "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-test.pem",
        "https://user@sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem",
        "https://s3.amazonaws.com/SimpleNotificationService-test.pem",
        "https://sns.us-east-1.amazonaws.com/not-a-certificate",
    ],
)
def test_sns_refuses_certificates_off_the_sns_host_without_fetching(url: str) -> None:
    host = FakeSNSHost()
    message = sign_sns(
        {
            "Type": "Notification",
            "MessageId": "m",
            "Message": "{}",
            "Timestamp": "t",
            "TopicArn": "a",
        }
    ) | {"SigningCertURL": url}
    with pytest.raises(Rejected, match="SigningCertURL"):
        SNSVerifier(host).verify(message)
    assert host.fetched == []


def test_sns_fetches_a_certificate_once() -> None:
    host = FakeSNSHost()
    verifier = SNSVerifier(host)
    for message_id in ("a", "b", "c"):
        verifier.verify(sns_notification(SES_BOUNCE, MessageId=message_id))
    assert host.fetched == [CERT_URL]


def test_sns_confirms_a_subscription_only_on_an_sns_host() -> None:
    host = FakeSNSHost()
    verifier = SNSVerifier(host)
    confirmation = sns_subscription_confirmation()
    verifier.confirm_subscription(confirmation)
    assert host.fetched[-1] == confirmation["SubscribeURL"]
    with pytest.raises(Rejected, match="SubscribeURL"):
        verifier.confirm_subscription({"SubscribeURL": "https://attacker.example/?Action=x"})
    assert len(host.fetched) == 1


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_postmark_accepts_only_the_configured_credentials() -> None:
    postmark.check_basic_auth(
        _basic("postmark", "s3cret:with:colons"), "postmark", "s3cret:with:colons"
    )
    for header in (
        None,
        "Bearer x",
        "Basic !!!",
        _basic("postmark", "wrong"),
        _basic("x", "s3cret"),
    ):
        with pytest.raises(Rejected):
            postmark.check_basic_auth(header, "postmark", "s3cret")


NOW = datetime.now(UTC)
BODY = b'[{"email":"pat@example.com","event":"bounce","timestamp":1764000000}]'


def _sendgrid_verify(body: bytes, headers: dict[str, str], now: datetime = NOW) -> None:
    sendgrid.verify(
        sendgrid_public_key(),
        headers.get("X-Twilio-Email-Event-Webhook-Signature"),
        headers.get("X-Twilio-Email-Event-Webhook-Timestamp"),
        body,
        now,
        300,
    )


def test_sendgrid_accepts_its_signature() -> None:
    _sendgrid_verify(BODY, sendgrid_headers(BODY, int(NOW.timestamp())))


def test_sendgrid_refuses_a_changed_body_a_missing_header_and_a_stale_timestamp() -> None:
    headers = sendgrid_headers(BODY, int(NOW.timestamp()))
    with pytest.raises(Rejected, match="does not match"):
        _sendgrid_verify(BODY.replace(b"bounce", b"delivered"), headers)
    with pytest.raises(Rejected, match="missing"):
        _sendgrid_verify(BODY, {})
    with pytest.raises(Rejected, match="more than 300 s"):
        _sendgrid_verify(BODY, headers, NOW + timedelta(minutes=6))


def test_sendgrid_accepts_the_key_with_pem_armour() -> None:
    armoured = f"-----BEGIN PUBLIC KEY-----\n{sendgrid_public_key()}\n-----END PUBLIC KEY-----"
    assert sendgrid.load_public_key(armoured) == sendgrid.load_public_key(sendgrid_public_key())


def test_mailgun_accepts_its_signature_and_returns_the_token() -> None:
    signature = mailgun_signature("tok1", int(NOW.timestamp()))
    assert mailgun.verify(MAILGUN_KEY, signature, NOW, 300) == "tok1"


def test_mailgun_refuses_a_wrong_key_a_changed_token_and_a_stale_timestamp() -> None:
    signature = mailgun_signature("tok1", int(NOW.timestamp()))
    with pytest.raises(Rejected, match="does not match"):
        mailgun.verify("other-key", signature, NOW, 300)
    with pytest.raises(Rejected, match="does not match"):
        mailgun.verify(MAILGUN_KEY, signature | {"token": "tok2"}, NOW, 300)
    with pytest.raises(Rejected, match="more than 300 s"):
        mailgun.verify(MAILGUN_KEY, signature, NOW - timedelta(hours=1), 300)
    with pytest.raises(Rejected, match="no 'signature'"):
        mailgun.verify(MAILGUN_KEY, None, NOW, 300)
