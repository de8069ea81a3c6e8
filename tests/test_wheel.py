"""The wheel, installed the way the image installs it, works outside the checkout.

A fresh virtualenv gets requirements.lock and the wheel (tests/install_commands.py, the
Dockerfile's commands); then, from a directory that is not the checkout, `dripcare` migrates,
creates a clinic, enrolls a patient whose first email is due and sends it to a real SMTP server.
Building and installing take a while, so one wheel and one virtualenv serve the session.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.install_commands import BUILD_WHEEL, INSTALL_LOCKED, INSTALL_WHEEL, REMOVE_BUILD_TOOLS
from tests.smtp_server import SMTPServer

pytestmark = pytest.mark.slow  # builds and installs a wheel in a fresh venv

ROOT = Path(__file__).resolve().parents[1]
# What the Dockerfile's builder copies; src/dripcare/shipped/ links into alembic/ and templates/.
BUILD_INPUTS = ["pyproject.toml", "README.md", "LICENSE", "alembic", "templates", "src"]
CLOCK = ("PYTHONPATH", "DRIPCARE_TEST_DAYS_AHEAD")  # make test-later's clock, for dripcare only
PATIENT = "ana.wheel@example.com"


@dataclass(frozen=True)
class Installed:
    venv: Path
    seconds: float  # build + install, printed by the last test (pytest -s shows it)

    def dripcare(self, *args: str, cwd: Path, env: dict[str, str]) -> str:
        done = subprocess.run(
            [str(self.venv / "bin" / "dripcare"), *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"dripcare {' '.join(args)}:\n{done.stdout}{done.stderr}"
        return done.stdout


def _run(*command: str | Path, cwd: Path | None = None) -> None:
    """Build and install steps run on the real clock (a TLS certificate is checked by pip)."""
    env = {k: v for k, v in os.environ.items() if k not in CLOCK and not k.startswith("DRIPCARE_")}
    done = subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, f"{' '.join(map(str, command))}:\n{done.stdout}{done.stderr}"


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    started = time.monotonic()
    base = tmp_path_factory.mktemp("wheel")
    # A copy of the build inputs, as in the builder stage: no stale build/ from the checkout.
    source = base / "source"
    source.mkdir()
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            skip = shutil.ignore_patterns("__pycache__", "*.egg-info")
            shutil.copytree(ROOT / name, source / name, symlinks=True, ignore=skip)
        else:
            shutil.copy2(ROOT / name, source / name)
    _run(sys.executable, "-m", *BUILD_WHEEL, base / "wheels", ".", cwd=source)
    venv = base / "venv"
    _run(sys.executable, "-m", "venv", venv)
    python_m = (venv / "bin" / "python", "-m")
    _run(*python_m, *INSTALL_LOCKED, ROOT / "requirements.lock")
    (wheel,) = (base / "wheels").glob("dripcare-*.whl")
    _run(*python_m, *INSTALL_WHEEL, wheel)
    _run(*python_m, *REMOVE_BUILD_TOOLS)
    if os.environ.get("DRIPCARE_TEST_DAYS_AHEAD"):  # tests/clock_ahead/sitecustomize.py needs it
        _run(*python_m, "pip", "install", f"time-machine=={version('time-machine')}")
    return Installed(venv, time.monotonic() - started)


def _afternoon_zone(now: datetime) -> str:
    """A zone where it is early afternoon now: quiet hours never hold the email back."""
    hours = (13 - now.hour + 12) % 24 - 12  # UTC offset, -12..11
    return f"Etc/GMT{-hours:+d}" if hours else "Etc/UTC"  # Etc/GMT-3 is UTC+3


def test_the_installed_wheel_migrates_enrolls_and_sends_from_any_directory(
    installed: Installed, smtp_server: SMTPServer, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {
        "PATH": f"{installed.venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "DRIPCARE_STATE_DIR": str(tmp_path / "state"),  # SQLite, the embedded default
        "DRIPCARE_SMTP_URL": smtp_server.url,
        **{name: os.environ[name] for name in CLOCK if name in os.environ},
    }
    now = datetime.now(UTC)
    zone = _afternoon_zone(now)
    offset = now.astimezone(ZoneInfo(zone)).utcoffset() or timedelta()
    # Treated 3 hours ago: the first email (2 hours after treatment) is due now.
    treated_at = (now + offset - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M")

    run = installed.dripcare
    assert "database is up to date" in run("db", "upgrade", cwd=elsewhere, env=env)
    clinic = run(
        "clinic", "create", "--name", "Wheel Clinic", "--sender", "care@wheel.example",
        "--phone", "+1 555 010 0100", "--timezone", zone, "--default-campaign", "microneedling",
        "-q", cwd=elsewhere, env=env,
    ).strip()  # fmt: skip
    run(
        "enroll", "--clinic", clinic, "--email", PATIENT, "--first-name", "Ana",
        "--treated-at", treated_at, cwd=elsewhere, env=env,
    )  # fmt: skip
    sent = json.loads(run("send", "--json", cwd=elsewhere, env=env))

    assert sent["sent"] == 1, sent
    assert smtp_server.recorder.wait_for(1, timeout=10)
    (email,) = smtp_server.recorder.messages
    assert email["To"] == PATIENT
    assert email["Subject"] == "Caring for your skin today"
    assert "Ana" in email.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert not list(elsewhere.iterdir()), "dripcare wrote to the working directory"


def test_the_wheel_runs_its_own_copy_without_build_tools(
    installed: Installed, tmp_path: Path
) -> None:
    python = installed.venv / "bin" / "python"
    code = (
        "import importlib.util, dripcare.shipped as s;"
        "print(s.__file__, s.migrations_dir(), s.campaigns_dir());"
        "print(importlib.util.find_spec('setuptools'))"
    )
    *found, setuptools = subprocess.run(
        [python, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.split()
    assert all(Path(path).is_relative_to(installed.venv) for path in found), found
    assert setuptools == "None", "the image has no setuptools: dripcare must run without it"
    print(f"wheel built and installed in a fresh virtualenv in {installed.seconds:.1f} s")
