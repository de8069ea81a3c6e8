"""`dripcare serve`: several workers, each listening on its own socket, and a taken port."""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from dripcare.cli import main
from dripcare.web.serving import PortInUse, check_free, listen_socket
from tests.conftest import REDIS_URL, free_port

LISTEN, ESTABLISHED = "0A", "01"
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


@pytest.fixture
def served(sqlite_template: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """`dripcare serve --workers 2` on the embedded database, as an operator starts it."""
    path = tmp_path / "dripcare.db"
    shutil.copy(sqlite_template, path)
    port = free_port()
    env = {
        **os.environ,
        "DRIPCARE_DATABASE_URL": f"sqlite:///{path}",
        "DRIPCARE_BROKER_URL": REDIS_URL,
    }
    dripcare = Path(sys.executable).parent / "dripcare"
    proc = subprocess.Popen(
        [str(dripcare), "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a failed test kills the workers too, not only the supervisor
    )
    try:
        wait_until(lambda: len(listeners(proc.pid, port)) == 2, proc)
        yield proc, port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def wait_until(condition, proc: subprocess.Popen[bytes], limit: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit
    while not condition():
        assert proc.poll() is None, f"dripcare serve exited with {proc.returncode}"
        assert time.monotonic() < deadline, "dripcare serve did not come up"
        time.sleep(0.1)


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def tcp_sockets(port: int) -> dict[str, str]:
    """inode -> state of the TCP sockets whose local port is `port`."""
    states = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rpartition(":")[2], 16) == port:
                states[fields[9]] = fields[3]
    return states


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def per_worker(supervisor: int, port: int, state: str) -> dict[int, int]:
    """How many sockets in `state` on `port` each worker process holds."""
    sockets = tcp_sockets(port)
    counts = {}
    for pid in children(supervisor):
        held = [inode for inode in socket_inodes(pid) if sockets.get(inode) == state]
        if held:
            counts[pid] = len(held)
    return counts


def listeners(supervisor: int, port: int) -> dict[int, int]:
    return per_worker(supervisor, port, LISTEN)


@pytest.mark.slow  # starts `dripcare serve` with workers
def test_each_worker_listens_on_its_own_socket_and_gets_connections(
    served: tuple[subprocess.Popen[bytes], int],
) -> None:
    proc, port = served
    assert list(listeners(proc.pid, port).values()) == [1, 1]
    sockets = tcp_sockets(port)
    assert not [i for i in socket_inodes(proc.pid) if sockets.get(i) == LISTEN]  # supervisor
    # keep-alive connections all opened before the first request, as a client's pool does:
    # with one shared socket the first worker to wake often accepted every one of them
    connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(64)]
    try:
        for connection in connections:
            connection.connect()
        answers = Counter()
        for connection in connections:
            connection.request("GET", "/healthz")
            response = connection.getresponse()
            response.read()
            answers[response.status] += 1
        assert answers == {200: 64}
        held = per_worker(proc.pid, port, ESTABLISHED)
        assert len(held) == 2, held
        assert sum(held.values()) == 64
    finally:
        for connection in connections:
            connection.close()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def test_serve_refuses_a_port_in_use() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(main, ["serve", "--port", str(port), "--workers", "2"])
    assert result.exit_code == 2
    assert f"127.0.0.1:{port} is in use" in result.output
    assert "--port" in result.output


def test_an_old_server_sharing_the_port_is_seen() -> None:
    """A listener with SO_REUSEPORT would let new workers join it silently; the check sees it."""
    sock = listen_socket("127.0.0.1", 0, 8)
    port = sock.getsockname()[1]
    try:
        with pytest.raises(PortInUse):
            check_free("127.0.0.1", port)
        listen_socket("127.0.0.1", port, 8).close()  # a worker of the same group can join
    finally:
        sock.close()
    check_free("127.0.0.1", port)


def test_a_worker_that_cannot_listen_stops_the_supervisor() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(SystemExit) as exit_:
            listen_socket("127.0.0.1", taken.getsockname()[1], 8)
    assert exit_.value.code == 3  # uvicorn's STARTUP_FAILURE: its supervisor gives up


def test_workers_must_be_positive() -> None:
    result = CliRunner().invoke(main, ["serve", "--workers", "0"])
    assert result.exit_code == 2
    assert "--workers" in result.output


def test_make_run_leaves_a_taken_port_alone() -> None:
    """`dripcare dev` runs the rest of dripcare when something else serves its port."""
    from dripcare.devserver import serve_api_in_background

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert serve_api_in_background("127.0.0.1", taken.getsockname()[1]) is False
