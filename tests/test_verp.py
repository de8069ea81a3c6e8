"""VERP: each patient email's envelope sender names its message, in a token nobody can forge."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.models import Message
from dripcare.sending import verp
from tests.factories import DAYTIME, make_clinic, make_enrollment, send_due
from tests.smtp_server import SMTPServer

pytestmark = pytest.mark.usefixtures("daytime")  # conftest: a working morning


def test_tokens_survive_lowercasing_and_refuse_tampering(settings: Settings) -> None:
    token = verp.make_token(settings, 42)

    assert token == token.lower()
    assert verp.read_token(settings, token.upper()) == 42
    assert verp.read_token(settings, token.replace("m42", "m43")) is None
    assert verp.read_token(settings, "hello") is None
    assert verp.token_in_address(f"<Bounces+{token}@b.example>") == token
    assert verp.token_in_address("care@clinic.example") is None


def test_with_a_bounce_domain_mail_from_names_the_message_and_from_stays_the_clinic(
    verp_settings: Settings, smtp_server: SMTPServer
) -> None:
    clinic = make_clinic()
    make_enrollment(verp_settings, clinic, DAYTIME - timedelta(hours=3))

    send_due(smtp_server)

    [sent] = smtp_server.recorder.messages
    [mail_from] = smtp_server.recorder.senders
    with session_scope() as session:
        pk = session.scalar(select(Message.id).where(Message.message_id == sent["Message-ID"]))
    assert mail_from.startswith("bounces+m") and mail_from.endswith("@bounce.riverside.example")
    assert verp.read_token(verp_settings, verp.token_in_address(mail_from) or "") == pk
    assert "care@riverside.example" in str(sent["From"])


def test_without_a_bounce_domain_mail_from_is_the_clinic_sender(
    settings: Settings, smtp_server: SMTPServer
) -> None:
    make_enrollment(settings, make_clinic(), DAYTIME - timedelta(hours=3))

    send_due(smtp_server)

    assert smtp_server.recorder.senders == ["care@riverside.example"]


def test_bounce_addresses_are_told_from_others(verp_settings: Settings) -> None:
    token = verp.make_token(verp_settings, 7)

    assert verp.is_bounce_address(verp_settings, f"<Bounces+{token}@Bounce.Riverside.Example>")
    assert verp.is_bounce_address(verp_settings, "bounces@bounce.riverside.example")
    assert not verp.is_bounce_address(verp_settings, "care@bounce.riverside.example")
    assert not verp.is_bounce_address(verp_settings, f"bounces+{token}@riverside.example")
