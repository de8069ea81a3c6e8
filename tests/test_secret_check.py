"""serve, worker and beat refuse a weak secret unless in development on this machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dripcare.config import Settings
from dripcare.errors import UserError
from tests.conftest import free_port

WEAK = ["dev-only-not-secret", "short-secret", "x" * 31, "é" * 15]


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "DRIPCARE_STATE_DIR": str(tmp_path),
        "DRIPCARE_BASE_URL": "https://care.example",
        "DRIPCARE_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "dripcare.cli", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow  # a `dripcare` process per case
@pytest.mark.parametrize(
    ("command", "env"),
    [
        (["serve", "--host", "0.0.0.0"], {"DRIPCARE_SECRET_KEY": "dev-only-not-secret"}),
        (["serve"], {"DRIPCARE_ENV": "production", "DRIPCARE_SECRET_KEY": "short"}),
        (["worker"], {"DRIPCARE_SECRET_KEY": "test-secret"}),
        (["beat"], {"DRIPCARE_SECRET_KEY": "y" * 20}),
    ],
)
def test_a_weak_secret_is_one_line_and_exit_2(
    tmp_path: Path, command: list[str], env: dict[str, str]
) -> None:
    port = ["--port", str(free_port())] if command[0] == "serve" else []
    result = run(tmp_path, *command, *port, **env)

    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: DRIPCARE_SECRET_KEY must be at least 32 random bytes")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("secret", WEAK)
def test_weak_secrets_are_refused_beyond_localhost(secret: str) -> None:
    reachable = Settings(secret_key=secret, base_url="https://care.example")
    with pytest.raises(UserError, match="reachable beyond localhost"):
        reachable.check_process_secret()
    with pytest.raises(UserError, match="reachable beyond localhost"):
        Settings(secret_key=secret).check_process_secret("0.0.0.0")
    with pytest.raises(UserError, match="at least 32"):
        Settings(secret_key=secret, env="production").check_process_secret()


def test_development_on_localhost_and_strong_secrets_are_allowed() -> None:
    weak = Settings(secret_key="short", base_url="http://localhost:8000")
    weak.check_process_secret()
    strong = Settings(secret_key="s" * 32, base_url="https://care.example", env="production")
    strong.check_process_secret("0.0.0.0")
    assert weak.weak_secret() and not strong.weak_secret()  # each case is the one it claims
