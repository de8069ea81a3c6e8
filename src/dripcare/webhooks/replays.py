"""Tokens already used by signed webhooks, so that a replayed request counts once."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dripcare.models import WebhookToken


def first_use(
    session: Session, provider: str, token: str, now: datetime, max_age_seconds: int
) -> bool:
    """Record the token; False if it was seen before. Tokens older than the freshness window
    are forgotten: their timestamps would be refused anyway."""
    session.execute(
        sa.delete(WebhookToken).where(
            WebhookToken.seen_at < now - timedelta(seconds=2 * max_age_seconds)
        )
    )
    seen = session.scalar(
        sa.select(WebhookToken.id).where(
            WebhookToken.provider == provider, WebhookToken.token == token[:128]
        )
    )
    if seen is not None:
        return False
    # Two deliveries of one token at once: the unique constraint fails one commit (500), and
    # the provider's retry then finds the token.
    session.add(WebhookToken(provider=provider, token=token[:128], seen_at=now))
    session.flush()
    return True
