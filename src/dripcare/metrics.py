"""What /metrics says: the outbox as the database has it now, and the workers' timings.

Numbers about the outbox are read from the database at scrape time, not counted by the
processes that change it: with workers on many hosts, only the database knows the whole
outbox, and a restarted process would lose its counts. Timings and outcome totals can only be
observed where they happen, in the workers; they are added up in the metric store
(metric_store.py) and read from there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from dripcare.db import session_scope
from dripcare.metric_store import DISPATCH_TICK, SMTP_SEND, Batch, MetricStore, get_store
from dripcare.models import utcnow
from dripcare.outbox import reporting
from dripcare.outbox.dispatch import TickResult
from dripcare.redaction import withheld
from dripcare.sending import circuit

log = logging.getLogger(__name__)

# Outcome totals the workers add to the store: name → HELP.
OUTCOMES = {
    "messages_sent": "Emails the SMTP server accepted.",
    "messages_deferred": "Sends refused for now (4xx, server unreachable); retried later.",
    "messages_failed": "Messages given up on: permanent refusal, template error, or too many "
    "temporary failures.",
    "messages_suppressed": "Messages cancelled at send time because the address is suppressed "
    "(unsubscribed or bounced before).",
    "messages_bounced": "Messages the mail server refused for good with a reply code (a bounce "
    "at send time); the address is then suppressed.",
}
LAST_TICK = "dispatch_last_tick_timestamp_seconds"
# (name, HELP) of the gauges that say whether a source could be read.
DATABASE_UP = ("dripcare_database_up", "1 when the database could be read; 0: no outbox numbers.")
STORE_UP = (
    "dripcare_metric_store_up",
    "1 when the workers' metric store (Redis) could be read; 0: their numbers are missing.",
)


def record_batch(store: MetricStore, counts: dict[str, int], send_seconds: list[float]) -> None:
    """A send batch's outcomes (keys of OUTCOMES) and SMTP latencies."""
    batch = Batch()
    for name, count in counts.items():
        batch.add[name] += count
    batch.observe(SMTP_SEND, send_seconds)
    store.record(batch)


def record_tick(store: MetricStore, seconds: float, result: TickResult) -> None:
    """One dispatcher pass: its duration, and when it ended (the "no ticks" signal)."""
    batch = Batch()
    batch.observe(DISPATCH_TICK, [seconds])
    batch.add["dispatch_claimed"] += result.claimed
    batch.add["dispatch_recovered"] += result.recovered
    batch.set[LAST_TICK] = time.time()
    store.record(batch)


