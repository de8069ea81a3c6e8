"""How long to wait before trying again: exponential, capped, with jitter.

One rule for a message's retries, a clinic alert's retries and a paused transport's probes;
the jitter keeps many waiting rows from coming due in the same second.
"""

from __future__ import annotations

import random
from datetime import timedelta


def delay(attempt: int, base_seconds: float, max_seconds: float) -> timedelta:
    """The wait after the `attempt`-th try (1 for the first): base, 2 x base, ... up to max,
    each within ±25 %."""
    seconds = min(max_seconds, base_seconds * 2 ** max(attempt - 1, 0))
    return timedelta(seconds=seconds * random.uniform(0.75, 1.25))
