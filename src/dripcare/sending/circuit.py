"""The circuit breaker of a transport: pause sending while it refuses us, probe, resume.

A transport that refuses our sender (MAIL FROM), our login (535), our TLS or our domain's
authentication refuses every patient alike: sending on would burn every message's attempts and
suppressing would drop patients for our own misconfiguration. So the circuit opens: batches are
released unclaimed (nothing lost, cancelled or counted), an operator is told (ERROR log, the
`dripcare_transport_circuit_open` metric), and one batch at a time probes the transport with
backoff until it works, which closes the circuit.

The state is a database row per transport, not Redis: every worker host and the admin already
share the database, the embedded SQLite setup has no Redis, and taking the probe is one
conditional UPDATE that only one worker can win.
"""

from __future__ import annotations

import enum
import logging
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dripcare.models import TransportCircuit
from dripcare.people import audit
from dripcare.people.audit import Action, Actor
from dripcare.redaction import without_passwords
from dripcare.sending import backoff
from dripcare.sending.transports import TransportFailure

log = logging.getLogger(__name__)

PLATFORM = "platform"  # the transport of DRIPCARE_SMTP_URL
CLINIC_PREFIX = "clinic:"  # + the clinic's id: that clinic's own SMTP server (clinic_transports)
PROBE_BASE_SECONDS, PROBE_MAX_SECONDS = 30.0, 900.0
# A probe that never reports (its worker died) frees the probe after this long.
PROBE_LEASE = timedelta(seconds=PROBE_MAX_SECONDS)


class Gate(enum.StrEnum):
    CLOSED = "closed"  # send as usual
    PROBE = "probe"  # this batch tries the paused transport
    PAUSED = "paused"  # release the batch unsent


def key_for(clinic_id: int | None) -> str:
    """The circuit of a clinic's own server, or the platform's for None."""
    return PLATFORM if clinic_id is None else f"{CLINIC_PREFIX}{clinic_id}"


def clinic_of(key: str) -> int | None:
    """The clinic whose own server `key` is, None for the platform's."""
    return int(key.removeprefix(CLINIC_PREFIX)) if key.startswith(CLINIC_PREFIX) else None


def open_keys(session: Session) -> set[str]:
    """Every open circuit, in one query: usually none, and then a batch needs nothing more."""
    return set(
        session.scalars(
            select(TransportCircuit.transport).where(TransportCircuit.is_open.is_(True))
        )
    )


def paused_keys(session: Session, now: datetime) -> set[str]:
    """Open circuits not yet due for a probe: the dispatcher leaves their clinics' rows alone."""
    return set(
        session.scalars(
            select(TransportCircuit.transport).where(
                TransportCircuit.is_open.is_(True), TransportCircuit.probe_at > now
            )
        )
    )


def gate(session: Session, transport: str, now: datetime) -> Gate:
    """May a batch go through `transport` now? Only one batch at a time probes an open one."""
    is_open = session.scalar(
        select(TransportCircuit.is_open).where(TransportCircuit.transport == transport)
    )
    if not is_open:
        return Gate.CLOSED
    return take_probe(session, transport, now)


def take_probe(session: Session, transport: str, now: datetime) -> Gate:
    """The gate of a transport known to be open: PROBE for the one batch that wins it."""
    taken = session.execute(
        update(TransportCircuit)
        .where(
            TransportCircuit.transport == transport,
            TransportCircuit.is_open.is_(True),
            TransportCircuit.probe_at <= now,
        )
        .values(probe_at=now + PROBE_LEASE, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return Gate.PROBE if taken.rowcount else Gate.PAUSED  # type: ignore[attr-defined]


def paused(session: Session, transport: str, now: datetime) -> bool:
    """Open and not yet due for a probe: claiming batches for it now would only churn."""
    found = session.scalar(
        select(TransportCircuit.transport).where(
            TransportCircuit.transport == transport,
            TransportCircuit.is_open.is_(True),
            TransportCircuit.probe_at > now,
        )
    )
    return found is not None


def record_failure(
    session: Session, transport: str, failure: TransportFailure, now: datetime
) -> bool:
    """Open the circuit (or keep it open) and set the next probe further out; True if it was
    closed until now (time to tell people)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(
        dialect.insert(TransportCircuit)
        .values(transport=transport, is_open=False, failures=0, stage="", last_error="")
        .on_conflict_do_nothing(index_elements=["transport"])
    )
    row = session.execute(
        select(TransportCircuit).where(TransportCircuit.transport == transport).with_for_update()
    ).scalar_one()
    opened = not row.is_open
    if opened:
        row.is_open, row.failures, row.opened_at = True, 0, now
        log.error(
            "transport %s paused at %s: %s. No message is lost, cancelled or suppressed; it is "
            "retried with backoff. Fix the SMTP settings or the sender's domain.",
            transport,
            failure.stage or "connect",
            failure,
        )
    row.failures += 1
    row.probe_at = now + backoff.delay(row.failures, PROBE_BASE_SECONDS, PROBE_MAX_SECONDS)
    row.stage = str(failure.stage or "")
    row.last_error = without_passwords(str(failure))[:1000]  # shown in the admin
    row.updated_at = now
    return opened


def give_back_probe(session: Session, transport: str, now: datetime) -> None:
    """A probe that sent nothing proves nothing: let the next batch probe at once."""
    probe_now(session, transport, now)


def record_success(session: Session, transport: str, now: datetime) -> bool:
    """Close the circuit after a probe got through; True if it was open."""
    closed = session.execute(
        update(TransportCircuit)
        .where(TransportCircuit.transport == transport, TransportCircuit.is_open.is_(True))
        .values(is_open=False, failures=0, probe_at=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if closed.rowcount:  # type: ignore[attr-defined]
        log.warning("transport %s works again; sending resumed", transport)
    return bool(closed.rowcount)  # type: ignore[attr-defined]


def probe_now(session: Session, transport: str, now: datetime) -> bool:
    """An operator fixed the server: the next batch probes it at once instead of at probe_at.
    False when the circuit is not open (nothing to retry)."""
    done = session.execute(
        update(TransportCircuit)
        .where(TransportCircuit.transport == transport, TransportCircuit.is_open.is_(True))
        .values(probe_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


def retry_now(session: Session, transport: str, actor: Actor, now: datetime) -> bool:
    """A platform admin says the server is fixed: probe it with the next batch, audited.
    False when the circuit is not open (it closed meanwhile)."""
    if not probe_now(session, transport, now):
        return False
    audit.record(
        session,
        actor,
        Action.TRANSPORT_RETRY,
        clinic_id=clinic_of(transport),
        target=("transport", transport),
        now=now,
    )
    return True


def paused_circuits(session: Session, clinic_id: int | None = None) -> list[TransportCircuit]:
    """Open circuits: every one, or those a clinic's emails go through (its own server's and
    the platform's)."""
    query = select(TransportCircuit).where(TransportCircuit.is_open.is_(True))
    if clinic_id is not None:
        query = query.where(TransportCircuit.transport.in_([PLATFORM, key_for(clinic_id)]))
    return list(session.scalars(query.order_by(TransportCircuit.transport)))


def forget(session: Session, transport: str) -> None:
    """The transport is gone (a clinic back on the platform's server): its pause with it."""
    session.execute(delete(TransportCircuit).where(TransportCircuit.transport == transport))


def circuits(session: Session) -> list[TransportCircuit]:
    """Every transport that has failed at least once, open or closed again."""
    return list(session.scalars(select(TransportCircuit).order_by(TransportCircuit.transport)))
