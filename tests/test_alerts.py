"""Clinic alerts: webhook signatures as Standard Webhooks specifies them.

The alerts a red flag raises, end to end, are in test_checkins.py.
"""

from __future__ import annotations

from datetime import UTC, datetime

from standardwebhooks import Webhook as StandardWebhook

from dripcare.sending import alerts


def test_the_signature_matches_the_standard_webhooks_spec_example() -> None:
    at = datetime.fromtimestamp(1614265330, UTC)
    body = b'{"test": 2432232314}'
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

    headers = alerts.signed_headers("msg_p5jXN8AQM9LWM0D4loKWxJek", at, body, secret)

    assert headers == {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }


def test_a_secret_from_before_whsec_is_the_key_as_it_is() -> None:
    at = datetime.fromtimestamp(1614265330, UTC)

    headers = alerts.signed_headers("alert_1", at, b"{}", "s3cret")

    assert headers["webhook-signature"] == StandardWebhook(b"s3cret").sign("alert_1", at, "{}")
