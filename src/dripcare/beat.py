"""The beat process's files in the state directory: its schedule and a heartbeat.

The heartbeat is touched on every pass of beat's loop, which runs at least once per
dispatcher interval; `dripcare health beat` reads its age. A beat stuck on a broker that does
not answer, or one that died, stops touching it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from celery.beat import PersistentScheduler

from dripcare.config import Settings, get_settings

SCHEDULE_FILE = "celerybeat-schedule"
HEARTBEAT_FILE = "beat-heartbeat"
MIN_STALE_SECONDS = 60.0


def schedule_path(settings: Settings) -> Path:
    return settings.state_dir / SCHEDULE_FILE


def heartbeat_path(settings: Settings) -> Path:
    return settings.state_dir / HEARTBEAT_FILE


def stale_after(settings: Settings) -> float:
    """A heartbeat older than this means beat is not ticking: three missed dispatcher ticks."""
    return max(3 * settings.dispatch_interval, MIN_STALE_SECONDS)


def heartbeat_age(settings: Settings) -> float | None:
    """Seconds since beat's last pass, or None if it never wrote a heartbeat here."""
    try:
        return max(time.time() - heartbeat_path(settings).stat().st_mtime, 0.0)
    except FileNotFoundError:
        return None


def touch_heartbeat(settings: Settings) -> None:
    """Stamp the heartbeat with this process's clock, not the filesystem's, so the age the
    health check computes compares one clock with itself."""
    path = heartbeat_path(settings)
    path.touch()
    now = time.time()
    os.utime(path, (now, now))


class HeartbeatScheduler(PersistentScheduler):
    """Celery's file-backed scheduler that also touches the heartbeat on every pass."""

    def tick(self, *args: Any, **kwargs: Any) -> float:
        interval: float = super().tick(*args, **kwargs)
        touch_heartbeat(get_settings())
        return interval
