"""`dripcare dev` (what `make run` starts), as a new user meets it."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from dripcare.config import Settings
from dripcare.devserver import ConsoleReport
from dripcare.state import dev_secret
from tests.conftest import free_port

BIN = Path(sys.executable).parent


def start_dev(cwd: Path, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIPCARE_")}
    env["DRIPCARE_DISPATCH_INTERVAL"] = "1"
    return subprocess.Popen(
        [str(BIN / "dripcare"), "dev", "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def read_until(proc: subprocess.Popen[str], *wanted: str, limit: float = 120) -> str:
    """The console's lines until every wanted text has appeared (or the limit: a failure)."""
    lines: list[str] = []
    assert proc.stdout is not None
    threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True).start()
    deadline = time.monotonic() + limit
    while not all(w in "".join(lines) for w in wanted):
        assert time.monotonic() < deadline, f"never printed {wanted}:\n{''.join(lines)}"
        assert proc.poll() is None, f"dripcare dev exited:\n{''.join(lines)}"
        time.sleep(0.2)
    return "".join(lines)


@pytest.mark.slow  # starts `dripcare dev`
def test_dev_reports_sent_and_skipped_emails_whose_links_use_its_port(tmp_path: Path) -> None:
    port = free_port()
    proc = start_dev(tmp_path, port)
    try:
        console = read_until(proc, "sent ", "skipped ")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    assert f"links:    http://localhost:{port}" in console
    assert "more than the grace period" in console  # the demo's 3-day-old treatment
    eml = next((tmp_path / "var" / "outbox").glob("*.eml"))
    email = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert f"<http://localhost:{port}/u/" in str(email["List-Unsubscribe"])


def test_each_install_makes_its_own_private_secret(tmp_path: Path) -> None:
    first, second = Settings(state_dir=tmp_path / "a"), Settings(state_dir=tmp_path / "b")

    secrets = {dev_secret(first), dev_secret(second)}

    assert len(secrets) == 2 and all(len(s) >= 32 for s in secrets)
    assert dev_secret(first) in secrets  # kept, not made again
    assert stat.S_IMODE((tmp_path / "a" / "secret-key").stat().st_mode) == 0o600


def test_clinic_alerts_are_reported_on_the_console(capsys: pytest.CaptureFixture[str]) -> None:
    report = ConsoleReport("console://", last_skipped=0)

    report.after("dripcare.deliver_alerts", {"delivered": 1, "deferred": 2})
    report.after("dripcare.deliver_alerts", {"delivered": 0, "deferred": 0})

    out = capsys.readouterr().out
    assert out.count("clinic alert") == 1 and "1 delivered" in out and "2 to retry" in out
