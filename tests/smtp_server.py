"""A real SMTP server for tests (aiosmtpd), recording what arrives and answering as told."""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, syntax


@dataclass
class Recorder:
    """aiosmtpd handler. `rcpt_replies` maps an address to the reply its RCPT TO gets;
    `replies` maps a stage ("connect", "ehlo", "starttls", "auth", "mail", "rcpt", "data") to
    the reply every client gets there, as a misconfigured or unforgiving server would answer.
    With a "starttls" reply the server offers STARTTLS and answers it with that reply.
    It advertises PIPELINING (RFC 2920) as Postfix does, unless `pipelining` is False."""

    messages: list[EmailMessage] = field(default_factory=list)
    senders: list[str] = field(default_factory=list)  # each message's MAIL FROM
    raw: list[bytes] = field(default_factory=list)  # the bytes as received (DKIM checks them)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    replies: dict[str, str] = field(default_factory=dict)
    stall_at: int | None = None  # hold the n-th message until `release` (to kill a sender)
    delay: float = 0.0  # seconds each DATA takes, as a slow relay would (fault tests)
    pipelining: bool = True
    stalled: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        if "ehlo" in self.replies:
            return [self.replies["ehlo"]]
        session.host_name = hostname
        extra = ["250-STARTTLS"] if "starttls" in self.replies else []
        extra += ["250-PIPELINING"] if self.pipelining else []
        return [responses[0], *extra, *responses[1:]]

    async def handle_HELO(self, server: Any, session: Any, envelope: Any, hostname: str) -> str:
        if "ehlo" in self.replies:
            return self.replies["ehlo"]
        session.host_name = hostname
        return "250 OK"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        reply = self.replies.get("auth")
        if reply is not None:
            return AuthResult(success=False, handled=False, message=reply)
        return AuthResult(success=True)

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: Any
    ) -> str:
        reply = self.replies.get("mail")
        if reply is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        reply = self.rcpt_replies.get(address, self.replies.get("rcpt"))
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = self.replies.get("data")
        if reply is not None:
            return reply
        if self.delay:
            await asyncio.sleep(self.delay)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.arrived:
            self.messages.append(parsed)  # type: ignore[arg-type]
            self.senders.append(envelope.mail_from)
            self.raw.append(envelope.original_content or envelope.content)
            self.arrived.notify_all()
            stall = len(self.messages) == self.stall_at
        if stall:
            self.stalled.set()
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 60)
        return "250 OK queued"

    def message_ids(self) -> list[str]:
        with self.lock:
            return [m["Message-ID"] for m in self.messages]

    def wait_for(self, count: int, timeout: float = 60.0) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.messages) >= count, timeout)


class _StagedSMTP(SMTP):
    """aiosmtpd's server, answering the greeting and STARTTLS as the Recorder says."""

    event_handler: Recorder

    async def _handle_client(self) -> None:
        reply = self.event_handler.replies.get("connect")
        if reply is None:
            await super()._handle_client()
            return
        await self.push(reply)
        assert self.transport is not None
        self.transport.close()

    @syntax("STARTTLS")
    async def smtp_STARTTLS(self, arg: str) -> None:
        await self.push(self.event_handler.replies.get("starttls", "454 4.7.0 TLS not available"))


class _StagedController(Controller):
    def factory(self) -> SMTP:
        return _StagedSMTP(self.handler, **self.SMTP_kwargs)


class SMTPServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.recorder = Recorder()
        self.controller = _StagedController(
            self.recorder,
            hostname="127.0.0.1",
            port=port,
            authenticator=self.recorder.authenticate,
            auth_require_tls=False,
        )

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def login_url(self, user: str = "clinic", password: str = "secret") -> str:
        return f"smtp://{user}:{password}@127.0.0.1:{self.port}"

    def start(self) -> SMTPServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.recorder.release.set()
        self.controller.stop()
