"""Admin users: who may sign in to the web admin, and for which clinic.

Passwords are hashed with Argon2id (argon2-cffi's defaults, RFC 9106's low-memory profile).
An unknown email costs the same hash as a wrong password, so timing does not reveal which
emails have accounts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from dripcare.config import Settings
from dripcare.errors import UserError
from dripcare.models import ActorKind, AdminUser, Clinic
from dripcare.people import audit, login_throttle
from dripcare.people.audit import Action, Actor
from dripcare.validation import normalize_email

MIN_PASSWORD_LENGTH = 12
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a password anyone has: spends the same work on unknown emails")


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(
            f"password is too short: use at least {MIN_PASSWORD_LENGTH} characters "
            "(a few unrelated words are easy to remember)"
        )
    if len(password) > 1024:
        raise UserError("password is too long: use at most 1024 characters")
    return password


def create_admin_user(
    session: Session, *, email: str, password: str, clinic_id: int | None, platform: bool
) -> AdminUser:
    """One clinic's admin (`clinic_id`), or a platform admin (`platform`), never both."""
    if platform == (clinic_id is not None):
        raise UserError("give either a clinic (--clinic ID) or --platform, not both or neither")
    address = normalize_email(email)
    if clinic_id is not None and session.get(Clinic, clinic_id) is None:
        raise UserError(f"no clinic with id {clinic_id}; see `dripcare clinic list`")
    if session.scalar(select(AdminUser.id).where(AdminUser.email == address)) is not None:
        raise UserError(f"an admin user with email {address} exists already")
    user = AdminUser(
        email=address,
        password_hash=_hasher.hash(check_password(password)),
        clinic_id=clinic_id,
        is_platform_admin=platform,
    )
    session.add(user)
    session.flush()
    return user


class TooManyAttempts(UserError):
    def __init__(self, minutes: int) -> None:
        unit = "minute" if minutes == 1 else "minutes"
        super().__init__(f"Too many sign-in attempts. Try again in {minutes} {unit}.")
        self.minutes = minutes


@dataclass(frozen=True)
class SignIn:
    email: str
    password: str
    client_address: str


def authenticate(
    session: Session, settings: Settings, attempt: SignIn, now: datetime
) -> AdminUser | None:
    """The user these credentials name, or None; raises TooManyAttempts while throttled.

    Failures are recorded for the email whether or not it has an account, so throttling
    reveals nothing either.
    """
    email_key = login_throttle.email_key(attempt.email)
    keys = [email_key, login_throttle.address_key(attempt.client_address)]
    login_throttle.hold(session, keys)
    wait = login_throttle.wait_minutes(session, settings, keys, now)
    if wait:
        raise TooManyAttempts(wait)
    user = session.scalar(select(AdminUser).where(AdminUser.email == attempt.email.strip().lower()))
    if user is None or not _verify(user.password_hash, attempt.password):
        if user is None:
            _verify(_DUMMY_HASH, attempt.password)
        login_throttle.record_failure(session, settings, keys, now)
        _audit_sign_in(session, user, attempt, Action.SIGN_IN_FAILED, now)
        return None
    _audit_sign_in(session, user, attempt, Action.SIGN_IN, now)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(attempt.password)
    login_throttle.forget(session, email_key)
    user.last_login_at = now
    return user


def _audit_sign_in(
    session: Session, user: AdminUser | None, attempt: SignIn, action: Action, now: datetime
) -> None:
    """What was typed in the email field is kept only when it names an account: it might be
    a password typed in the wrong field."""
    actor = Actor.admin(user) if user else Actor(ActorKind.ADMIN, "(no such account)")
    detail = f"from {attempt.client_address}"
    clinic_id = user.clinic_id if user else None
    audit.record(session, actor, action, clinic_id=clinic_id, detail=detail, now=now)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def clinics_for(session: Session, user: AdminUser) -> list[Clinic]:
    """The clinics this user may administer: one, or all for a platform admin."""
    query = select(Clinic).order_by(Clinic.id)
    if not user.is_platform_admin:
        query = query.where(Clinic.id == user.clinic_id)
    return list(session.scalars(query))
