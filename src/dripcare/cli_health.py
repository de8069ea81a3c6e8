"""`dripcare health api|worker|beat`: exit 0 if healthy, 1 if not (Docker's healthcheck codes)."""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from dripcare.config import get_settings
from dripcare.health import (
    Unhealthy,
    check_api,
    check_beat,
    check_worker,
    default_worker_node,
)

timeout_option = click.option(
    "--timeout", default=5.0, show_default=True, type=float, help="Seconds to wait for an answer."
)


@click.group()
def health() -> None:
    """Is this container's process healthy? For healthchecks: exit status 0 or 1."""


def _run(check: Callable[[], str]) -> None:
    try:
        click.echo(check())
    except Unhealthy as exc:
        click.echo(f"unhealthy: {exc}", err=True)
        sys.exit(1)


@health.command("api")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@timeout_option
def health_api(host: str, port: int, timeout: float) -> None:
    """The API on this host answers /healthz (database and broker reachable)."""
    _run(lambda: check_api(host, port, timeout))


@health.command("worker")
@click.option("--node", default=None, help="Worker name (default: celery@<this hostname>).")
@timeout_option
def health_worker(node: str | None, timeout: float) -> None:
    """The worker on this host answers a ping through the broker."""
    _run(lambda: check_worker(node or default_worker_node(), timeout))


@health.command("beat")
def health_beat() -> None:
    """Beat's heartbeat in DRIPCARE_STATE_DIR is fresh (three dispatcher intervals, min 60 s)."""
    _run(lambda: check_beat(get_settings()))
