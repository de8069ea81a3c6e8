"""Cost of the sending-rate check per email, as the send path pays it.

    .venv/bin/python bench/send_limits.py [--calls N] [--redis redis://127.0.0.1:6379/15]

Prints microseconds per `SendLimits.wait()` call for: no limits configured (the default: no
Redis call at all), a listed domain in this process, and a listed domain shared through Redis
(one EVALSHA per email, plus a slow-down lookup every few seconds). Rates are set high so
every call is granted: this measures the check, not the waiting.
"""

from __future__ import annotations

import argparse
import time

import redis

from dripcare.rate_limits import Limiter, MemoryLimiter, RedisLimiter
from dripcare.sending.send_limits import SendLimits, Slowdowns


def per_call(limits: SendLimits, calls: int) -> float:
    started = time.perf_counter()
    for i in range(calls):
        limits.wait(f"patient{i}@gmail.com")
    return (time.perf_counter() - started) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    args = parser.parse_args()
    redis.Redis.from_url(args.redis).delete("dripcare:ratelimit:send:domain:gmail.com")
    cases: list[tuple[str, Limiter, dict[str, float], str]] = [
        ("no limits configured", MemoryLimiter(1, 1), {}, ""),
        ("gmail.com listed, in this process", MemoryLimiter(1, 1), {"gmail.com": 1e9}, ""),
        (
            "gmail.com listed, shared in Redis",
            RedisLimiter(args.redis, 1, 1),
            {"gmail.com": 1e9},
            args.redis,
        ),
    ]
    for name, limiter, domains, url in cases:
        limits = SendLimits(limiter, domains, 0.0, Slowdowns(url, 600))
        print(f"{name:40s} {per_call(limits, args.calls):8.1f} µs per email")


if __name__ == "__main__":
    main()
