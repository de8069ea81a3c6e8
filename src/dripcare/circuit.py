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

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dripcare import backoff
from dripcare.models import TransportCircuit
from dripcare.transports import TransportFailure

log = logging.getLogger(__name__)

PLATFORM = "platform"  # the transport of DRIPCARE_SMTP_URL
PROBE_BASE_SECONDS, PROBE_MAX_SECONDS = 30.0, 900.0
# A probe that never reports (its worker died) frees the probe after this long.
PROBE_LEASE = timedelta(seconds=PROBE_MAX_SECONDS)


class Gate(enum.StrEnum):
    CLOSED = "closed"  # send as usual
    PROBE = "probe"  # this batch tries the paused transport
    PAUSED = "paused"  # release the batch unsent


def gate(session: Session, transport: str, now: datetime) -> Gate:
    """May a batch go through `transport` now? Only one batch at a time probes an open one."""
    is_open = session.scalar(
        select(TransportCircuit.is_open).where(TransportCircuit.transport == transport)
    )
    if not is_open:
        return Gate.CLOSED
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
    row.last_error = str(failure)[:1000]
    row.updated_at = now
    return opened


def give_back_probe(session: Session, transport: str, now: datetime) -> None:
    """A probe that sent nothing proves nothing: let the next batch probe at once."""
    session.execute(
        update(TransportCircuit)
        .where(TransportCircuit.transport == transport, TransportCircuit.is_open.is_(True))
        .values(probe_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )


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


def circuits(session: Session) -> list[TransportCircuit]:
    """Every transport that has failed at least once, open or closed again."""
    return list(session.scalars(select(TransportCircuit).order_by(TransportCircuit.transport)))
