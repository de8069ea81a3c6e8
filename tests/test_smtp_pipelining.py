"""SMTP PIPELINING (smtp_pipelining.py) against real servers: aiosmtpd advertising PIPELINING
or not, and a small socket server that hangs up in the middle of a body.

Every refusal must mean on the pipelined path what it means on smtplib's: the same exception,
stage and code, and the connection usable afterwards (one EHLO, one session).
"""

from __future__ import annotations

import smtplib
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from hypothesis import given, settings
from hypothesis import strategies as st

from dripcare.sending.smtp_pipelining import quoted, wire_body
from dripcare.sending.smtp_replies import Stage
from dripcare.sending.transports import (
    ConnectionFailure,
    PermanentError,
    RecipientRefused,
    SMTPTransport,
    TransientError,
    TransportFailure,
)
from tests.fast_loop import examples
from tests.test_transports import SENDER, Handler, free_port, message


@dataclass
class PipeliningHandler(Handler):
    """test_transports' handler, advertising PIPELINING when told to."""

    pipelining: bool = True

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        responses = await super().handle_EHLO(server, session, envelope, hostname, responses)
        return [responses[0], "250-PIPELINING", *responses[1:]] if self.pipelining else responses


@dataclass
class Server:
    handler: PipeliningHandler
    port: int

    def transport(self) -> SMTPTransport:
        return SMTPTransport("127.0.0.1", self.port, timeout=10)


