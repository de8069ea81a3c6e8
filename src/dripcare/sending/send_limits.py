"""How fast emails may leave: per transport and per recipient domain, for all workers at once.

Large mailbox providers throttle a sender that goes too fast, with 421/451 replies such as
"4.7.28 ... rate limited": retrying those at full speed burns the message's attempts and the
sender's reputation. Token buckets (rate_limits.py: in Redis when DRIPCARE_RATELIMIT_URL or a
Redis broker is set, so every worker host shares one budget; in this process otherwise, as in
`dripcare dev`) keep the transport and each listed domain under its rate, and a "slow down"
reply cuts that domain's rate to a quarter for DRIPCARE_SLOWDOWN_SECONDS. A provider that
receives mail for many domains (PROVIDER_GROUPS) is one bucket under its group's name, which
may also cap how many sends to it are under way at once (DRIPCARE_DOMAIN_CONCURRENCY), so a slow
provider ties up a few workers at most. With no limits configured and no slow-down in force, the
send path makes no extra call at all.
"""

from __future__ import annotations

import random
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import TypeVar

import redis

from dripcare.config import Settings
from dripcare.rate_limits import Limiter, MemoryLimiter, RedisLimiter

SLOWDOWN_FACTOR = 4
# A domain with no configured rate that asks us to slow down gets this many per second.
UNLISTED_SLOW_RATE = 1.0
_CACHE_SECONDS = 5.0
_PER = {"s": 1.0, "m": 60.0, "h": 3600.0}
_LIMIT = re.compile(r"\s*([a-z0-9.-]+)\s*=\s*([0-9]+(?:\.[0-9]+)?)\s*/\s*([smh])\s*", re.I)
_CONCURRENCY = re.compile(r"\s*([a-z0-9.-]+)\s*=\s*([0-9]+)\s*", re.I)
# RFC 3463 4.7.0/4.7.28 and the wording providers use when they throttle a sender.
_SLOW_DOWN = re.compile(
    r"\b4\.7\.(?:0|28)\b|rate.?limit|too many|slow down|throttl|try again later", re.I
)


_GROUP_DOMAINS = {
    "outlook": "outlook.com hotmail.com live.com msn.com passport.com outlook.co.uk outlook.de "
    "outlook.fr outlook.es outlook.it outlook.jp outlook.com.au outlook.com.br hotmail.co.uk "
    "hotmail.de hotmail.fr hotmail.es hotmail.it hotmail.nl hotmail.be hotmail.ca hotmail.com.au "
    "hotmail.com.br hotmail.co.jp live.co.uk live.de live.fr live.nl live.it live.ca live.com.au "
    "live.be windowslive.com",
    "gmail": "gmail.com googlemail.com",
    "yahoo": "yahoo.com ymail.com rocketmail.com yahoo.co.uk yahoo.de yahoo.fr yahoo.es yahoo.it "
    "yahoo.ca yahoo.com.au yahoo.com.br yahoo.co.jp yahoo.co.in yahoo.com.mx aol.com aol.co.uk "
    "aol.de aim.com verizon.net",
    "icloud": "icloud.com me.com mac.com",
}
PROVIDER_GROUPS: dict[str, str] = {
    domain: group for group, domains in _GROUP_DOMAINS.items() for domain in domains.split()
}
"""Recipient domain -> the provider that receives its mail, as one rate-limit bucket.

Providers throttle per sender across all the domains they host (Microsoft's hotmail.co.uk and
outlook.com, Yahoo's ymail.com and aol.com since Yahoo owns AOL, ...): separate buckets per
domain would together send them several times the rate they accept. Domains not listed keep a
bucket of their own. A list, not an MX lookup, so the send path makes no DNS query.
"""


def bucket_of(address_or_domain: str) -> str:
    """The rate-limit bucket of an address or domain: its provider group, else the domain."""
    domain = address_or_domain.rpartition("@")[2].lower()
    return PROVIDER_GROUPS.get(domain, domain)


def parse_limits(text: str) -> dict[str, float]:
    """Read DRIPCARE_DOMAIN_LIMITS ("gmail=20/s,example.org=600/m") as per-second rates."""
    example = "gmail=20/s or example.org=2/s (or /m, /h)"
    return _by_bucket(text, _LIMIT, "DRIPCARE_DOMAIN_LIMITS", example, _per_second)