class OutboxCollector(Collector):
    """Metric families read at each scrape from the database and the metric store."""

    def __init__(self, store: MetricStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        start = time.perf_counter()
        yield from self._database()
        yield from self._processes()
        yield GaugeMetricFamily(
            "dripcare_metrics_scrape_seconds",
            "Time this scrape spent reading the database and the metric store.",
            value=time.perf_counter() - start,
        )

    def _database(self) -> list[Metric]:
        """The outbox's families, or only `dripcare_database_up 0`: a scrape that fails
        altogether would also hide the workers' numbers."""
        try:
            with session_scope() as session:
                families = [
                    *self._outbox(session, utcnow()),
                    *self._alerts(session, utcnow()),
                    self._circuits(session),
                ]
        except SQLAlchemyError as exc:
            log.warning("metrics: the database could not be read\n%s", withheld(exc))
            return [_up(DATABASE_UP, 0)]
        return [_up(DATABASE_UP, 1), *families]

    def _outbox(self, session: Session, now: datetime) -> Iterator[Metric]:
        rows = GaugeMetricFamily(
            "dripcare_outbox_messages",
            "Outbox rows (one per email, sent or not) by clinic and status.",
            labels=["clinic", "status"],
        )
        for (clinic, status), count in sorted(reporting.outbox_counts(session).items()):
            rows.add_metric([str(clinic), status], count)
        yield rows
        oldest = reporting.oldest_due_unsent(session, now)
        yield GaugeMetricFamily(
            "dripcare_outbox_oldest_due_seconds",
            "Age of the oldest message that is due and not sent (scheduled, queued or sending); "
            "0 when none is. Growing: beat, the dispatcher or the workers are not running.",
            value=(now - oldest).total_seconds() if oldest else 0.0,
        )

    def _alerts(self, session: Session, now: datetime) -> Iterator[Metric]:
        counts, oldest = reporting.undelivered_alerts(session)
        backlog = GaugeMetricFamily(
            "dripcare_clinic_alerts_undelivered",
            "Red-flag clinic alerts (email or webhook) not delivered yet, by clinic. Delivered "
            "means the clinic's mail server accepted it or its webhook answered 2xx; dripcare "
            "has no acknowledgement by a person.",
            labels=["clinic"],
        )
        for clinic, count in sorted(counts.items()):
            backlog.add_metric([str(clinic)], count)
        yield backlog
        yield GaugeMetricFamily(
            "dripcare_clinic_alert_oldest_undelivered_seconds",
            "Seconds since the red-flag check-in behind the oldest undelivered clinic alert "
            "(accepted by the mail server or a 2xx from the webhook counts as delivered; no "
            "person acknowledges alerts in dripcare); 0 when every alert is delivered.",
            value=(now - oldest).total_seconds() if oldest else 0.0,
        )

    def _circuits(self, session: Session) -> Metric:
        gauge = GaugeMetricFamily(
            "dripcare_transport_circuit_open",
            "1 while a transport is paused because its mail server refuses our sender, login, "
            "TLS or domain (circuit.py), else 0. The platform transport (DRIPCARE_SMTP_URL) "
            "always has a series; a clinic's own server (clinic:<id>) once it has failed.",
            labels=["transport"],
        )
        states = {circuit.PLATFORM: False} | {
            r.transport: r.is_open for r in circuit.circuits(session)
        }
        for transport, is_open in sorted(states.items()):
            gauge.add_metric([transport], int(is_open))
        return gauge

    def _processes(self) -> Iterator[Metric]:
        try:
            data = self.store.snapshot()
        except Exception:  # the database's numbers still stand without the store's
            yield _up(STORE_UP, 0)
            return
        yield _up(STORE_UP, 1)
        for name, help_text in OUTCOMES.items():
            yield CounterMetricFamily(
                f"dripcare_{name}", help_text, value=data.values.get(name, 0.0)
            )
        yield CounterMetricFamily(
            "dripcare_dispatch_claimed",
            "Messages the dispatcher claimed and handed to send tasks.",
            value=data.values.get("dispatch_claimed", 0.0),
        )
        yield CounterMetricFamily(
            "dripcare_dispatch_recovered",
            "Messages whose lease expired (worker gone) and were queued again.",
            value=data.values.get("dispatch_recovered", 0.0),
        )
        yield GaugeMetricFamily(
            f"dripcare_{LAST_TICK}",
            "Unix time at which the last dispatcher pass ended; 0 before the first.",
            value=data.values.get(LAST_TICK, 0.0),
        )
        for histogram, help_text in (
            (
                SMTP_SEND,
                "Time the SMTP server took to take one email (MAIL FROM to the reply to its data).",
            ),
            (DISPATCH_TICK, "Time of one dispatcher pass: recover leases, claim, enqueue."),
        ):
            yield HistogramMetricFamily(
                f"dripcare_{histogram.name}",
                help_text,
                buckets=data.cumulative(histogram),
                sum_value=data.sums.get(histogram.name, 0.0),
            )


def _up(gauge: tuple[str, str], value: int) -> GaugeMetricFamily:
    return GaugeMetricFamily(*gauge, value=value)


def exposition() -> bytes:
    """The Prometheus text format of everything above."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OutboxCollector(get_store()))
    return generate_latest(registry)
