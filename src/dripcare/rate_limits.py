"""Token buckets: how long a key must wait before its next unit of work.

One bucket per key, in this process or shared through Redis: with several processes, point
DRIPCARE_RATELIMIT_URL at Redis so they share one budget per key; without it each process keeps
its own (fine for one process, the embedded default). The API limits requests per key with it
(web/ratelimit.py), the sender limits sends per recipient domain (send_limits.py).
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

import redis

from dripcare.config import Settings


class Limiter(Protocol):
    def acquire(self, key: str, rate: float | None = None, burst: int | None = None) -> float:
        """0 when the request may go ahead, else the seconds to wait before retrying.

        `rate` and `burst` override the limiter's own for this key (send_limits.py keeps
        one limiter for many recipient domains, each with its own rate)."""
        ...


class MemoryLimiter:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, rate: float | None = None, burst: int | None = None) -> float:
        rate, burst = rate or self.rate, burst or self.burst
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(burst), now))
            tokens = min(float(burst), tokens + (now - last) * rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / rate


# A token bucket kept in one Redis hash, updated atomically.
_BUCKET = """
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return tostring(wait)
"""


class RedisLimiter:
    def __init__(self, url: str, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._client = redis.Redis.from_url(url)
        self._script = self._client.register_script(_BUCKET)

    def acquire(self, key: str, rate: float | None = None, burst: int | None = None) -> float:
        wait = self._script(
            keys=[f"dripcare:ratelimit:{key}"],
            args=[rate or self.rate, burst or self.burst, time.time()],
        )
        return float(wait)


def make_limiter(
    settings: Settings, rate: float | None = None, burst: int | None = None
) -> Limiter:
    """The API keys' limiter, or with `rate` and `burst` another budget on the same store."""
    rate = rate or settings.api_rate_per_second
    burst = burst or settings.api_rate_burst
    if settings.ratelimit_url:
        return RedisLimiter(settings.ratelimit_url, rate, burst)
    return MemoryLimiter(rate, burst)
