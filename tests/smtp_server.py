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
from aiosmtpd.smtp import AuthResult


@dataclass
class Recorder:
    """aiosmtpd handler. `rcpt_replies` maps an address to the reply its RCPT TO gets;
    `replies` maps a stage ("auth", "mail", "rcpt", "data") to the reply every client gets
    there, as a misconfigured or unforgiving server would answer."""

    messages: list[EmailMessage] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    replies: dict[str, str] = field(default_factory=dict)
    stall_at: int | None = None  # hold the n-th message until `release` (to kill a sender)
    stalled: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)

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
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.arrived:
            self.messages.append(parsed)  # type: ignore[arg-type]
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


class SMTPServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.recorder = Recorder()
        self.controller = Controller(
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
