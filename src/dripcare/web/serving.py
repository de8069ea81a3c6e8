"""Serving the API from several processes, each listening on a socket of its own.

uvicorn's workers share one listening socket, and the first worker to wake accepts every
connection waiting on it. A client that opens its few keep-alive connections at once (a
booking system's pool, a reverse proxy, the benchmark) can land all of them on one worker while
the others idle: in half of the benchmark runs one worker took all 8 connections and the API
ran at two thirds of its speed (bench/README.md). On Linux each worker here binds its own
socket with SO_REUSEPORT, and the kernel spreads new connections over the workers.

uvicorn's supervisor (restarts, health checks, signals) is kept as it is: it hands each worker
a `_OwnSocket`, which becomes a freshly bound socket when the worker unpickles it. The price:
connections still waiting in a worker's own queue when it dies are reset, where a shared
queue would have handed them to another worker; clients retry those as any dropped connection.
"""

from __future__ import annotations

import errno
import logging
import socket
import sys
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from dripcare.config import get_settings
from dripcare.errors import UserError
from dripcare.logs import uvicorn_log_config

APP = "dripcare.web.app:create_app"
logger = logging.getLogger("uvicorn.error")


class PortInUse(UserError):
    """Another server already listens on the address."""


def serve(host: str, port: int, workers: int) -> None:
    """Run the API until SIGINT or SIGTERM."""
    check_free(host, port)
    config = uvicorn.Config(
        APP,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        proxy_headers=False,  # DRIPCARE_TRUSTED_PROXIES decides (web/ratelimit.client_address)
        log_level="info",
        log_config=uvicorn_log_config(get_settings().log_format),
    )
    if workers == 1:
        server = uvicorn.Server(config)
        server.run()
        if not server.started:
            sys.exit(STARTUP_FAILURE)
        return
    spread = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")
    sockets = [_OwnSocket(host, port, config.backlog) if spread else config.bind_socket()]
    Multiprocess(config, sockets=sockets).run()  # type: ignore[arg-type]


def check_free(host: str, port: int) -> None:
    """Fail before starting if the address is taken.

    A listener with SO_REUSEPORT (an older `dripcare serve` still running) would otherwise
    quietly share the port with the new workers; a plain bind sees it.
    """
    family, address = _address(host, port)
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(
                    f"{host}:{port} is in use: is dripcare (or another server) already running "
                    "there? Stop it, or choose another port with --port."
                ) from exc
            raise


def _address(host: str, port: int) -> tuple[socket.AddressFamily, tuple[str, int]]:
    """As uvicorn binds its own socket: IPv6 for an address with a colon (`::` takes IPv4 too)."""
    return (socket.AF_INET6 if ":" in host else socket.AF_INET), (host, port)


def listen_socket(host: str, port: int, backlog: int) -> socket.socket:
    """A listening socket of this process's own, in the port's SO_REUSEPORT group."""
    family, address = _address(host, port)
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        logger.error("worker could not listen on %s:%s: %s", host, port, exc)
        # uvicorn's supervisor stops on this code instead of restarting the worker forever
        sys.exit(STARTUP_FAILURE)
    sock.listen(backlog)
    return sock


@dataclass(frozen=True)
class _OwnSocket:
    """What the supervisor passes to each worker in place of a shared socket."""

    host: str
    port: int
    backlog: int

    def __reduce__(self) -> tuple[Any, tuple[str, int, int]]:
        return (listen_socket, (self.host, self.port, self.backlog))
