"""Postmark webhooks. Postmark does not sign its requests: the webhook URL carries HTTP basic
auth credentials that the operator chose, and those are what is checked."""

from __future__ import annotations

import base64
import binascii
import hmac

from dripcare.webhooks.signing import Rejected


def check_basic_auth(authorization: str | None, user: str, password: str) -> None:
    """Raise Rejected unless the Authorization header carries exactly these credentials."""
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        raise Rejected("no HTTP basic auth: put the credentials in the webhook's URL or settings")
    try:
        given_user, _, given_password = base64.b64decode(encoded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise Rejected("malformed basic auth credentials") from None
    # Both compared, always: which one was wrong must not show in the timing.
    user_ok = hmac.compare_digest(given_user.encode(), user.encode())
    password_ok = hmac.compare_digest(given_password.encode(), password.encode())
    if not (user_ok and password_ok):
        raise Rejected("wrong webhook user or password")
