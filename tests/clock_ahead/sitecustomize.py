"""Moves every Python process's clock ahead when DRIPCARE_TEST_DAYS_AHEAD is set.

`make test-later` puts this directory on PYTHONPATH, so the test process and every server,
worker and command it starts run the same number of days in the future (each from its own
real clock, so they agree). A test that compares a fixed date with the real clock fails then.
Only the wall clock moves; time.monotonic stays real, so waits and timeouts keep their length.
"""

import os

_days = os.environ.get("DRIPCARE_TEST_DAYS_AHEAD")
if _days:
    from datetime import UTC, datetime, timedelta

    import time_machine

    time_machine.travel(datetime.now(UTC) + timedelta(days=int(_days)), tick=True).start()