def parse_concurrency(text: str) -> dict[str, int]:
    """Read DRIPCARE_DOMAIN_CONCURRENCY ("gmail=5,example.org=2"): sends under way at once."""
    example = "gmail=5 or example.org=2"
    return _by_bucket(text, _CONCURRENCY, "DRIPCARE_DOMAIN_CONCURRENCY", example, _count)


def _count(match: re.Match[str]) -> int:
    return int(match[2])


_Value = TypeVar("_Value", float, int)


def _per_second(match: re.Match[str]) -> float:
    return float(match[2]) / _PER[match[3].lower()]


def _by_bucket(
    text: str,
    pattern: re.Pattern[str],
    setting: str,
    example: str,
    value: Callable[[re.Match[str]], _Value],
) -> dict[str, _Value]:
    """Comma-separated `name=value` entries by bucket, values more than zero.

    A name is a group or a domain; a domain in a group names its group, so "gmail.com=20/s"
    keeps meaning what it did.
    """
    found: dict[str, _Value] = {}
    for part in filter(str.strip, text.split(",")):
        match = pattern.fullmatch(part)
        if match is None or value(match) <= 0:
            raise ValueError(
                f"{setting}: {part.strip()!r} must look like {example}, more than zero"
            )
        bucket, given = bucket_of(match[1]), value(match)
        if found.get(bucket, given) != given:
            raise ValueError(
                f"{setting}: {match[1].lower()} is in the {bucket!r} group, which another "
                f"entry already sets differently; give {bucket}= once"
            )
        found[bucket] = given
    return found


def is_slow_down(code: int | None, reply: str) -> bool:
    """A temporary refusal that is about our sending rate, not about the message."""
    return code in (421, 450, 451) and bool(_SLOW_DOWN.search(reply))


class Slowdowns:
    """Domains that asked us to slow down, until when; in Redis (shared) or in this process.

    Each process looks a domain up in Redis at most every few seconds: a slow-down lasts
    minutes, and the send path must not pay a round trip per message for it.
    """

    def __init__(self, url: str, seconds: float) -> None:
        self.seconds = seconds
        self._client = redis.Redis.from_url(url) if url else None
        self._until: dict[str, tuple[float, float]] = {}  # domain -> (until, checked at)
        self._lock = threading.Lock()

    def add(self, domain: str) -> None:
        until = time.time() + self.seconds
        if self._client is not None:
            self._client.set(_key(domain), str(until), ex=max(1, round(self.seconds)))
        with self._lock:
            self._until[domain] = (until, time.monotonic())

    def active(self, domain: str) -> bool:
        now = time.monotonic()
        with self._lock:
            until, checked = self._until.get(domain, (0.0, -_CACHE_SECONDS))
        if self._client is not None and now - checked >= _CACHE_SECONDS:
            stored = self._client.get(_key(domain))
            until = float(stored) if stored else 0.0
            with self._lock:
                self._until[domain] = (until, now)
        return until > time.time()


def _key(domain: str) -> str:
    return f"dripcare:slowdown:{domain}"


@dataclass(frozen=True)
class Wait:
    """A message that must not go now: put it back for `delay` (at least a second, jittered
    so the put-back messages of one domain do not all come due in the same instant)."""

    what: str
    seconds: float
    limit: str = "rate limit"

    @property
    def reason(self) -> str:
        return f"{self.limit} for {self.what}; put back"

    @property
    def delay(self) -> timedelta:
        return timedelta(seconds=max(self.seconds, 1.0) * random.uniform(1.0, 1.5))


@dataclass(frozen=True)
class Sending:
    """A send under way to a group with a concurrency cap; done() gives its place back."""

    slots: ConnectionSlots | None = None
    token: str = ""

    def done(self) -> None:
        if self.slots is not None:
            self.slots.release(self.token)


_UNCAPPED = Sending()
# One second: a send to a busy provider takes about that long to finish and free a place.
_BUSY_SECONDS = 1.0


