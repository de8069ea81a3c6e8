"""A DNS server in this process (dnslib) answering TXT queries from a dict: no outside network."""

from __future__ import annotations

from typing import Any

from dnslib import QTYPE, RCODE, RR, TXT
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from tests.conftest import free_port


class Zone(BaseResolver):  # type: ignore[misc]
    def __init__(self) -> None:
        self.txt: dict[str, list[str]] = {}
        self.failing: set[str] = set()  # answered SERVFAIL, as a broken name server does

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        if name in self.failing:
            reply.header.rcode = RCODE.SERVFAIL
        elif name not in self.txt:
            reply.header.rcode = RCODE.NXDOMAIN
        elif request.q.qtype == QTYPE.TXT:
            for text in self.txt[name]:
                # one TXT record of strings of at most 255 bytes, as DNS hosts publish long ones
                chunks = [text[i : i + 255].encode() for i in range(0, len(text), 255)]
                reply.add_answer(RR(name, QTYPE.TXT, rdata=TXT(chunks), ttl=60))
        return reply


class LocalDNS:
    def __init__(self) -> None:
        self.zone = Zone()
        self.port = free_port()
        quiet = DNSLogger(logf=lambda _: None)  # its default prints into the CLI's output
        self.server = DNSServer(self.zone, port=self.port, address="127.0.0.1", logger=quiet)

    @property
    def nameserver(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> LocalDNS:
        self.server.start_thread()
        return self

    def stop(self) -> None:
        self.server.stop()
