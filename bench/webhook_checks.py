"""What checking one provider webhook request costs, per provider, without HTTP or database.

    .venv/bin/python bench/webhook_checks.py [--n N]

Times the production checks (dripcare.webhooks.*) on payloads signed with keys made here: the
SNS RSA-2048 signature (certificate already cached, versions 1 and 2), SendGrid's ECDSA P-256,
Mailgun's HMAC-SHA256 and Postmark's basic auth; and, for scale, reading an SES bounce.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.webhook_signers import (
    MAILGUN_KEY,
    FakeSNSHost,
    mailgun_signature,
    sendgrid_headers,
    sendgrid_public_key,
    sns_notification,
)

from dripcare.webhooks import mailgun, postmark, sendgrid, ses
from dripcare.webhooks.sns import SNSVerifier

BOUNCE = {
    "notificationType": "Bounce",
    "bounce": {
        "bounceType": "Permanent",
        "feedbackId": "f",
        "bouncedRecipients": [{"emailAddress": "pat@example.com", "status": "5.1.1"}],
    },
    "mail": {"source": "bounces+m1-aaaaaaaaaaaaaaaa@b.example", "headers": []},
}


def timed(name: str, n: int, check: Callable[[], object]) -> None:
    check()  # warm: caches, imports
    start = time.perf_counter()
    for _ in range(n):
        check()
    per = (time.perf_counter() - start) / n
    print(f"{name:<34} {per * 1e6:9.1f} µs   {1 / per:10,.0f}/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    n = parser.parse_args().n
    now = datetime.now(UTC)
    verifier = SNSVerifier(FakeSNSHost())
    v1, v2 = sns_notification(BOUNCE, "1"), sns_notification(BOUNCE, "2")
    body = json.dumps([{"event": "bounce", "email": "pat@example.com"}] * 10).encode()
    headers = sendgrid_headers(body, int(now.timestamp()))
    key = sendgrid_public_key()
    signed = mailgun_signature("token", int(now.timestamp()))
    auth = "Basic " + base64.b64encode(b"postmark:a-long-random-password").decode()

    timed("SNS SignatureVersion 1 (SHA1)", n, lambda: verifier.verify(v1))
    timed("SNS SignatureVersion 2 (SHA256)", n, lambda: verifier.verify(v2))
    timed(
        "SendGrid ECDSA P-256, 10 events",
        n,
        lambda: sendgrid.verify(
            key,
            headers["X-Twilio-Email-Event-Webhook-Signature"],
            headers["X-Twilio-Email-Event-Webhook-Timestamp"],
            body,
            now,
            300,
        ),
    )
    timed("Mailgun HMAC-SHA256", n, lambda: mailgun.verify(MAILGUN_KEY, signed, now, 300))
    timed(
        "Postmark basic auth",
        n,
        lambda: postmark.check_basic_auth(auth, "postmark", "a-long-random-password"),
    )
    timed("SES bounce JSON → events", n, lambda: ses.events(json.loads(v1["Message"])))


if __name__ == "__main__":
    main()
