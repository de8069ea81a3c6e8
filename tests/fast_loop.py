"""What `make test-fast` (DRIPCARE_TEST_FAST=1) changes: no Redis, fewer property examples.

The quick loop leaves out every test that needs Redis (the `redis` marker), so nothing else may
need it either: the Celery app gets an in-memory broker, and with no Redis broker the send
path's limits and slow-downs live in this process (send_limits.shared_url). Property tests run
a few examples each, and the API schema test skips schemathesis's coverage phase: `make test`
runs them all.
"""

from __future__ import annotations

import os

from hypothesis import settings

FAST = os.environ.get("DRIPCARE_TEST_FAST", "") == "1"
FAST_EXAMPLES = 20
MEMORY_BROKER = "memory://"

settings.register_profile("fast", max_examples=FAST_EXAMPLES)
if FAST:
    settings.load_profile("fast")


def examples(wanted: int) -> int:
    """A property test's number of examples: all of them, except in the quick loop."""
    return min(wanted, FAST_EXAMPLES) if FAST else wanted
