"""The channel seam: delivery hands each channel's messages to that channel's sender."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pytest
from sqlalchemy import select

from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.models import Message, MessageStatus
from dripcare.sending import channels, delivery, message_view
from dripcare.sending.transports import SMTPTransport, Transport
from tests.factories import make_clinic, make_enrollment
from tests.smtp_server import SMTPServer

pytestmark = pytest.mark.usefixtures("daytime")  # conftest: a working morning


class Pigeon:
    """A second channel that records what it was given and reports every message sent."""

    made: ClassVar[list[Pigeon]] = []

    def __init__(self, transport: Transport, settings: Settings) -> None:
        self.carried: list[str] = []
        Pigeon.made.append(self)

    def deliver(
        self,
        jobs: list[message_view.Job],
        now: Callable[[], datetime],
        result: delivery.BatchResult,
    ) -> Iterator[delivery.Outcome]:
        for job in jobs:
            self.carried.append(job.to)
            yield delivery.Outcome(job.pk, MessageStatus.SENT, version=job.version)


def test_a_second_channel_sends_its_messages_and_smtp_gets_none(
    settings: Settings, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an email due now, and its channel a second one
    Pigeon.made.clear()
    monkeypatch.setitem(delivery.CHANNELS, "pigeon", Pigeon)
    monkeypatch.setattr(channels, "channel_of", lambda job: "pigeon")
    make_enrollment(settings, make_clinic(), datetime.now(UTC) - timedelta(hours=3))

    # When the due messages are sent
    transport = SMTPTransport("127.0.0.1", smtp_server.port, timeout=5)
    totals = delivery.send_due(session_scope, settings, transport)

    # Then that channel's sender, made once for the batch, sent them, and SMTP saw nothing
    with session_scope() as session:
        sent = session.scalars(select(Message.id).where(Message.status == MessageStatus.SENT))
        assert len(list(sent)) == totals["sent"] >= 1
    assert len(Pigeon.made) == 1
    assert Pigeon.made[0].carried == ["pat@example.com"] * totals["sent"]
    assert smtp_server.recorder.messages == []
