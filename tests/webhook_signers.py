"""Test stand-ins for the providers: keys made here, payloads signed the way each provider signs.

The verification code under test is the production code; only the SNS certificate fetch is
replaced (FakeSNSHost), which is the seam production has too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from dripcare.webhooks.sns import string_to_sign

CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem"
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:dripcare-ses"


@cache
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def sns_certificate_pem() -> bytes:
    key = rsa_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class FakeSNSHost:
    """Serves the test certificate at CERT_URL and records every URL read (the fetch seam)."""

    fetched: list[str] = field(default_factory=list)

    def __call__(self, url: str) -> bytes:
        self.fetched.append(url)
        return sns_certificate_pem() if url == CERT_URL else b"<ConfirmSubscriptionResponse/>"


def sign_sns(message: dict[str, Any], version: str = "1") -> dict[str, Any]:
    """Add SignatureVersion, SigningCertURL and Signature as SNS does."""
    message = {"SignatureVersion": version, "SigningCertURL": CERT_URL} | message
    digest = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = rsa_key().sign(string_to_sign(message), padding.PKCS1v15(), digest)
    return message | {"Signature": base64.b64encode(signature).decode()}


def sns_notification(
    ses_event: dict[str, Any], version: str = "1", **fields: Any
) -> dict[str, Any]:
    message = {
        "Type": "Notification",
        "MessageId": fields.pop("MessageId", "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"),
        "TopicArn": TOPIC_ARN,
        "Message": json.dumps(ses_event),
        "Timestamp": "2026-11-25T20:00:00.000Z",
    } | fields
    return sign_sns(message, version)


def sns_subscription_confirmation(version: str = "1") -> dict[str, Any]:
    return sign_sns(
        {
            "Type": "SubscriptionConfirmation",
            "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
            "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a7",
            "TopicArn": TOPIC_ARN,
            "Message": "You have chosen to subscribe to the topic "
            f"{TOPIC_ARN}.\nTo confirm the subscription, visit the SubscribeURL included "
            "in this message.",
            "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription"
            f"&TopicArn={TOPIC_ARN}&Token=2336412f37fb687f5d51e6e241d09c8",
            "Timestamp": "2026-11-25T20:00:00.000Z",
        },
        version,
    )


@cache
def sendgrid_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def sendgrid_public_key() -> str:
    """As SendGrid shows it: base64 DER SubjectPublicKeyInfo."""
    der = (
        sendgrid_key()
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return base64.b64encode(der).decode()


def sendgrid_headers(body: bytes, timestamp: int | None = None) -> dict[str, str]:
    stamp = str(timestamp if timestamp is not None else int(datetime.now(UTC).timestamp()))
    signature = sendgrid_key().sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
    }


MAILGUN_KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"


def mailgun_signature(
    token: str, timestamp: int | None = None, key: str = MAILGUN_KEY
) -> dict[str, str]:
    stamp = str(timestamp if timestamp is not None else int(datetime.now(UTC).timestamp()))
    digest = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    return {"timestamp": stamp, "token": token, "signature": digest}
