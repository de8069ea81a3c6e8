"""The audit log: who published a campaign, issued an API key, signed in, exported or erased a
patient, and when.

Rows are only ever added, in the same transaction as the action they describe, so an action
that rolls back leaves no trace and one that commits cannot lose its record. Patients appear
by id only: the log must not become a second copy of the personal data an erasure removes.
"""

from __future__ import annotations

import enum
import getpass
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from dripcare.models import ActorKind, AdminUser, AuditEvent, utcnow


class Action(enum.StrEnum):
    CAMPAIGN_PUBLISH = "campaign.publish"
    CAMPAIGN_ROLLBACK = "campaign.rollback"
    API_KEY_CREATE = "apikey.create"
    API_KEY_REVOKE = "apikey.revoke"
    SIGN_IN = "admin.sign-in"
    SIGN_IN_FAILED = "admin.sign-in-failed"
    PATIENT_EXPORT = "patient.export"
    PATIENT_ERASE = "patient.erase"
    PURGE = "data.purge"
    TRANSPORT_RETRY = "transport.retry"
    QUIET_HOURS = "sending.quiet-hours"
    DOMAIN_ASSIGN = "sending.domain-assign"
    DOMAIN_REMOVE = "sending.domain-remove"
    TRANSPORT_SET = "sending.transport-set"
    TRANSPORT_CLEAR = "sending.transport-clear"
    DKIM_GENERATE = "sending.dkim-generate"
    RED_FLAG_ACKNOWLEDGE = "red-flag.acknowledge"
    RED_FLAG_RESOLVE = "red-flag.resolve"
    ESCALATION_SET = "red-flag.escalation-set"


@dataclass(frozen=True)
class Actor:
    """Who acted: an admin user, an API key, an operator at the command line, or dripcare."""

    kind: ActorKind
    name: str
    id: int | None = None

    @classmethod
    def admin(cls, user: AdminUser) -> Actor:
        return cls(ActorKind.ADMIN, user.email, user.id)

    @classmethod
    def api_key(cls, key_id: int) -> Actor:
        return cls(ActorKind.API_KEY, f"API key {key_id}", key_id)

    @classmethod
    def cli(cls) -> Actor:
        """The operating-system user running `dripcare`: on a shared host, that names a person."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no name for this uid (a container's nobody)
            user = "unknown"
        return cls(ActorKind.CLI, user)


SYSTEM = Actor(ActorKind.SYSTEM, "dripcare")


def as_actor(author: Actor | str) -> Actor:
    """A bare name (a campaign import's "import") is dripcare acting on its own."""
    return author if isinstance(author, Actor) else Actor(ActorKind.SYSTEM, author)


def record(
    session: Session,
    actor: Actor,
    action: Action,
    *,
    clinic_id: int | None,
    target: tuple[str, object] | None = None,
    detail: str = "",
    now: datetime | None = None,
) -> AuditEvent:
    """Add one event; `target` is (kind, id), e.g. ("patient", 12)."""
    kind, target_id = target if target is not None else ("", "")
    event = AuditEvent(
        at=now or utcnow(),
        clinic_id=clinic_id,
        actor_kind=actor.kind,
        actor_id=actor.id,
        actor=actor.name[:320],
        action=str(action),
        target_kind=kind,
        target_id=str(target_id)[:64],
        detail=detail[:500],
    )
    session.add(event)
    session.flush()
    return event


def events(
    session: Session,
    clinic_id: int | None,
    *,
    limit: int = 100,
    before: int | None = None,
    action: str = "",
) -> list[AuditEvent]:
    """Newest first; `clinic_id` None means every clinic (a platform admin's or operator's view).

    `before` is the id of the last event of the previous page: served by the index on
    (clinic_id, id) for one clinic, by the primary key for all.
    """
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if clinic_id is not None:
        query = query.where(AuditEvent.clinic_id == clinic_id)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    if action:
        query = query.where(AuditEvent.action == action)
    return list(session.scalars(query))
