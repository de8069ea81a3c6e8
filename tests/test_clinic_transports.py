"""A clinic's own SMTP server: set by the CLI, used for its emails only, never printed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import time_machine
from click.testing import CliRunner, Result
from sqlalchemy import select

from dripcare.cli import main
from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.models import ClinicTransport, Message, MessageStatus
from tests.conftest import free_port
from tests.factories import DAYTIME, make_clinic, make_enrollment, send_due
from tests.smtp_server import SMTPServer

pytestmark = pytest.mark.usefixtures("daytime")  # conftest: a working morning


@pytest.fixture
def own_server() -> Iterator[SMTPServer]:
    server = SMTPServer(free_port()).start()
    yield server
    server.stop()


def transport(*args: str) -> Result:
    return CliRunner().invoke(main, ["clinic", "transport", *args], catch_exceptions=False)


def tried() -> list[tuple[MessageStatus, int]]:
    """Status and attempts of the messages a send tried (each has the error it met)."""
    with session_scope() as session:
        rows = session.execute(
            select(Message.status, Message.attempts).where(Message.last_error != "")
        )
        return [(row.status, row.attempts) for row in rows]


def test_the_password_is_stored_sealed_and_never_printed(settings: Settings) -> None:
    clinic = make_clinic()
    url = "smtp://clinic:s3cret-pw@mail.clinic.example:587?starttls=true"

    result = transport("--clinic", str(clinic), "--smtp-url", url)

    assert result.exit_code == 0, result.output
    assert "s3cret-pw" not in result.output
    assert "smtp://clinic:***@mail.clinic.example:587" in result.output
    with session_scope() as session:
        stored = session.get(ClinicTransport, clinic)
        assert stored is not None and "s3cret-pw" not in stored.smtp_url
    shown = transport("--clinic", str(clinic))
    assert "***" in shown.output and "s3cret-pw" not in shown.output


def test_a_bad_url_is_refused_with_what_to_write(settings: Settings) -> None:
    clinic = make_clinic()
    result = transport("--clinic", str(clinic), "--smtp-url", "smtp://:587")
    assert result.exit_code == 2
    assert "use smtp://user:pass@host:587" in result.output


def test_each_clinic_sends_through_its_own_server_or_the_platforms(
    settings: Settings, smtp_server: SMTPServer, own_server: SMTPServer
) -> None:
    own = make_clinic(name="Own", sender="care@own.example")
    shared = make_clinic(name="Shared", sender="care@shared.example")
    transport("--clinic", str(own), "--smtp-url", own_server.url)
    for clinic in (own, shared):
        make_enrollment(settings, clinic, DAYTIME - timedelta(hours=3))

    assert send_due(smtp_server)["sent"] == 2

    assert [m["From"].addresses[0].domain for m in own_server.recorder.messages] == ["own.example"]
    assert [m["From"].addresses[0].domain for m in smtp_server.recorder.messages] == [
        "shared.example"
    ]


def test_cleared_the_clinic_is_back_on_the_platforms_server(
    settings: Settings, smtp_server: SMTPServer, own_server: SMTPServer
) -> None:
    clinic = make_clinic()
    transport("--clinic", str(clinic), "--smtp-url", own_server.url)
    result = transport("--clinic", str(clinic), "--clear")
    assert "the platform's server" in result.output
    make_enrollment(settings, clinic, DAYTIME - timedelta(hours=3))

    send_due(smtp_server)

    assert len(smtp_server.recorder.messages) == 1 and not own_server.recorder.messages


def test_an_environment_reference_missing_here_defers_never_drops(
    settings: Settings,
    smtp_server: SMTPServer,
    own_server: SMTPServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clinic = make_clinic()
    transport("--clinic", str(clinic), "--smtp-url", "env:CLINIC_SMTP_URL")
    make_enrollment(settings, clinic, DAYTIME - timedelta(hours=3))

    assert send_due(smtp_server)["deferred"] == 1
    assert tried() == [(MessageStatus.SCHEDULED, 0)]  # waiting costs it no attempt
    assert not smtp_server.recorder.messages  # not sent through a server the clinic did not pick

    monkeypatch.setenv("CLINIC_SMTP_URL", own_server.url)
    with time_machine.travel(DAYTIME + timedelta(hours=2), tick=True):
        assert send_due(smtp_server)["sent"] == 1
    assert len(own_server.recorder.messages) == 1
