"""The Message-ID header: each outbox row's own, fixed when it is written, under the clinic's
sending domain.

A row keeps its Message-ID for every attempt, so a resend after a crash carries the same one
and receivers can recognise it; bounces and complaints are matched back by it (feedback.py).
"""

from __future__ import annotations

import uuid

DEFAULT_DOMAIN = "dripcare.local"  # a sender without a domain still gets well-formed ids


def sender_domain(sender_email: str, fallback: str = DEFAULT_DOMAIN) -> str:
    """The domain part of a clinic's sender address, or `fallback` when it has none."""
    return sender_email.rpartition("@")[2] or fallback


def new_message_id(domain: str, prefix: str = "") -> str:
    """A fresh, globally unique Message-ID under `domain` (`prefix` marks test sends)."""
    return f"<{prefix}{uuid.uuid4().hex}@{domain}>"