@pytest.fixture(params=[True, False], ids=["pipelining", "no-pipelining"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    handler = PipeliningHandler(pipelining=request.param)
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield Server(handler, port)
    finally:
        controller.stop()


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every write smtplib's connection makes (each is followed by a wait for replies)."""
    seen: list[bytes] = []
    original = smtplib.SMTP.send

    def send(self: smtplib.SMTP, s: bytes | str) -> None:
        seen.append(s if isinstance(s, bytes) else s.encode())
        original(self, s)

    monkeypatch.setattr(smtplib.SMTP, "send", send)
    return seen


def test_two_round_trips_a_message_with_pipelining_four_without(
    server: Server, writes: list[bytes]
) -> None:
    with server.transport() as transport:
        transport.send(SENDER, "first@example.com", message("a@x"), "a@x")
        before = len(writes)
        transport.send(SENDER, "second@example.com", message("b@x"), "b@x")
        per_message = len(writes) - before
    assert per_message == (2 if server.handler.pipelining else 4)
    assert [d.data for d in server.handler.delivered] == [message("a@x"), message("b@x")]
    if server.handler.pipelining:
        envelope = writes[before].decode()
        assert envelope.startswith("MAIL FROM:<care@riverside.example> SIZE=")
        assert envelope.endswith("\r\nRCPT TO:<second@example.com>\r\nDATA\r\n")


def test_a_refused_recipient_in_the_middle_of_a_batch(server: Server) -> None:
    server.handler.rcpt_replies["gone@example.com"] = "550 5.1.1 No such user"
    server.handler.rcpt_replies["later@example.com"] = "450 4.2.0 Mailbox busy"
    outcomes: list[str] = []
    with server.transport() as transport:
        for number, to in enumerate(
            ["a@example.com", "gone@example.com", "b@example.com", "later@example.com", "c@x.org"]
        ):
            try:
                transport.send(SENDER, to, message(f"{number}@x"), f"{number}@x")
                outcomes.append("sent")
            except TransientError as exc:  # before PermanentError: none is both
                outcomes.append(f"transient {exc.code} {exc.stage}")
            except RecipientRefused as exc:
                outcomes.append(f"refused {exc.code} {exc.stage}")

    assert outcomes == [
        "sent",
        "refused 550 rcpt-to",
        "sent",
        "transient 450 rcpt-to",
        "sent",
    ]
    handler = server.handler
    assert [d.rcpt_tos for d in handler.delivered] == [
        ["a@example.com"],
        ["b@example.com"],
        ["c@x.org"],
    ]
    assert [d.data for d in handler.delivered] == [message("0@x"), message("2@x"), message("4@x")]
    assert handler.greetings == 1
    assert len(handler.sessions) == 1


@pytest.mark.parametrize(
    ("reply", "error"),
    [("451 4.3.0 Try again later", TransientError), ("554 5.6.0 Content refused", PermanentError)],
)
def test_a_refused_data_keeps_the_connection_usable(
    server: Server, reply: str, error: type[Exception]
) -> None:
    server.handler.data_replies["refused@example.com"] = reply
    with server.transport() as transport:
        with pytest.raises(error) as info:
            transport.send(SENDER, "refused@example.com", message("a@x"), "a@x")
        assert isinstance(info.value, PermanentError) == (error is PermanentError)
        transport.send(SENDER, "next@example.com", message("b@x"), "b@x")
    assert info.value.stage is Stage.DATA  # type: ignore[attr-defined]
    assert info.value.code == int(reply[:3])  # type: ignore[attr-defined]
    assert [d.rcpt_tos for d in server.handler.delivered] == [["next@example.com"]]
    assert server.handler.greetings == 1


def test_a_refused_sender_is_a_transport_failure_and_the_connection_stays(server: Server) -> None:
    server.handler.mail_replies["bad@riverside.example"] = "553 5.7.1 Sender not allowed"
    with server.transport() as transport:
        with pytest.raises(TransportFailure) as info:
            transport.send("bad@riverside.example", "a@example.com", message("a@x"), "a@x")
        transport.send(SENDER, "b@example.com", message("b@x"), "b@x")
    assert (info.value.stage, info.value.code) == (Stage.MAIL_FROM, 553)
    assert not isinstance(info.value, ConnectionFailure)
    assert [d.rcpt_tos for d in server.handler.delivered] == [["b@example.com"]]
    assert server.handler.greetings == 1


def test_421_on_rcpt_closes_and_the_next_message_reconnects(server: Server) -> None:
    server.handler.rcpt_replies["shutdown@example.com"] = "421 4.3.2 Service shutting down"
    with server.transport() as transport:
        with pytest.raises(TransientError) as info:
            transport.send(SENDER, "shutdown@example.com", message("d@x"), "d@x")
        transport.send(SENDER, "after@example.com", message("e@x"), "e@x")
    assert (info.value.code, info.value.stage) == (421, Stage.RCPT_TO)
    assert [d.rcpt_tos for d in server.handler.delivered] == [["after@example.com"]]
    assert server.handler.greetings == 2


def test_lines_starting_with_a_dot_arrive_intact(server: Server) -> None:
    data = b".first line\r\n\r\n..two\r\n.\r\n. \r\nend.\r\n.."  # no final CRLF either
    with server.transport() as transport:
        transport.send(SENDER, "a@example.com", data, "a@x")
    assert server.handler.delivered[0].data == data + b"\r\n"


def test_bare_line_feeds_go_as_crlf_when_pipelining() -> None:
    """smtplib sends bytes' line endings as they are; the pipelined path makes them CRLF."""
    handler = PipeliningHandler(pipelining=True)
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with SMTPTransport("127.0.0.1", port, timeout=10) as transport:
            transport.send(SENDER, "a@example.com", b"Subject: x\n\nline\n.dot\rend", "a@x")
    finally:
        controller.stop()
    assert handler.delivered[0].data == b"Subject: x\r\n\r\nline\r\n.dot\r\nend\r\n"


@pytest.mark.parametrize(
    ("data", "wire"),
    [
        (b"a\r\nb\r\n", b"a\r\nb\r\n.\r\n"),
        (b"a\r\nb", b"a\r\nb\r\n.\r\n"),
        (b".a\r\n.\r\n..\r\n", b"..a\r\n..\r\n...\r\n.\r\n"),
        (b"a\nb\n.c\r.d", b"a\r\nb\r\n..c\r\n..d\r\n.\r\n"),
        (b"a\r\r\nb", b"a\r\n\r\nb\r\n.\r\n"),
        (b"", b"\r\n.\r\n"),
        (b"a\n\rb", b"a\r\n\r\nb\r\n.\r\n"),  # as many CR as LF, none paired
        (b"a\n.\r\nb", b"a\r\n..\r\nb\r\n.\r\n"),  # no early end of data (smuggling)
    ],
)
def test_wire_body(data: bytes, wire: bytes) -> None:
    assert wire_body(data) == wire


@settings(max_examples=examples(500), deadline=None, database=None)
@given(st.binary(max_size=40) | st.text("a.\r\n", max_size=40).map(str.encode))
def test_wire_body_has_only_crlf_and_one_end(data: bytes) -> None:
    wire = wire_body(data)
    lines = wire.split(b"\r\n")
    assert lines[-2:] == [b".", b""]
    assert not any(b"\r" in line or b"\n" in line for line in lines)
    assert all(not line.startswith(b".") or line.startswith(b"..") for line in lines[:-2])
    unstuffed = [line[1:] if line.startswith(b".") else line for line in lines[:-2]]
    expected = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    assert (
        b"\n".join(unstuffed) == (expected if expected.endswith(b"\n") else expected + b"\n")[:-1]
    )


# ---- a server that hangs up in the middle of a body ---------------------------------------------


@dataclass
class RawServer:
    """Just enough SMTP, with PIPELINING, to hang up after `drop_after` bytes of a body."""

    drops: int = 1  # how many bodies to cut short
    drop_after: int = 200
    rcpt_reply: bytes = b"250 OK\r\n"  # DATA gets 354 whatever RCPT got: a broken server
    bodies: list[bytes] = field(default_factory=list)
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def serve(self, rfile: Any, wfile: Any) -> None:
        wfile.write(b"220 raw ESMTP\r\n")
        with self.lock:
            self.connections += 1
        while line := rfile.readline():
            verb = line[:4].upper()
            if verb == b"EHLO":
                wfile.write(b"250-raw\r\n250-PIPELINING\r\n250 SIZE 10000000\r\n")
            elif verb == b"DATA":
                wfile.write(b"354 go on\r\n")
                if not self._body(rfile, wfile):
                    return
            elif verb == b"RCPT":
                wfile.write(self.rcpt_reply)
            elif verb == b"QUIT":
                wfile.write(b"221 bye\r\n")
                return
            else:  # MAIL, RSET, NOOP
                wfile.write(b"250 OK\r\n")

    def _body(self, rfile: Any, wfile: Any) -> bool:
        with self.lock:
            drop = self.drops > 0
            self.drops -= drop
        if drop:
            rfile.read(self.drop_after)
            return False
        lines = []
        while (line := rfile.readline()) != b".\r\n":
            lines.append(line[1:] if line.startswith(b".") else line)
        with self.lock:
            self.bodies.append(b"".join(lines))
        wfile.write(b"250 queued\r\n")
        return True


@pytest.fixture
def raw_server() -> Iterator[tuple[RawServer, int]]:
    raw = RawServer()

    class Handle(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            raw.serve(self.rfile, self.wfile)

    class Threaded(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    with Threaded(("127.0.0.1", 0), Handle) as tcp:
        threading.Thread(target=tcp.serve_forever, daemon=True).start()
        try:
            yield raw, tcp.server_address[1]
        finally:
            tcp.shutdown()


def test_a_hang_up_mid_body_reconnects_once_and_sends_the_message_once(
    raw_server: tuple[RawServer, int],
) -> None:
    raw, port = raw_server
    with SMTPTransport("127.0.0.1", port, timeout=10) as transport:
        transport.send(SENDER, "a@example.com", message("a@x"), "a@x")
        transport.send(SENDER, "b@example.com", message("b@x"), "b@x")
    assert raw.bodies == [message("a@x"), message("b@x")]
    assert raw.connections == 2


def test_a_hang_up_mid_body_twice_is_a_connection_failure(
    raw_server: tuple[RawServer, int],
) -> None:
    raw, port = raw_server
    raw.drops = 2
    with SMTPTransport("127.0.0.1", port, timeout=10) as transport:
        with pytest.raises(ConnectionFailure, match="dropped the connection twice"):
            transport.send(SENDER, "a@example.com", message("a@x"), "a@x")
        transport.send(SENDER, "b@example.com", message("b@x"), "b@x")
    assert raw.bodies == [message("b@x")]
    assert raw.connections == 3


# ---- addresses --------------------------------------------------------------------------------

_ADDRESS_CHARS = "aZ09.!#$%&'*+/=?^_`{|}~-@ <>()[]\\\",;:é"


@settings(max_examples=examples(500), deadline=None, database=None)
@given(
    st.text(_ADDRESS_CHARS, max_size=12)
    | st.builds("{}@{}".format, st.text(_ADDRESS_CHARS, max_size=8), st.text("aZ09.-", max_size=8))
)
def test_addresses_are_quoted_as_smtplib_quotes_them(address: str) -> None:
    assert quoted(address) == smtplib.quoteaddr(address)


@pytest.mark.parametrize(
    "address", ["alex@example.com", "a.b+c@mail.example.co.uk", "o'neil@x-y.example"]
)
def test_plain_addresses_take_the_quick_path(address: str) -> None:
    assert quoted(address) == f"<{address}>" == smtplib.quoteaddr(address)


def test_a_354_after_a_refused_recipient_gets_an_empty_message_s_end(
    raw_server: tuple[RawServer, int],
) -> None:
    """RFC 2920 3.1: a server that accepts DATA with no valid recipient gets a lone ".",
    then RSET; the next message goes on the same connection."""
    raw, port = raw_server
    raw.drops = 0
    raw.rcpt_reply = b"550 5.1.1 No such user\r\n"
    with SMTPTransport("127.0.0.1", port, timeout=10) as transport:
        with pytest.raises(RecipientRefused):
            transport.send(SENDER, "gone@example.com", message("a@x"), "a@x")
        raw.rcpt_reply = b"250 OK\r\n"
        transport.send(SENDER, "b@example.com", message("b@x"), "b@x")
    assert raw.bodies == [b"", message("b@x")]
    assert raw.connections == 1
