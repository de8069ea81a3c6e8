"""Server-side admin sessions: the cookie holds a random token, the database its SHA-256.

Ending a session on the server (sign-out, expiry) is what makes it end: a copied cookie is
worthless afterwards. The CSRF token of a form is an HMAC of the session token, so it needs
no storage and cannot be computed without both the cookie and the server's secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from dripcare.config import Settings
from dripcare.models import AdminSession, AdminUser


@dataclass(frozen=True)
class StartedSession:
    row: AdminSession
    token: str  # goes into the cookie; never stored


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(session: Session, settings: Settings, user: AdminUser, now: datetime) -> StartedSession:
    """A new session (a fresh token on every sign-in); ended sessions are pruned on the way."""
    session.execute(
        delete(AdminSession).where(
            or_(AdminSession.expires_at <= now, AdminSession.revoked_at.is_not(None))
        )
    )
    token = secrets.token_urlsafe(32)
    row = AdminSession(
        user_id=user.id,
        token_hash=_digest(token),
        clinic_id=user.clinic_id,
        created_at=now,
        expires_at=now + timedelta(hours=settings.admin_session_hours),
    )
    session.add(row)
    session.flush()
    return StartedSession(row, token)


def find(session: Session, token: str, now: datetime) -> AdminSession | None:
    """The live session for this cookie token: not revoked, not expired."""
    if not token or len(token) > 100:
        return None
    row = session.scalar(select(AdminSession).where(AdminSession.token_hash == _digest(token)))
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    return row


def end(session: Session, token: str, now: datetime) -> None:
    row = find(session, token, now)
    if row is not None:
        row.revoked_at = now


def csrf_token(settings: Settings, purpose: str, secret: str) -> str:
    """The form token bound to a session token (or, before sign-in, to a random cookie)."""
    message = f"csrf:{purpose}:{secret}".encode()
    return hmac.new(settings.secret_key.encode(), message, hashlib.sha256).hexdigest()


def csrf_valid(settings: Settings, purpose: str, secret: str, presented: str) -> bool:
    return bool(secret) and hmac.compare_digest(csrf_token(settings, purpose, secret), presented)
