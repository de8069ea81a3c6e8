"""Log lines: JSON on request (DRIPCARE_LOG_FORMAT=json), a request id on every line of a
request and in its answer, and still no patient data."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from dripcare.config import Settings
from dripcare.logs import JsonFormatter, RequestIdFilter, request_id_from
from dripcare.web.app import create_app
from tests.conftest import free_port

BIN = Path(sys.executable).parent
PATIENT_EMAIL = "ana@example.com"


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What the `dripcare` loggers print, as the JSON format would print it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("dripcare")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)  # setLevel, not assignment: it clears isEnabledFor's cache
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(level)


def parse(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_every_line_of_a_request_carries_its_id_and_the_answer_names_it(
    settings: Settings, json_lines: io.StringIO
) -> None:
    # Given an endpoint that logs while it works (in the thread pool, as sync routes run)
    app = create_app()

    @app.get("/logs-something")
    def logs_something() -> dict[str, str]:
        logging.getLogger("dripcare.test").info("working on it")
        return {}

    # When a client calls it with its own request id
    with TestClient(app) as client:
        response = client.get("/logs-something", headers={"X-Request-ID": "booking-42.a"})
    # Then both the line logged inside and the request line carry that id
    assert response.headers["x-request-id"] == "booking-42.a"
    inside, request = parse(json_lines)
    assert inside == inside | {
        "level": "INFO",
        "logger": "dripcare.test",
        "message": "working on it",
        "request_id": "booking-42.a",
    }
    assert set(inside) == {"time", "level", "logger", "message", "request_id"}
    assert request == request | {
        "logger": "dripcare.api",
        "request_id": "booking-42.a",
        "method": "GET",
        "path": "/logs-something",
        "status": 200,
        "clinic": "-",
    }
    assert isinstance(request["duration_ms"], float)


def test_without_a_usable_request_id_each_request_gets_a_new_one(
    settings: Settings, json_lines: io.StringIO
) -> None:
    with TestClient(create_app()) as client:
        plain = client.get("/healthz")
        forged = client.get("/healthz", headers={"X-Request-ID": 'x" level="ERROR'})
        long = client.get("/healthz", headers={"X-Request-ID": "a" * 65})
    ids = [r.headers["x-request-id"] for r in (plain, forged, long)]
    assert len(set(ids)) == 3
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert [line["request_id"] for line in parse(json_lines)] == ids


def test_request_ids_are_kept_only_when_short_and_plain() -> None:
    assert request_id_from("5f0c6a9e-9a1b-4f3e-8d2a-1b2c3d4e5f60") == (
        "5f0c6a9e-9a1b-4f3e-8d2a-1b2c3d4e5f60"
    )
    for unsafe in ("", "two words", "line\nbreak", "é", "a" * 65, None):
        assert request_id_from(unsafe) != unsafe


@pytest.mark.slow  # starts `dripcare serve`
def test_dripcare_serve_prints_json_lines_without_query_strings(tmp_path: Path) -> None:
    # Given the API served as in production, with JSON logs
    port = free_port()
    env = os.environ | {
        "DRIPCARE_LOG_FORMAT": "json",
        "DRIPCARE_DATABASE_URL": f"sqlite:///{tmp_path / 'dripcare.db'}",
        "DRIPCARE_STATE_DIR": str(tmp_path),
        "DRIPCARE_SECRET_KEY": "test-secret-of-dripcare-tests-not-for-production",
    }
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [BIN / "dripcare", "serve", "--port", str(port)], env=env, stdout=out, stderr=out
        )
    try:
        # When a client looks a patient up by email (without a key: 401)
        response = _get_when_up(
            f"http://127.0.0.1:{port}/api/v1/patients?email={PATIENT_EMAIL}",
            {"X-Request-ID": "req-1"},
        )
        assert response.status_code == 401
    finally:
        server.terminate()
        server.wait(timeout=30)
    # Then every line is one JSON object, the request's line has its id, the query is not logged
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert {line["logger"] for line in lines} >= {"uvicorn.error", "dripcare.api"}
    access = [line for line in lines if line.get("request_id") == "req-1"]
    assert access == [access[0]]
    assert access[0]["path"] == "/api/v1/patients"
    assert access[0]["status"] == 401
    assert PATIENT_EMAIL not in log.read_text()


def _get_when_up(url: str, headers: dict[str, str]) -> httpx.Response:
    for _ in range(300):
        try:
            return httpx.get(url, headers=headers, timeout=5)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("dripcare serve did not start")


WORKER = """
import logging
from dripcare.celery_app import app

@app.task(name="test.logs_something")
def logs_something():
    logging.getLogger("dripcare.test").info("inside the task")

app.log.setup(loglevel="INFO")
result = logs_something.apply(task_id="task-123")
logging.getLogger("dripcare.test").info("after the task")
"""


def test_worker_lines_are_json_with_the_task_id(tmp_path: Path) -> None:
    env = os.environ | {
        "DRIPCARE_LOG_FORMAT": "json",
        "DRIPCARE_STATE_DIR": str(tmp_path),
        "DRIPCARE_SECRET_KEY": "test-secret-of-dripcare-tests-not-for-production",
    }
    done = subprocess.run(
        [sys.executable, "-c", WORKER], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
    by_message = {line["message"]: line for line in lines}
    assert by_message["inside the task"]["request_id"] == "task-123"
    assert by_message["inside the task"]["logger"] == "dripcare.test"
    assert by_message["after the task"]["request_id"] == "-"