class SendLimits:
    """Whether one more email may go to a recipient now, and what to do on "slow down"."""

    def __init__(
        self,
        limiter: Limiter,
        domains: dict[str, float],
        transport_rate: float,
        slow: Slowdowns,
        connections: ConnectionSlots | None = None,
        sends: dict[str, ConnectionSlots] | None = None,
    ) -> None:
        self.limiter, self.domains, self.transport_rate = limiter, domains, transport_rate
        self.slow = slow
        self.connections = connections or ConnectionSlots("", 0)
        self.sends = sends or {}  # bucket -> its places for sends under way at once

    def wait(self, recipient: str) -> Wait | None:
        """None to send now; else what is limited (a domain or "the transport") and for how long.

        The domain is asked first so a slow domain never spends the transport's tokens.
        """
        domain = bucket_of(recipient)
        rate = self.domains.get(domain, 0.0)
        if self.slow.active(domain):
            rate = rate / SLOWDOWN_FACTOR if rate else UNLISTED_SLOW_RATE
        if rate:
            wait = self.limiter.acquire(f"send:domain:{domain}", rate, _burst(rate))
            if wait:
                return Wait(domain, wait)
        if self.transport_rate:
            wait = self.limiter.acquire(
                "send:transport", self.transport_rate, _burst(self.transport_rate)
            )
            if wait:
                return Wait("the transport", wait)
        return None

    def slow_down(self, recipient: str) -> None:
        self.slow.add(bucket_of(recipient))

    def start(self, recipient: str, lease_seconds: float) -> Sending | Wait:
        """A place among the sends under way to the recipient's group (call done() after the
        send), or Wait when the group has as many as it may: put the email back, the batch goes
        on. Groups without a cap cost nothing here."""
        if not self.sends or (slots := self.sends.get(bucket_of(recipient))) is None:
            return _UNCAPPED
        token = slots.take(lease_seconds)
        if token is None:
            return Wait(
                bucket_of(recipient), _BUSY_SECONDS, f"limit of {slots.limit} sends at once"
            )
        return Sending(slots, token)


# Connection slots: a sorted set of slot tokens scored by when they lapse, so a worker that dies
# holding one gives it back by itself after the lease.
_TAKE_SLOT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[5])) + 1)
return 1
"""
_SLOTS_KEY = "dripcare:smtp-connections"


class ConnectionSlots:
    """At most `limit` SMTP connections (or sends to one group, by `key`) open at once across
    every worker (0: no limit)."""

    def __init__(self, url: str, limit: int, key: str = _SLOTS_KEY) -> None:
        self.limit, self.key = limit, key
        self._client = redis.Redis.from_url(url) if url and limit else None
        self._script = self._client.register_script(_TAKE_SLOT) if self._client else None
        self._held: dict[str, float] = {}  # this process's slots when there is no Redis
        self._lock = threading.Lock()

    def take(self, lease_seconds: float) -> str | None:
        """A slot token to give back with release(), or None when all are in use."""
        token = uuid.uuid4().hex
        if not self.limit:
            return token
        now = time.time()
        if self._script is not None:
            args: list[float | str] = [now, now + lease_seconds, self.limit, token, lease_seconds]
            return token if self._script(keys=[self.key], args=args) else None
        with self._lock:
            self._held = {t: until for t, until in self._held.items() if until > now}
            if len(self._held) >= self.limit:
                return None
            self._held[token] = now + lease_seconds
        return token

    def release(self, token: str) -> None:
        if self._client is not None:
            self._client.zrem(self.key, token)
        with self._lock:
            self._held.pop(token, None)


def _burst(rate: float) -> int:
    """About one second's worth: smooth enough for providers, enough for a batch to flow."""
    return max(1, int(rate))


def shared_url(settings: Settings) -> str:
    """DRIPCARE_RATELIMIT_URL, else the broker when it is Redis; empty: this process only."""
    if settings.ratelimit_url:
        return settings.ratelimit_url
    return settings.broker_url if settings.broker_url.startswith(("redis://", "rediss://")) else ""


def limits_for(settings: Settings) -> SendLimits:
    return _limits(
        shared_url(settings),
        settings.domain_limits,
        settings.transport_rate,
        settings.slowdown_seconds,
        settings.transport_concurrency,
        settings.domain_concurrency,
    )


@lru_cache(maxsize=8)
def _limits(
    url: str,
    domains: str,
    transport_rate: float,
    slowdown_seconds: float,
    connections: int,
    concurrency: str,
) -> SendLimits:
    """One per process and configuration, so buckets and cached slow-downs are reused."""
    limiter: Limiter = RedisLimiter(url, 1.0, 1) if url else MemoryLimiter(1.0, 1)
    return SendLimits(
        limiter,
        parse_limits(domains),
        transport_rate,
        Slowdowns(url, slowdown_seconds),
        ConnectionSlots(url, connections),
        {
            bucket: ConnectionSlots(url, limit, f"dripcare:sends:{bucket}")
            for bucket, limit in parse_concurrency(concurrency).items()
        },
    )
