"""The README's command blocks, pasted as written into a shell, on whatever day this runs.

A new user runs `make run`, then pastes "Using it" and the REST API block into a second
terminal. This does the same against a fresh install: the demo clinic exists first, so the
ids the README captures are not the 1s a stale example would assume.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def readme_block(heading: str) -> str:
    """The first ```sh block after a README heading."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index(f"## {heading}\n") :]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, f"no sh block under {heading!r}"
    return match.group(1)


@pytest.fixture
def install(tmp_path: Path) -> Path:
    """A directory as `make run` leaves it: .venv, templates/, and var/ with the demo seeded."""
    (tmp_path / ".venv").symlink_to(BIN.parent)
    (tmp_path / "templates").symlink_to(ROOT / "templates")
    seed = "from dripcare.devserver import seed_demo; from dripcare.migrations import upgrade; "
    (tmp_path / "var").mkdir()
    run_python(tmp_path, seed + "upgrade(); seed_demo()")
    return tmp_path


def clean_env() -> dict[str, str]:
    """The shell of a new user: no DRIPCARE_* settings, the venv not yet on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIPCARE_")}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != str(BIN))
    return env


def run_python(cwd: Path, code: str) -> None:
    subprocess.run([sys.executable, "-c", code], cwd=cwd, env=clean_env(), check=True)


@pytest.fixture
def api_port(install: Path) -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "dripcare"), "serve", "--port", str(port)],
        cwd=install,
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_port(port, proc)
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def wait_for_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        assert proc.poll() is None, "dripcare serve exited"
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.1):
            return
        time.sleep(0.1)
    pytest.fail("dripcare serve did not listen")


@pytest.mark.slow  # installs dripcare and starts a server (~30 s)
def test_the_using_it_and_api_blocks_work_when_pasted(install: Path, api_port: int) -> None:
    api = readme_block("The REST API, for clinics' booking and EMR software")
    script = "set -euo pipefail\n" + readme_block("Using it") + api.replace(":8000", f":{api_port}")

    done = subprocess.run(
        ["bash", "-c", script], cwd=install, env=clean_env(), capture_output=True, text=True
    )

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "2 enrolled, 0 already enrolled, 0 rejected" in done.stdout
    assert re.search(r"campaign microneedling \(id \d+\) at version 2", done.stdout)
    assert re.search(r"sent: [1-9]", done.stdout)  # the demo's due emails, by `dripcare send`
    assert re.search(r"key \d+ revoked", done.stdout)
    assert re.search(r'"status":\s*"cancelled"', done.stdout)  # the API's cancel answer
