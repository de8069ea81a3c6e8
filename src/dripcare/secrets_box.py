"""Secrets at rest: clinics' SMTP credentials and DKIM private keys.

A stored secret is either sealed here (Fernet: AES-128-CBC + HMAC-SHA256, "fernet:<token>")
or a reference to the environment ("env:NAME"), for operators who keep secrets in their own
vault and hand them to the processes as environment variables.

The key is DRIPCARE_SECRETS_KEY when set: one or more Fernet keys, comma-separated, newest
first; the first seals, all of them open. It is separate from DRIPCARE_SECRET_KEY so that
rotating the link-signing key does not make the stored credentials unreadable, and rotating
this key is: put a new key first (`python3 -c 'from cryptography.fernet import Fernet;
print(Fernet.generate_key().decode())'`), keep the old ones after it, then
`dripcare clinic reseal-secrets`, then drop the old keys. Without it the key is derived from
DRIPCARE_SECRET_KEY (HKDF-SHA256), so a development install needs no extra setting.
"""

from __future__ import annotations

import base64
import os

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select
from sqlalchemy.orm import Session

from dripcare.config import Settings
from dripcare.errors import UserError

SEALED, ENV = "fernet:", "env:"


class SecretUnavailable(UserError):
    """A stored secret cannot be opened here: the environment variable or key is missing."""


def _box(settings: Settings) -> MultiFernet:
    if settings.secrets_key:
        keys = [key.strip() for key in settings.secrets_key.split(",") if key.strip()]
        try:
            return MultiFernet([Fernet(key) for key in keys])
        except ValueError as exc:
            raise SecretUnavailable(
                f"DRIPCARE_SECRETS_KEY is not a list of Fernet keys ({exc}); make one with "
                "python3 -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'"
            ) from exc
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"dripcare secrets box v1"
    ).derive(settings.secret_key.encode())
    return MultiFernet([Fernet(base64.urlsafe_b64encode(derived))])


def is_reference(value: str) -> bool:
    return value.startswith(ENV)


def seal(settings: Settings, secret: str) -> str:
    """What to store for this secret: an "env:NAME" reference is kept as it is."""
    if is_reference(secret):
        return secret
    return SEALED + _box(settings).encrypt(secret.encode()).decode()


def open_secret(settings: Settings, stored: str) -> str:
    """The secret itself, from the environment or unsealed."""
    if is_reference(stored):
        name = stored.removeprefix(ENV)
        if name not in os.environ:
            raise SecretUnavailable(f"environment variable {name} is not set in this process")
        return os.environ[name]
    try:
        return _box(settings).decrypt(stored.removeprefix(SEALED).encode()).decode()
    except InvalidToken as exc:
        raise SecretUnavailable(
            "a stored secret cannot be opened with this DRIPCARE_SECRETS_KEY (or "
            "DRIPCARE_SECRET_KEY): restore the key it was sealed with, or set the secret again"
        ) from exc


def reseal(settings: Settings, stored: str) -> str:
    """The same secret sealed with the newest key (after a key rotation)."""
    if is_reference(stored):
        return stored
    token = stored.removeprefix(SEALED).encode()
    try:
        return SEALED + _box(settings).rotate(token).decode()
    except InvalidToken as exc:
        raise SecretUnavailable("a stored secret was sealed with a key no longer given") from exc


def reseal_all(session: Session, settings: Settings) -> int:
    """Every stored secret sealed again with the newest key; how many were sealed."""
    from dripcare.models import ClinicTransport, DkimKey

    count = 0
    for row in session.scalars(select(ClinicTransport)):
        if not is_reference(row.smtp_url):
            row.smtp_url, count = reseal(settings, row.smtp_url), count + 1
    for key in session.scalars(select(DkimKey)):
        key.private_key, count = reseal(settings, key.private_key), count + 1
    session.flush()
    return count
