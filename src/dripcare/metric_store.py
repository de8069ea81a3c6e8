"""Counters and histograms that worker processes add to and the API's /metrics reads.

Send latency and dispatcher ticks happen in Celery workers, on any number of hosts, while
Prometheus scrapes the API. prometheus_client's multiprocess mode shares values through files in
one directory, so it only adds up the processes of one host, and a pushgateway would keep one
series per worker. Here every observation is added to Redis (the broker's or the rate limiter's)
with HINCRBY/HINCRBYFLOAT in one pipeline per batch: the totals are the fleet's, a restarted
worker loses nothing, and a scrape is one HGETALL per metric. Without Redis (the embedded
setup, where `dripcare dev` runs the API and the worker in one process) they stay in memory.

A metric store that cannot be reached costs a warning, never a send: metrics are not worth an
email.
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

import redis

from dripcare.config import Settings, get_settings

log = logging.getLogger(__name__)
PREFIX = "dripcare:metrics:"


@dataclass(frozen=True)
class Histogram:
    """A histogram's name and upper bounds (seconds); +Inf is implied."""

    name: str
    bounds: tuple[float, ...]


SMTP_SEND = Histogram(
    "smtp_send_seconds", (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
)
DISPATCH_TICK = Histogram(
    "dispatch_tick_seconds", (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
)
HISTOGRAMS = (SMTP_SEND, DISPATCH_TICK)


@dataclass
class Snapshot:
    """Everything stored: counters and gauges by name, histograms as per-bucket counts."""

    values: dict[str, float] = field(default_factory=dict)
    buckets: dict[str, list[int]] = field(default_factory=dict)  # one per bound, then +Inf
    sums: dict[str, float] = field(default_factory=dict)

    def cumulative(self, histogram: Histogram) -> list[tuple[str, float]]:
        """Prometheus buckets: (le, observations at or below it), ending with +Inf."""
        counts = self.buckets.get(histogram.name, [0] * (len(histogram.bounds) + 1))
        running, result = 0, []
        for bound, count in zip((*map(str, histogram.bounds), "+Inf"), counts, strict=True):
            running += count
            result.append((bound, float(running)))
        return result


@dataclass
class Batch:
    """Observations gathered in one process and added to the store at once."""

    add: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    set: dict[str, float] = field(default_factory=dict)
    observed: dict[Histogram, list[float]] = field(default_factory=lambda: defaultdict(list))

    def observe(self, histogram: Histogram, values: Sequence[float]) -> None:
        self.observed[histogram].extend(values)


class MetricStore(Protocol):
    def record(self, batch: Batch) -> None: ...

    def snapshot(self) -> Snapshot: ...


def _bucket(histogram: Histogram, value: float) -> int:
    return bisect.bisect_left(histogram.bounds, value)


class MemoryStore:
    """This process's observations only: right when the API and the worker are one process."""

    def __init__(self) -> None:
        self._data = Snapshot()
        self._lock = threading.Lock()

    def record(self, batch: Batch) -> None:
        data = self._data
        with self._lock:
            for name, amount in batch.add.items():
                data.values[name] = data.values.get(name, 0.0) + amount
            data.values.update(batch.set)
            for histogram, values in batch.observed.items():
                counts = data.buckets.setdefault(histogram.name, [0] * (len(histogram.bounds) + 1))
                for value in values:
                    counts[_bucket(histogram, value)] += 1
                data.sums[histogram.name] = data.sums.get(histogram.name, 0.0) + sum(values)

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(
                dict(self._data.values),
                {k: list(v) for k, v in self._data.buckets.items()},
                dict(self._data.sums),
            )


class RedisStore:
    """The fleet's observations in Redis: one hash of values, one hash per histogram."""

    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    def record(self, batch: Batch) -> None:
        pipe = self._client.pipeline(transaction=False)
        for name, amount in batch.add.items():
            pipe.hincrbyfloat(PREFIX + "values", name, amount)
        for name, latest in batch.set.items():
            pipe.hset(PREFIX + "values", name, latest)
        for histogram, values in batch.observed.items():
            key = PREFIX + histogram.name
            counts: dict[int, int] = defaultdict(int)
            for value in values:
                counts[_bucket(histogram, value)] += 1
            for index, count in counts.items():
                pipe.hincrby(key, str(index), count)
            pipe.hincrbyfloat(key, "sum", sum(values))
        try:
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("metrics not recorded (Redis: %s)", type(exc).__name__)

    def snapshot(self) -> Snapshot:
        pipe = self._client.pipeline(transaction=False)
        pipe.hgetall(PREFIX + "values")
        for histogram in HISTOGRAMS:
            pipe.hgetall(PREFIX + histogram.name)
        values, *hashes = pipe.execute()
        data = Snapshot({k.decode(): float(v) for k, v in values.items()})
        for histogram, stored in zip(HISTOGRAMS, hashes, strict=True):
            data.buckets[histogram.name] = [
                int(stored.get(str(i).encode(), 0)) for i in range(len(histogram.bounds) + 1)
            ]
            data.sums[histogram.name] = float(stored.get(b"sum", 0))
        return data


def store_url(settings: Settings) -> str:
    """DRIPCARE_METRICS_REDIS_URL, else the rate limiter's Redis, else a Redis broker."""
    if settings.metrics_redis_url:
        return settings.metrics_redis_url
    if settings.ratelimit_url:
        return settings.ratelimit_url
    return settings.broker_url if settings.broker_url.startswith(("redis://", "rediss://")) else ""


@lru_cache
def _store_for(url: str) -> MetricStore:
    return RedisStore(url) if url else MemoryStore()


def get_store() -> MetricStore:
    return _store_for(store_url(get_settings()))
