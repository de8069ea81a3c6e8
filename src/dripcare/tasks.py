"""Celery tasks: thin wrappers; the work is in `dispatch` and `delivery`."""

from __future__ import annotations

import functools
import logging
import time
from datetime import timedelta
from typing import Any

import httpx
from celery import signals

from dripcare import db_faults, metrics
from dripcare.celery_app import receiver, task
from dripcare.config import get_settings
from dripcare.db import session_scope
from dripcare.db_faults import DatabaseUnavailable
from dripcare.metric_store import get_store
from dripcare.models import utcnow
from dripcare.outbox import retention
from dripcare.outbox.dispatch import Claim, dispatch_tick
from dripcare.people import audit
from dripcare.redaction import withheld
from dripcare.sending import alerts, delivery
from dripcare.sending.transports import transport_from_url

log = logging.getLogger(__name__)


@task(name="dripcare.dispatch", ignore_result=True, acks_late=False)
def dispatch() -> dict[str, int]:
    """Recover expired leases and hand due messages to send tasks, one task per batch."""
    settings = get_settings()
    start = time.perf_counter()
    limit = settings.max_per_tick  # clinics whose transport is paused are left out
    result = dispatch_tick(
        session_scope,
        _enqueue,
        batch_size=settings.batch_size,
        max_per_tick=limit,
        lease=timedelta(seconds=settings.lease_seconds),
        max_queued=settings.max_queued,
    )
    metrics.record_tick(get_store(), time.perf_counter() - start, result)
    if result.full:
        dispatch.delay()  # more may be due: keep going instead of waiting for the next beat
    if result.claimed or result.recovered:
        log.info("dispatch: %s", result)
    return {"recovered": result.recovered, "claimed": result.claimed, "batches": result.batches}


def _enqueue(claim: Claim) -> None:
    send_batch.delay(claim.token, claim.message_ids)


@task(name="dripcare.send_batch", ignore_result=True, acks_late=True)
def send_batch(token: str, message_ids: list[int]) -> dict[str, Any]:
    settings = get_settings()
    transport = transport_from_url(settings.smtp_url, settings.smtp_timeout)
    try:
        result = delivery.send_batch(session_scope, token, message_ids, transport, settings)
    except DatabaseUnavailable as exc:  # nothing was sent; the claim's lease gives the rows back
        log.warning(
            "batch of %d not started: %s; lease recovery requeues it", len(message_ids), exc
        )
        return {"sent": 0, "deferred": 0, "failed": 0, "cancelled": 0}
    counts = {
        "messages_sent": result.sent,
        "messages_deferred": result.deferred,
        "messages_failed": result.failed,
        "messages_suppressed": result.suppressed,
        "messages_bounced": result.bounced,
    }
    metrics.record_batch(get_store(), counts, result.send_seconds)
    return {
        "sent": result.sent,
        "deferred": result.deferred,
        "failed": result.failed,
        "cancelled": result.cancelled,
    }


@receiver(signals.worker_ready, signals.worker_process_init)
def _replay_send_journals(**_: Any) -> None:
    """A process that starts (a worker, or the child replacing a killed one) records what gone
    processes on this host had sent, before their lease runs out (delivery.replay_journals)."""
    try:
        delivery.replay_journals(session_scope, get_settings())
    except Exception as exc:  # the next process to start tries again; lease recovery is behind
        log.warning("send journals not replayed: %s", db_faults.fault_of(exc) or withheld(exc))


@task(name="dripcare.deliver_alerts", ignore_result=True, acks_late=True)
def deliver_alerts() -> dict[str, int]:
    """Tell clinics about red-flag check-ins (email, webhook); retried until acknowledged."""
    settings = get_settings()
    transport = transport_from_url(settings.smtp_url, settings.smtp_timeout)
    return alerts.deliver_due(session_scope, transport, _webhook_client(), settings=settings)


@functools.cache
def _webhook_client() -> httpx.Client:
    """One client per process, made on first use (after the fork): building one loads the CA
    bundle, ~40 ms of CPU, which every tick paid when beat ticks every second."""
    return httpx.Client(timeout=10)


@task(name="dripcare.purge", ignore_result=True, acks_late=False)
def purge() -> dict[str, int]:
    """Nightly: delete finished rows older than DRIPCARE_RETENTION_DAYS (retention.py)."""
    settings = get_settings()
    if not settings.retention_days:
        return {}
    cutoff = utcnow() - timedelta(days=settings.retention_days)
    result = retention.purge(
        session_scope, cutoff, batch_size=settings.retention_batch_size, actor=audit.SYSTEM
    )
    log.info("purge before %s: %s", cutoff.date(), result.counts)
    return result.counts
