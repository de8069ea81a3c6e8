"""Health of the long-running processes, for container healthchecks and monitoring.

Each check answers for the process in its own container: the API on this host's port, the
worker named after this host, the beat whose state directory this is.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from dripcare.beat import heartbeat_age, heartbeat_path, stale_after
from dripcare.config import Settings


class Unhealthy(Exception):
    """The process does not do its job; the message says what was seen."""


def check_api(host: str, port: int, timeout: float) -> str:
    """The API answers /healthz with 200: it serves, and reaches the database and broker."""
    url = f"http://{host}:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return f"api ok: {url} answered {response.status}"
    except urllib.error.HTTPError as exc:
        raise Unhealthy(f"api: {url} answered {exc.code} {_body(exc)}") from None
    except (OSError, urllib.error.URLError) as exc:
        raise Unhealthy(f"api: {url} did not answer: {exc}") from None


def _body(exc: urllib.error.HTTPError) -> str:
    try:
        return json.dumps(json.loads(exc.read()))
    except (OSError, ValueError):
        return ""


def default_worker_node() -> str:
    """The name `dripcare worker` takes by default: celery@<this hostname>."""
    from celery.utils.nodenames import default_nodename

    return str(default_nodename(None))


def check_worker(node: str, timeout: float) -> str:
    """The worker answers a ping through the broker: it is up and consuming."""
    from dripcare.celery_app import app

    try:
        replies = app.control.ping(destination=[node], timeout=timeout)
    except Exception as exc:  # the broker is down or refuses us: unhealthy, not a crash
        raise Unhealthy(f"worker: cannot ask {node} through the broker: {exc}") from None
    if not any(node in reply for reply in replies):
        raise Unhealthy(f"worker: {node} did not answer a ping within {timeout:g}s")
    return f"worker ok: {node} answered"


def check_beat(settings: Settings) -> str:
    """Beat's heartbeat in the state directory is fresh: its loop is running."""
    age, limit = heartbeat_age(settings), stale_after(settings)
    if age is None:
        raise Unhealthy(f"beat: no heartbeat at {heartbeat_path(settings)} (not started?)")
    if age > limit:
        raise Unhealthy(f"beat: last heartbeat {age:.0f}s ago (more than {limit:g}s)")
    return f"beat ok: last heartbeat {age:.0f}s ago"
