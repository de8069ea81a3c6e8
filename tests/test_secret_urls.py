"""SMTP and webhook URLs carry passwords and tokens: no error text or log line shows them."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select

from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.devserver import ConsoleReport
from dripcare.errors import UserError
from dripcare.models import Clinic, ClinicAlert
from dripcare.redaction import without_passwords
from dripcare.sending import alerts, circuit, clinic_transports, transport_alerts
from dripcare.sending.transports import TransportFailure, transport_from_url
from tests.conftest import free_port
from tests.factories import make_clinic


@pytest.mark.parametrize(
    "url", ["smtp://ops:hunter2@:587", "smtp://ops:hunter2@mx.example:abc", "smtps://ops:hunter2@"]
)
def test_an_smtp_url_that_cannot_work_is_named_without_its_password(url: str) -> None:
    with pytest.raises(UserError) as refused:
        transport_from_url(url)

    assert "hunter2" not in str(refused.value)
    assert "smtp" in str(refused.value) and "ops:***@" in str(refused.value)


def test_a_password_with_an_at_sign_is_masked_whole() -> None:
    text = "cannot log in to smtp://ops:hun@ter2@mx.example:587 (535)"

    assert without_passwords(text) == "cannot log in to smtp://ops:***@mx.example:587 (535)"


def test_a_clinics_unusable_server_defers_without_showing_its_password(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLINIC_SECRET_URL_TEST", "smtp://ops:hunter2@mx.example:abc")
    clinic_id = make_clinic()
    with session_scope() as session:
        clinic = session.get(Clinic, clinic_id)
        assert clinic is not None
        clinic_transports.set_smtp_url(session, settings, clinic, "env:CLINIC_SECRET_URL_TEST")

        transport = clinic_transports.transport_for(clinic, settings, platform=None)  # type: ignore[arg-type]

    reason = getattr(transport, "reason", "")
    assert "cannot be used" in reason and "hunter2" not in reason


def test_a_failing_webhook_logs_neither_its_token_nor_its_password(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    hook = "http://hookuser:hookpass@127.0.0.1:9/hooks/T0KEN-SECRET?key=Q-SECRET"
    clinic_id = make_clinic(webhook_url=hook, webhook_secret="s3cret")
    failure = TransportFailure("cannot log in to smtp://ops:hunter2@mx.example:587", None, None)
    with session_scope() as session:
        key = circuit.key_for(clinic_id)
        transport_alerts.queue(session, key, failure, [clinic_id], datetime.now(UTC), settings)
    refusing = httpx.MockTransport(lambda request: httpx.Response(500))
    caplog.set_level(logging.DEBUG)

    with httpx.Client(transport=refusing) as http:
        alerts.deliver_due(
            session_scope, transport_from_url(f"smtp://127.0.0.1:{free_port()}", 2), http
        )

    with session_scope() as session:
        errors = [a.last_error for a in session.scalars(select(ClinicAlert))]
    told = caplog.text + "\n".join(errors)
    assert "HTTP 500" in told  # the webhook was tried and refused
    for secret in ("T0KEN", "Q-SECRET", "hookpass", "hunter2"):
        assert secret not in told


def test_the_dev_server_console_shows_no_smtp_password() -> None:
    report = ConsoleReport("smtp://ops:hunter2@mx.example:587", last_skipped=0)

    assert report._where() == "smtp://ops:***@mx.example:587"
