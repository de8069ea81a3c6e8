"""Per-clinic API keys: `dc_<prefix>_<secret>`, shown once, stored as a SHA-256 of the secret.

The secret is 32 random bytes, so a fast hash is enough (no password stretching needed); the
public prefix finds the row without scanning, and the comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from dripcare.errors import NotFound
from dripcare.models import ApiKey, utcnow
from dripcare.people import audit
from dripcare.people.audit import Action, Actor

SCHEME = "dc"


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    plaintext: str  # shown to the person once, never stored


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    session: Session, clinic_id: int, name: str = "", actor: Actor = audit.SYSTEM
) -> IssuedKey:
    prefix, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    key = ApiKey(clinic_id=clinic_id, prefix=prefix, secret_hash=_digest(secret), name=name)
    session.add(key)
    session.flush()
    _audit(session, actor, Action.API_KEY_CREATE, key)
    return IssuedKey(key, f"{SCHEME}_{prefix}_{secret}")


def _audit(session: Session, actor: Actor, action: Action, key: ApiKey) -> None:
    detail = f"dc_{key.prefix}_… {key.name}".strip()
    audit.record(
        session, actor, action, clinic_id=key.clinic_id, target=("apikey", key.id), detail=detail
    )


@dataclass(frozen=True)
class Caller:
    key_id: int
    clinic_id: int


_LIVE_KEY = select(ApiKey.id, ApiKey.clinic_id, ApiKey.secret_hash).where(
    ApiKey.prefix == bindparam("prefix"), ApiKey.revoked_at.is_(None)
)  # built once: every API request runs it


def authenticate(session: Session, presented: str) -> Caller | None:
    """The live key matching `presented`, or None (unknown, malformed, wrong or revoked).

    Every API request starts here, so it reads three columns rather than a whole row.
    """
    scheme, _, rest = presented.partition("_")
    prefix, _, secret = rest.partition("_")
    if scheme != SCHEME or not prefix or not secret:
        return None
    key = session.connection().execute(_LIVE_KEY, {"prefix": prefix}).first()
    if key is None or not hmac.compare_digest(key.secret_hash, _digest(secret)):
        return None
    return Caller(key.id, key.clinic_id)


def list_keys(session: Session, clinic_id: int) -> list[ApiKey]:
    return list(
        session.scalars(select(ApiKey).where(ApiKey.clinic_id == clinic_id).order_by(ApiKey.id))
    )


def revoke_key(session: Session, key_id: int, actor: Actor = audit.SYSTEM) -> ApiKey:
    """Idempotent; only the revocation that takes effect is audited."""
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"no API key with id {key_id}; see `dripcare apikey list --clinic ID`")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        _audit(session, actor, Action.API_KEY_REVOKE, key)
    return key
