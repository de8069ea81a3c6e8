"""GET /metrics: the outbox from the database, the workers' timings through Redis."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import time_machine
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from dripcare import metrics, tasks
from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.metric_store import SMTP_SEND, Batch, RedisStore
from dripcare.models import Message, MessageStatus
from dripcare.outbox import checkins
from dripcare.outbox.dispatch import TickResult
from dripcare.sending import alerts, circuit
from dripcare.sending.smtp_replies import Stage
from dripcare.sending.transports import TransportFailure, transport_from_url
from dripcare.web.app import create_app
from tests.conftest import configure, free_port
from tests.factories import DAYTIME, make_clinic, make_enrollment
from tests.smtp_server import SMTPServer

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient, token: str = "") -> Samples:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


@pytest.fixture
def with_redis(
    database: str, redis_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Settings:
    return configure(
        monkeypatch,
        tmp_path,
        DRIPCARE_DATABASE_URL=database,
        DRIPCARE_METRICS_REDIS_URL=redis_url,
    )


@pytest.fixture
def client(with_redis: Settings) -> Iterator[TestClient]:
    with TestClient(create_app()) as test_client:
        yield test_client


def test_outbox_rows_by_clinic_and_status_and_the_age_of_the_oldest_due_message(
    with_redis: Settings, client: TestClient
) -> None:
    # Given two clinics, one with a treatment three hours ago (its day-0 email is due)
    with time_machine.travel(DAYTIME):
        busy, quiet = make_clinic(), make_clinic(name="Quiet Clinic")
        make_enrollment(with_redis, busy, DAYTIME - timedelta(hours=3))
    with session_scope() as session:
        statuses = session.scalars(select(Message.status).where(Message.clinic_id == busy)).all()
        first_due = min(session.scalars(select(Message.due_at)))
    # When Prometheus scrapes an hour after the first email fell due
    with time_machine.travel(first_due + timedelta(hours=1), tick=False):
        samples = scrape(client)
    # Then the rows are counted per clinic and status, and the backlog's age is one hour
    scheduled = statuses.count(MessageStatus.SCHEDULED)
    assert scheduled >= 2
    assert value(samples, "dripcare_outbox_messages", clinic=str(busy), status="scheduled") == (
        scheduled
    )
    assert ("dripcare_outbox_messages", frozenset({("clinic", str(quiet))})) not in samples
    assert value(samples, "dripcare_outbox_oldest_due_seconds") == 3600
    # And before anything is due the age is 0
    with time_machine.travel(first_due - timedelta(minutes=1), tick=False):
        assert value(scrape(client), "dripcare_outbox_oldest_due_seconds") == 0


def test_a_red_flag_check_in_shows_as_an_undelivered_alert_until_delivered(
    with_redis: Settings, client: TestClient
) -> None:
    with time_machine.travel(DAYTIME, tick=False):
        clinic = make_clinic()
        enrollment = make_enrollment(with_redis, clinic, DAYTIME - timedelta(days=1, hours=2))
        with session_scope() as session:
            message = session.scalars(
                select(Message).where(Message.enrollment_id == enrollment)
            ).first()
            assert message is not None
            checkins.record(session, message, worried=True, codes=["worse"])
    with time_machine.travel(DAYTIME + timedelta(minutes=10), tick=False):
        samples = scrape(client)
    assert value(samples, "dripcare_clinic_alerts_undelivered", clinic=str(clinic)) == 1
    assert value(samples, "dripcare_clinic_alert_oldest_undelivered_seconds") == 600
    with httpx.Client() as http:
        alerts.deliver_due(session_scope, transport_from_url(with_redis.smtp_url, 5), http)
    samples = scrape(client)
    assert ("dripcare_clinic_alerts_undelivered", frozenset({("clinic", str(clinic))})) not in (
        samples
    )
    assert value(samples, "dripcare_clinic_alert_oldest_undelivered_seconds") == 0


def test_worker_outcomes_and_timings_from_every_host_add_up_in_redis(
    with_redis: Settings, client: TestClient, redis_url: str
) -> None:
    # Given two worker hosts, each with its own connection to the metric store
    for host in (RedisStore(redis_url), RedisStore(redis_url)):
        metrics.record_batch(
            host, {"messages_sent": 2, "messages_failed": 1}, send_seconds=[0.004, 0.3]
        )
        metrics.record_tick(host, 0.02, TickResult(recovered=1, claimed=3, batches=1))
    # When the API is scraped
    samples = scrape(client)
    # Then the totals are the fleet's
    assert value(samples, "dripcare_messages_sent_total") == 4
    assert value(samples, "dripcare_messages_failed_total") == 2
    assert value(samples, "dripcare_messages_deferred_total") == 0
    assert value(samples, "dripcare_dispatch_claimed_total") == 6
    assert value(samples, "dripcare_smtp_send_seconds_count") == 4
    assert value(samples, "dripcare_smtp_send_seconds_bucket", le="0.005") == 2
    assert value(samples, "dripcare_smtp_send_seconds_bucket", le="0.25") == 2
    assert value(samples, "dripcare_smtp_send_seconds_bucket", le="0.5") == 4
    assert value(samples, "dripcare_smtp_send_seconds_bucket", le="+Inf") == 4
    assert value(samples, "dripcare_smtp_send_seconds_sum") == pytest.approx(0.608)
    assert value(samples, "dripcare_dispatch_tick_seconds_count") == 2
    assert value(samples, "dripcare_dispatch_last_tick_timestamp_seconds") > 0
    assert value(samples, "dripcare_metric_store_up") == 1


def test_the_dispatch_and_send_tasks_record_their_timings_and_outcomes(
    with_redis: Settings,
    client: TestClient,
    smtp_server: SMTPServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    redis_url: str,
    database: str,
) -> None:
    configure(
        monkeypatch,
        tmp_path,
        DRIPCARE_DATABASE_URL=database,
        DRIPCARE_METRICS_REDIS_URL=redis_url,
        DRIPCARE_SMTP_URL=smtp_server.url,
    )
    with time_machine.travel(DAYTIME, tick=True):
        clinic = make_clinic()
        make_enrollment(with_redis, clinic, DAYTIME - timedelta(hours=3))
        # the send task runs here instead of in a worker: what it records is the point
        monkeypatch.setattr(
            tasks, "_enqueue", lambda claim: tasks.send_batch(claim.token, claim.message_ids)
        )
        tasks.dispatch()
        samples = scrape(client)
    assert smtp_server.recorder.wait_for(1)
    assert value(samples, "dripcare_messages_sent_total") == 1
    assert value(samples, "dripcare_smtp_send_seconds_count") == 1
    assert value(samples, "dripcare_dispatch_tick_seconds_count") == 1
    assert value(samples, "dripcare_outbox_messages", clinic=str(clinic), status="sent") == 1


def test_without_redis_the_database_numbers_still_answer(
    database: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    configure(
        monkeypatch,
        tmp_path,
        DRIPCARE_DATABASE_URL=database,
        DRIPCARE_METRICS_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
    )
    with TestClient(create_app()) as client:
        samples = scrape(client)
    assert value(samples, "dripcare_metric_store_up") == 0
    assert value(samples, "dripcare_outbox_oldest_due_seconds") == 0


def test_without_the_database_the_workers_numbers_still_answer(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    configure(
        monkeypatch,
        tmp_path,
        DRIPCARE_DATABASE_URL=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none",
        DRIPCARE_METRICS_REDIS_URL=redis_url,
    )
    metrics.record_batch(RedisStore(redis_url), {"messages_sent": 1}, send_seconds=[0.01])
    with TestClient(create_app()) as client:
        samples = scrape(client)
    assert value(samples, "dripcare_database_up") == 0
    assert ("dripcare_outbox_oldest_due_seconds", frozenset()) not in samples
    assert value(samples, "dripcare_messages_sent_total") == 1


def test_a_metrics_token_is_required_when_set(
    database: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    configure(
        monkeypatch, tmp_path, DRIPCARE_DATABASE_URL=database, DRIPCARE_METRICS_TOKEN="s3cr3t"
    )
    with TestClient(create_app()) as client:
        assert client.get("/metrics").status_code == 401
        wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert wrong.headers["www-authenticate"] == "Bearer"
        assert "dripcare_outbox_oldest_due_seconds" in str(scrape(client, "s3cr3t"))


def test_production_without_a_token_answers_403_with_what_to_set(
    database: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    configure(
        monkeypatch,
        tmp_path,
        DRIPCARE_DATABASE_URL=database,
        DRIPCARE_ENV="production",
        DRIPCARE_SECRET_KEY="x" * 40,
    )
    with TestClient(create_app()) as client:
        response = client.get("/metrics")
    assert response.status_code == 403
    assert "DRIPCARE_METRICS_TOKEN" in response.json()["detail"]


def test_the_store_keeps_observations_in_buckets(redis_url: str) -> None:
    store = RedisStore(redis_url)
    batch = Batch()
    batch.observe(SMTP_SEND, [0.005, 100.0])
    store.record(batch)
    assert store.snapshot().cumulative(SMTP_SEND)[0] == ("0.005", 1.0)
    assert store.snapshot().cumulative(SMTP_SEND)[-1] == ("+Inf", 2.0)


def test_a_paused_transport_shows_as_an_open_circuit_until_it_works(
    with_redis: Settings, client: TestClient
) -> None:
    failure = TransportFailure("535 5.7.8 Authentication credentials invalid", 535, Stage.AUTH)
    now = datetime.now(UTC)
    with session_scope() as session:
        circuit.record_failure(session, circuit.PLATFORM, failure, now)
        circuit.record_failure(session, circuit.key_for(7), failure, now)  # a clinic's own server
    opened = scrape(client)
    with session_scope() as session:
        circuit.record_success(session, circuit.PLATFORM, now)
    closed = scrape(client)

    assert value(opened, "dripcare_transport_circuit_open", transport="platform") == 1
    assert value(closed, "dripcare_transport_circuit_open", transport="platform") == 0
    assert value(closed, "dripcare_transport_circuit_open", transport="clinic:7") == 1
