"""DKIM: keys made by the CLI, records to publish, and emails that verify against them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import dkim
import pytest
import time_machine
from click.testing import CliRunner
from sqlalchemy import select

from dripcare.cli import main
from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.models import DkimKey
from dripcare.sending import delivery
from dripcare.sending.transports import SMTPTransport
from tests.factories import DAYTIME, make_clinic, make_enrollment, send_due
from tests.smtp_server import SMTPServer

pytestmark = pytest.mark.usefixtures("daytime")  # conftest: a working morning


def make_key(clinic: int, *args: str) -> dict[str, str]:
    result = CliRunner().invoke(
        main, ["clinic", "dkim", "--clinic", str(clinic), *args, "--json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.output))


def dns_answering(record: dict[str, str]):  # type: ignore[no-untyped-def]
    """dkimpy's DNS lookup, answered from the record the CLI told us to publish."""

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        return record["value"].encode() if name.decode().rstrip(".") == record["name"] else None

    return dnsfunc


def signing_clinic_with_a_due_email(settings: Settings) -> dict[str, str]:
    """A clinic with DKIM key s1 and a patient whose day-0 email is due; the key's DNS record."""
    clinic = make_clinic()
    record = make_key(clinic, "--selector", "s1")
    make_enrollment(settings, clinic, datetime.now(UTC) - timedelta(hours=3))
    return record


def test_cli_prints_the_record_to_publish_and_never_the_private_key(settings: Settings) -> None:
    clinic = make_clinic()
    result = CliRunner().invoke(
        main, ["clinic", "dkim", "--clinic", str(clinic), "--selector", "s1"]
    )

    assert result.exit_code == 0, result.output
    assert 's1._domainkey.riverside.example TXT "v=DKIM1; k=rsa; p=MII' in result.output
    assert "PRIVATE KEY" not in result.output
    with session_scope() as session:
        stored = session.scalars(select(DkimKey)).one()
    assert stored.private_key.startswith("fernet:")
    assert "PRIVATE KEY" not in stored.private_key


def test_a_taken_selector_is_refused_with_what_to_do(settings: Settings) -> None:
    clinic = make_clinic()
    make_key(clinic, "--selector", "s1")
    again = CliRunner().invoke(
        main, ["clinic", "dkim", "--clinic", str(clinic), "--selector", "s1"]
    )
    assert again.exit_code == 2
    assert "already has a key; choose another --selector" in again.output


def test_a_sent_email_verifies_against_the_published_key(
    settings: Settings, smtp_server: SMTPServer
) -> None:
    record = signing_clinic_with_a_due_email(settings)

    send_due(smtp_server)

    (raw,) = smtp_server.recorder.raw
    assert raw.startswith(b"DKIM-Signature: ")
    assert dkim.verify(raw, dnsfunc=dns_answering(record))
    signature = dkim.DKIM(raw)
    signature.verify(dnsfunc=dns_answering(record))
    signed = {name.lower() for name, _ in signature.signed_headers}
    assert {b"list-unsubscribe", b"list-unsubscribe-post", b"from", b"date"} <= signed


def test_postmarks_metadata_header_leaves_the_signature_valid(
    settings: Settings, smtp_server: SMTPServer
) -> None:
    record = signing_clinic_with_a_due_email(settings)
    postmark = SMTPTransport("127.0.0.1", smtp_server.port, postmark_metadata=True)

    delivery.send_due(session_scope, settings, postmark)

    (raw,) = smtp_server.recorder.raw
    (sent,) = smtp_server.recorder.messages
    assert raw.startswith(b"X-PM-Metadata-dripcare-message: ")
    assert f"<{sent['X-PM-Metadata-dripcare-message']}>" == sent["Message-ID"]
    assert dkim.verify(raw, dnsfunc=dns_answering(record))


def test_a_changed_email_no_longer_verifies(settings: Settings, smtp_server: SMTPServer) -> None:
    record = signing_clinic_with_a_due_email(settings)

    send_due(smtp_server)

    (raw,) = smtp_server.recorder.raw
    assert not dkim.verify(
        raw.replace(b"Subject: ", b"Subject: FREE "), dnsfunc=dns_answering(record)
    )


def test_a_clinic_without_a_key_sends_unsigned(settings: Settings, smtp_server: SMTPServer) -> None:
    signing = make_clinic(sender="care@signed.example")
    make_key(signing)
    clinic = make_clinic(name="Other", sender="hello@unsigned.example")
    make_enrollment(settings, clinic, datetime.now(UTC) - timedelta(hours=3))

    send_due(smtp_server)

    (raw,) = smtp_server.recorder.raw
    assert b"DKIM-Signature" not in raw


def test_a_key_that_cannot_be_opened_defers_the_email_never_fails_it(
    settings: Settings, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dripcare import db
    from dripcare.models import Message, MessageStatus

    signing_clinic_with_a_due_email(settings)
    monkeypatch.setenv("DRIPCARE_SECRET_KEY", "another-secret-key-than-the-one-that-sealed-it")
    db.reset()

    assert send_due(smtp_server)["deferred"] == 1

    assert not smtp_server.recorder.messages
    with session_scope() as session:
        (deferred,) = session.scalars(select(Message).where(Message.last_error != ""))
        assert deferred.status == MessageStatus.SCHEDULED
        assert deferred.attempts == 0  # waiting for the key costs it no attempt
        assert "restore the key it was sealed with" in (deferred.last_error or "")


def test_openssl_signing_gives_dkimpys_own_signature_byte_for_byte(settings: Settings) -> None:
    """The RSA step is OpenSSL's instead of dkimpy's; PKCS#1 v1.5 is deterministic, so the
    header must be exactly the one dkimpy makes by itself."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from dripcare import secrets_box
    from dripcare.sending.dkim_keys import SIGNED_HEADERS, Signer

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    data = (
        b"From: Clinic <care@riverside.example>\r\nTo: pat@example.com\r\nSubject: Day 1\r\n"
        b"Date: Tue, 01 Dec 2026 10:00:00 +0000\r\nList-Unsubscribe: <https://care.test/u/x>\r\n"
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\nBody  text\r\n"
    )
    signer = Signer("riverside.example", "s1", secrets_box.seal(settings, pem.decode()))
    with time_machine.travel(DAYTIME, tick=False):  # the t= tag
        ours = signer.sign(settings, data)
        theirs = dkim.sign(
            data,
            b"s1",
            b"riverside.example",
            pem,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=SIGNED_HEADERS,
        )
    assert ours == theirs + data
