"""`dripcare health api|worker|beat`: exit 0 when the process does its job, 1 when not."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from click.testing import CliRunner, Result

from dripcare.beat import HEARTBEAT_FILE, heartbeat_path, touch_heartbeat
from dripcare.celery_app import DISPATCH_QUEUE, SEND_QUEUE, app
from dripcare.cli import main
from dripcare.config import Settings, get_settings
from tests.conftest import configure, free_port


def health(*args: str) -> Result:
    return CliRunner().invoke(main, ["health", *args])


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    settings = configure(monkeypatch, tmp_path, DRIPCARE_STATE_DIR=str(tmp_path / "state"))
    settings.state_dir.mkdir()
    return settings


def test_beat_is_healthy_while_its_heartbeat_is_fresh(state: Settings) -> None:
    touch_heartbeat(state)
    result = health("beat")
    assert result.exit_code == 0, result.output
    assert "beat ok" in result.stdout


def test_beat_is_unhealthy_without_a_heartbeat_or_with_a_stale_one(state: Settings) -> None:
    missing = health("beat")
    assert missing.exit_code == 1
    assert HEARTBEAT_FILE in missing.stderr
    path = heartbeat_path(state)
    path.touch()
    an_hour_ago = time.time() - 3600
    os.utime(path, (an_hour_ago, an_hour_ago))
    stale = health("beat")
    assert stale.exit_code == 1
    assert "more than 60s" in stale.stderr


def test_api_is_healthy_when_healthz_answers(live_server: str, redis_url: str) -> None:
    port = live_server.rsplit(":", 1)[1]
    result = health("api", "--port", port)
    assert result.exit_code == 0, result.output


def test_api_is_unhealthy_when_nothing_listens(state: Settings) -> None:
    result = health("api", "--port", str(free_port()), "--timeout", "2")
    assert result.exit_code == 1
    assert "did not answer" in result.stderr


@pytest.mark.redis
@pytest.mark.workers
def test_worker_answers_a_ping_and_a_missing_one_does_not(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, tmp_path, DRIPCARE_BROKER_URL=redis_url)
    app.conf.broker_url = redis_url
    assert get_settings().broker_url == redis_url
    with start_worker(app, perform_ping_check=False, queues=[DISPATCH_QUEUE, SEND_QUEUE]) as w:
        up = health("worker", "--node", w.hostname, "--timeout", "5")
        assert up.exit_code == 0, up.output
    gone = health("worker", "--node", "celery@nowhere", "--timeout", "1")
    assert gone.exit_code == 1
    assert "did not answer" in gone.stderr
