"""Tests for dripcare.sending.transports against a real SMTP server (aiosmtpd on 127.0.0.1).

The server's replies are set per recipient, so one connection can be driven through success,
temporary and permanent refusals. Connections are counted with the EHLO/HELO hooks and by the
identity of aiosmtpd's per-connection `session` objects.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from dripcare.errors import UserError
from dripcare.sending.composing import Envelope, compose
from dripcare.sending.smtp_replies import Stage
from dripcare.sending.transports import (
    CaptureTransport,
    ConnectionFailure,
    ConsoleTransport,
    DeliveryError,
    PermanentError,
    RecipientRefused,
    SMTPTransport,
    TransientError,
    TransportFailure,
    transport_from_url,
)

SENDER = "care@riverside.example"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def message(message_id: str, body: str = "Hello Zoë") -> bytes:
    envelope = Envelope(
        from_name="Riverside Skin Clinic",
        from_addr=SENDER,
        to_addr="alex@example.com",
        subject=f"Test {message_id}",
        message_id=message_id,
        date=datetime(2026, 11, 24, 9, 0, tzinfo=UTC),
        list_unsubscribe=("https://dripcare.example/u/tok",),
    )
    text = f"{body}\n.a line starting with a dot\n..two dots\n.\nend\n"
    return compose(envelope, text, f"<p>{body}</p>\n<p>.</p>\n")


@dataclass
class Delivered:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    session: Any


@dataclass
class Handler:
    """aiosmtpd handler; replies are looked up by recipient address."""

    mail_replies: dict[str, str] = field(default_factory=dict)  # by sender
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_replies: dict[str, str] = field(default_factory=dict)
    delivered: list[Delivered] = field(default_factory=list)
    greetings: int = 0
    sessions: list[Any] = field(default_factory=list)
    drops_at_mail: int = 0  # hang up, without a reply, on this many MAIL commands

    def _seen(self, session: Any) -> None:
        if not any(known is session for known in self.sessions):
            self.sessions.append(session)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.greetings += 1
        session.host_name = hostname
        return responses

    async def handle_HELO(self, server: Any, session: Any, envelope: Any, hostname: str) -> str:
        self.greetings += 1
        session.host_name = hostname
        return "250 riverside-test"

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self._seen(session)
        if self.drops_at_mail:
            self.drops_at_mail -= 1
            server.transport.close()
            return ""
        if address in self.mail_replies:
            return self.mail_replies[address]
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self._seen(session)
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self._seen(session)
        reply = self.data_replies.get(envelope.rcpt_tos[0])
        if reply:
            return reply
        self.delivered.append(
            Delivered(
                envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content, session
            )
        )
        return "250 2.0.0 queued"


@dataclass
class Server:
    handler: Handler
    port: int
    controller: Controller

    def restart(self) -> None:
        """Stop and start again on the same port: open client connections are dropped."""
        self.controller.stop()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def transport(self) -> SMTPTransport:
        return SMTPTransport("127.0.0.1", self.port, timeout=10)


@pytest.fixture
def server() -> Iterator[Server]:
    handler = Handler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    running = Server(handler, port, controller)
    try:
        yield running
    finally:
        running.controller.stop()


# ---- transport_from_url ------------------------------------------------------------------------


def test_smtp_url_with_credentials_and_starttls() -> None:
    transport = transport_from_url("smtp://user:pass@mail.example.com:587?starttls=true")
    assert isinstance(transport, SMTPTransport)
    assert (transport.host, transport.port) == ("mail.example.com", 587)
    assert transport.starttls is True
    assert transport.ssl_on_connect is False
    assert (transport.username, transport.password) == ("user", "pass")


def test_smtp_url_percent_encoded_credentials_and_timeout() -> None:
    transport = transport_from_url(
        "smtp://apikey%40example.com:p%3Ass%2Fw0rd@mail.example.com:2525?starttls=1", timeout=7.5
    )
    assert isinstance(transport, SMTPTransport)
    assert (transport.username, transport.password) == ("apikey@example.com", "p:ss/w0rd")
    assert transport.port == 2525
    assert transport.starttls is True
    assert transport.timeout == 7.5


@pytest.mark.parametrize(
    ("url", "port", "starttls"),
    [
        ("smtp://mail.example.com", 25, False),
        ("smtp://mail.example.com:587?starttls=false", 587, False),
        ("smtp://mail.example.com:587?starttls=no", 587, False),
    ],
)
def test_plain_smtp_url_defaults(url: str, port: int, starttls: bool) -> None:
    transport = transport_from_url(url)
    assert isinstance(transport, SMTPTransport)
    assert transport.port == port
    assert transport.starttls is starttls
    assert transport.ssl_on_connect is False
    assert (transport.username, transport.password) == ("", "")


@pytest.mark.parametrize(
    ("url", "metadata"),
    [
        ("smtp://token:token@smtp.postmarkapp.com:587?starttls=true", True),
        ("smtp://token:token@SMTP-Broadcasts.postmarkapp.com:2525", True),
        ("smtp://token:token@smtp.postmarkapp.com:587?postmark_metadata=false", False),
        ("smtp://relay.example.com:587?postmark_metadata=true", True),
        ("smtp://mail.example.com", False),
    ],
)
def test_postmarks_metadata_header_is_chosen_once_by_host_or_url(url: str, metadata: bool) -> None:
    transport = transport_from_url(url)
    assert isinstance(transport, SMTPTransport)
    assert transport.postmark_metadata is metadata


def test_smtps_url_uses_tls_on_connect_and_port_465() -> None:
    transport = transport_from_url("smtps://mail.example.com")
    assert isinstance(transport, SMTPTransport)
    assert (transport.host, transport.port) == ("mail.example.com", 465)
    assert transport.ssl_on_connect is True
    assert transport.starttls is False


@pytest.mark.parametrize(
    ("url", "expected"),
    [("capture://var/outbox", Path("var/outbox")), ("capture:///tmp/dc-out", Path("/tmp/dc-out"))],
    ids=["relative", "absolute"],
)
def test_capture_url(url: str, expected: Path) -> None:
    transport = transport_from_url(url)
    assert isinstance(transport, CaptureTransport)
    assert transport.directory == expected


def test_console_url() -> None:
    assert isinstance(transport_from_url("console://"), ConsoleTransport)


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("http://mail.example.com", "http"),
        ("ftp://x", "ftp"),
        ("mail.example.com:25", "mail.example.com"),
    ],
)
def test_unknown_scheme_is_a_user_error(url: str, scheme: str) -> None:
    with pytest.raises(UserError) as info:
        transport_from_url(url)
    text = str(info.value)
    assert f"unknown DRIPCARE_SMTP_URL scheme {scheme!r}" in text
    assert "smtp://" in text and "smtps://" in text and "capture://" in text


def test_smtp_url_without_host_is_a_user_error() -> None:
    with pytest.raises(UserError, match="has no host"):
        transport_from_url("smtp://:25")


@pytest.mark.parametrize("url", ["smtp://mail.example.com:abc", "smtp://mail.example.com:99999"])
def test_bad_port_is_a_user_error(url: str) -> None:
    with pytest.raises(UserError):
        transport_from_url(url)


# ---- SMTPTransport against aiosmtpd ------------------------------------------------------------


def test_delivered_bytes_arrive_intact(server: Server) -> None:
    data = message("m1@dripcare.example")
    with server.transport() as transport:
        transport.send(SENDER, "alex@example.com", data, "m1@dripcare.example")

    (got,) = server.handler.delivered
    assert got.mail_from == SENDER
    assert got.rcpt_tos == ["alex@example.com"]
    assert got.data == data  # dot-stuffing undone, nothing re-encoded
    assert b"\r\n.a line starting with a dot" in got.data


def test_postmark_metadata_names_the_message_ahead_of_the_rest(server: Server) -> None:
    data = message("m1@dripcare.example")
    postmark = SMTPTransport("127.0.0.1", server.port, timeout=10, postmark_metadata=True)
    with postmark as transport:
        transport.send(SENDER, "alex@example.com", data, "<m1@dripcare.example>")
    with server.transport() as transport:
        transport.send(SENDER, "alex@example.com", data, "<m1@dripcare.example>")

    marked, plain = server.handler.delivered
    assert marked.data == b"X-PM-Metadata-dripcare-message: m1@dripcare.example\r\n" + data
    assert plain.data == data


def test_rcpt_550_is_permanent(server: Server) -> None:
    server.handler.rcpt_replies["gone@example.com"] = "550 5.1.1 <gone@example.com>: no such user"
    with server.transport() as transport, pytest.raises(PermanentError) as info:
        transport.send(SENDER, "gone@example.com", message("m2@x"), "m2@x")
    assert info.value.code == 550
    assert not isinstance(info.value, TransientError)
    assert str(info.value) == "550 5.1.1 <gone@example.com>: no such user"
    assert server.handler.delivered == []


@pytest.mark.parametrize(
    "reply", ["451 4.3.0 Temporary local problem, try later", "452 4.2.2 Mailbox full"]
)
def test_rcpt_4xx_is_transient(server: Server, reply: str) -> None:
    server.handler.rcpt_replies["busy@example.com"] = reply
    with server.transport() as transport, pytest.raises(TransientError) as info:
        transport.send(SENDER, "busy@example.com", message("m3@x"), "m3@x")
    assert info.value.code == int(reply[:3])
    assert not isinstance(info.value, (PermanentError, ConnectionFailure))
    assert str(info.value) == reply


def test_data_554_is_permanent(server: Server) -> None:
    server.handler.data_replies["spam@example.com"] = "554 5.7.1 Message rejected as spam"
    with server.transport() as transport, pytest.raises(PermanentError) as info:
        transport.send(SENDER, "spam@example.com", message("m4@x"), "m4@x")
    assert info.value.code == 554
    assert "5.7.1 Message rejected as spam" in str(info.value)


def test_data_451_is_transient(server: Server) -> None:
    server.handler.data_replies["later@example.com"] = "451 4.7.1 Greylisted, come back later"
    with server.transport() as transport, pytest.raises(TransientError) as info:
        transport.send(SENDER, "later@example.com", message("m5@x"), "m5@x")
    assert info.value.code == 451
    assert not isinstance(info.value, (PermanentError, ConnectionFailure))


def test_mail_from_refused_is_a_transport_failure_not_a_refused_recipient(server: Server) -> None:
    server.handler.mail_replies["blocked@riverside.example"] = "553 5.7.1 Sender not allowed"
    with server.transport() as transport, pytest.raises(TransportFailure) as info:
        transport.send("blocked@riverside.example", "alex@example.com", message("m6@x"), "m6@x")
    assert info.value.code == 553
    assert info.value.stage == Stage.MAIL_FROM


def test_rcpt_no_such_user_is_a_refused_recipient(server: Server) -> None:
    server.handler.rcpt_replies["gone@example.com"] = "550 5.1.1 no such user"
    with server.transport() as transport, pytest.raises(RecipientRefused) as info:
        transport.send(SENDER, "gone@example.com", message("m8@x"), "m8@x")
    assert info.value.stage == Stage.RCPT_TO


def test_nothing_listening_is_a_connection_failure() -> None:
    port = free_port()  # bound and released: nothing listens there
    transport = SMTPTransport("127.0.0.1", port, timeout=10)
    with transport, pytest.raises(ConnectionFailure) as info:
        transport.send(SENDER, "alex@example.com", message("m7@x"), "m7@x")
    assert f"127.0.0.1:{port}" in str(info.value)
    assert isinstance(info.value, TransientError)  # the batch waits; no message is blamed


def test_many_messages_share_one_connection(server: Server) -> None:
    ids = [f"batch{i}@dripcare.example" for i in range(5)]
    with server.transport() as transport:
        for i, message_id in enumerate(ids):
            transport.send(SENDER, f"patient{i}@example.com", message(message_id), message_id)

    handler = server.handler
    assert [d.rcpt_tos for d in handler.delivered] == [
        [f"patient{i}@example.com"] for i in range(5)
    ]
    assert handler.greetings == 1
    assert len(handler.sessions) == 1
    assert all(d.session is handler.sessions[0] for d in handler.delivered)


@pytest.mark.parametrize(
    ("where", "reply", "error"),
    [
        ("rcpt", "550 5.1.1 no such user", PermanentError),
        ("rcpt", "451 4.3.0 try later", TransientError),
        ("data", "554 5.7.1 rejected", PermanentError),
        ("data", "452 4.3.1 insufficient storage", TransientError),
    ],
)
def test_connection_is_reused_after_a_refusal(
    server: Server, where: str, reply: str, error: type[DeliveryError]
) -> None:
    replies = server.handler.rcpt_replies if where == "rcpt" else server.handler.data_replies
    replies["refused@example.com"] = reply
    with server.transport() as transport:
        transport.send(SENDER, "first@example.com", message("a@x"), "a@x")
        with pytest.raises(error):
            transport.send(SENDER, "refused@example.com", message("b@x"), "b@x")
        transport.send(SENDER, "next@example.com", message("c@x"), "c@x")

    handler = server.handler
    assert [d.rcpt_tos for d in handler.delivered] == [["first@example.com"], ["next@example.com"]]
    assert handler.delivered[1].data == message("c@x")
    assert handler.greetings == 1
    assert len(handler.sessions) == 1


def test_421_on_rcpt_is_transient_and_the_next_message_reconnects(server: Server) -> None:
    server.handler.rcpt_replies["shutdown@example.com"] = "421 4.3.2 Service shutting down"
    with server.transport() as transport:
        with pytest.raises(TransientError) as info:
            transport.send(SENDER, "shutdown@example.com", message("d@x"), "d@x")
        assert info.value.code == 421
        transport.send(SENDER, "after@example.com", message("e@x"), "e@x")
    assert [d.rcpt_tos for d in server.handler.delivered] == [["after@example.com"]]
    assert server.handler.greetings == 2  # smtplib closed the first connection on 421


def test_dropped_connection_is_reopened_once(server: Server) -> None:
    with server.transport() as transport:
        transport.send(SENDER, "one@example.com", message("f@x"), "f@x")
        server.restart()  # the open connection is gone when the next message starts
        transport.send(SENDER, "two@example.com", message("g@x"), "g@x")
    delivered = server.handler.delivered
    assert [d.rcpt_tos for d in delivered] == [["one@example.com"], ["two@example.com"]]
    assert delivered[0].session is not delivered[1].session
    assert server.handler.greetings == 2


def test_a_connection_dropped_again_after_reconnecting_is_a_transport_failure(
    server: Server,
) -> None:
    """Not a bare smtplib exception that would end the batch with its rows still `sending`."""
    server.handler.drops_at_mail = 2
    with server.transport() as transport:
        with pytest.raises(ConnectionFailure, match="dropped the connection twice"):
            transport.send(SENDER, "one@example.com", message("j@x"), "j@x")
        transport.send(SENDER, "two@example.com", message("k@x"), "k@x")  # a new connection
    assert [d.rcpt_tos for d in server.handler.delivered] == [["two@example.com"]]
    assert server.handler.greetings == 3


def test_close_is_idempotent_and_next_send_reconnects(server: Server) -> None:
    transport = server.transport()
    with transport:
        transport.send(SENDER, "a@example.com", message("h@x"), "h@x")
    transport.close()
    with transport:
        transport.send(SENDER, "b@example.com", message("i@x"), "i@x")
    assert len(server.handler.delivered) == 2
    assert server.handler.greetings == 2


class RejectingGreetingSMTP(SMTP):
    async def smtp_EHLO(self, arg: str) -> None:
        await self.push("554 5.7.1 You are not welcome here")

    async def smtp_HELO(self, arg: str) -> None:
        await self.push("554 5.7.1 You are not welcome here")


class RejectingGreetingController(Controller):
    def factory(self) -> SMTP:
        return RejectingGreetingSMTP(self.handler)


def test_refused_greeting_is_a_delivery_error() -> None:
    port = free_port()
    controller = RejectingGreetingController(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        transport = SMTPTransport("127.0.0.1", port, timeout=10)
        with transport, pytest.raises(DeliveryError):
            transport.send(SENDER, "alex@example.com", message("j@x"), "j@x")
    finally:
        controller.stop()


# ---- CaptureTransport / ConsoleTransport -------------------------------------------------------


def test_capture_writes_one_eml_per_message_id(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    first, second = message("<one@dripcare.example>"), message("<two@dripcare.example>")
    with CaptureTransport(outbox) as transport:
        transport.send(SENDER, "a@example.com", first, "<one@dripcare.example>")
        transport.send(SENDER, "b@example.com", second, "<two@dripcare.example>")

    files = sorted(p.name for p in outbox.iterdir())
    assert files == ["one_dripcare.example.eml", "two_dripcare.example.eml"]
    assert (outbox / "one_dripcare.example.eml").read_bytes() == first
    assert (outbox / "two_dripcare.example.eml").read_bytes() == second


def test_capture_resend_overwrites_instead_of_duplicating(tmp_path: Path) -> None:
    transport = transport_from_url(f"capture://{tmp_path}/out")
    with transport:
        transport.send(SENDER, "a@example.com", message("<same@x>", "first"), "<same@x>")
        transport.send(SENDER, "a@example.com", message("<same@x>", "second"), "same@x")

    files = list((tmp_path / "out").iterdir())
    assert [p.name for p in files] == ["same_x.eml"]
    content = files[0].read_bytes()
    assert content == message("<same@x>", "second")
    assert b"first" not in content


def test_capture_file_name_cannot_leave_the_directory(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    with CaptureTransport(outbox) as transport:
        transport.send(SENDER, "a@example.com", b"x\r\n", "../../etc/passwd")
    assert [p.name for p in outbox.iterdir()] == [".._.._etc_passwd.eml"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outbox"]


def test_console_prints_one_line_per_message(capsys: pytest.CaptureFixture[str]) -> None:
    with ConsoleTransport() as transport:
        transport.send(SENDER, "alex@example.com", message("<k@x>"), "<k@x>")
    out = capsys.readouterr().out
    assert out == "email <k@x> to alex@example.com: Subject: Test <k@x>\n"
