"""Where composed emails go: a real SMTP server, a directory of .eml files, or the console.

A transport is opened once per batch (one SMTP connection for many messages) and reports
each failure as transient (try later), permanent (this message failed), a refused recipient
(suppress the address) or a transport failure (unreachable, or refusing our sender, login, TLS or
domain: the whole batch waits, no message is blamed). smtp_replies.py decides which.
"""

from __future__ import annotations

import re
import smtplib
import ssl
import sys
from pathlib import Path
from typing import Protocol, Self
from urllib.parse import parse_qs, unquote, urlsplit

from dripcare.errors import UserError
from dripcare.redaction import url_without_password
from dripcare.sending import smtp_pipelining
from dripcare.sending.smtp_replies import Stage, Verdict, classify


class DeliveryError(Exception):
    def __init__(self, message: str, code: int | None = None, stage: Stage | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.stage = stage


class TransientError(DeliveryError):
    """The server said 'not now' (4xx) for this message."""


class PermanentError(DeliveryError):
    """The server refused this message for good (5xx): content, size, a policy for it."""


class RecipientRefused(PermanentError):
    """Permanent, and about the recipient's own mailbox (5.1.1, 5.2.1...): suppress it."""


class TransportFailure(TransientError):
    """Nothing can go through this transport now: our sender, login, TLS or domain is refused.

    No message is blamed and no address suppressed; the circuit breaker pauses the transport.
    """


class ConnectionFailure(TransportFailure):
    """The server could not be reached or dropped the connection."""


class Transport(Protocol):
    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...

    def send(self, sender: str, recipient: str, data: bytes, message_id: str) -> None: ...


# Postmark keeps an `X-PM-Metadata-<key>` header sent over its SMTP service as the message's
# Metadata and returns it in every webhook (bounce, spam complaint, delivery), which otherwise
# carry neither our Message-ID nor our VERP token unless bounce content is included.
POSTMARK_METADATA_KEY = "dripcare-message"
POSTMARK_HOSTS = frozenset({"smtp.postmarkapp.com", "smtp-broadcasts.postmarkapp.com"})


def postmark_metadata(message_id: str) -> bytes:
    """The header naming our message (its random Message-ID: no patient data) for Postmark."""
    return f"X-PM-Metadata-{POSTMARK_METADATA_KEY}: {message_id.strip('<>')}\r\n".encode("ascii")


class SMTPTransport:
    """One connection per `with` block; reconnects once if the server drops it between mails.

    A server that advertises PIPELINING gets each message in two round trips instead of four
    (smtp_pipelining.py); the replies mean what smtplib's exceptions say either way.

    With `postmark_metadata`, each message also names itself to Postmark's webhooks; decided
    once for the transport, by its host or its URL.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ssl_on_connect: bool = False,
        starttls: bool = False,
        username: str = "",
        password: str = "",
        timeout: float = 30.0,
        postmark_metadata: bool = False,
    ) -> None:
        self.host, self.port = host, port
        self.postmark_metadata = postmark_metadata
        self.ssl_on_connect, self.starttls = ssl_on_connect, starttls
        self.username, self.password = username, password
        self.timeout = timeout
        self._conn: smtplib.SMTP | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connect(self) -> smtplib.SMTP:
        stage = Stage.TLS if self.ssl_on_connect else Stage.CONNECT
        try:
            if self.ssl_on_connect:
                conn: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host,
                    self.port,
                    timeout=self.timeout,
                    context=ssl.create_default_context(),
                )
            else:
                conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
                if self.starttls:
                    stage = Stage.TLS
                    conn.starttls(context=ssl.create_default_context())
            if self.username:
                stage = Stage.AUTH
                conn.login(self.username, self.password)
        except smtplib.SMTPAuthenticationError as exc:
            raise ConnectionFailure(
                f"SMTP login refused: {_reply(exc)}", exc.smtp_code, Stage.AUTH
            ) from exc
        except smtplib.SMTPResponseException as exc:
            raise ConnectionFailure(
                f"SMTP server {self.host}:{self.port} refused us at {stage}: {_reply(exc)}",
                exc.smtp_code,
                stage,
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise ConnectionFailure(
                f"cannot reach SMTP server {self.host}:{self.port} ({stage}): {exc}", None, stage
            ) from exc
        return conn

    def send(self, sender: str, recipient: str, data: bytes, message_id: str) -> None:
        if self.postmark_metadata:  # ahead of a DKIM signature, which does not cover it
            data = postmark_metadata(message_id) + data
        if self._conn is None:
            self._conn = self._connect()
        try:
            self._send_once(sender, recipient, data)
        except (smtplib.SMTPServerDisconnected, ConnectionError):
            self.close()
            self._conn = self._connect()
            try:
                self._send_once(sender, recipient, data)
            except (smtplib.SMTPServerDisconnected, ConnectionError) as exc:
                self.close()  # dropped twice in a row: the server, not this message
                raise ConnectionFailure(
                    f"SMTP server {self.host}:{self.port} dropped the connection twice: {exc}"
                ) from exc

    def _send_once(self, sender: str, recipient: str, data: bytes) -> None:
        assert self._conn is not None
        try:
            smtp_pipelining.sendmail(self._conn, sender, recipient, data)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = exc.recipients[recipient]
            raise _classify(Stage.RCPT_TO, code, reply.decode(errors="replace")) from exc
        except smtplib.SMTPSenderRefused as exc:
            self._reset()
            raise _classify(Stage.MAIL_FROM, exc.smtp_code, _reply(exc)) from exc
        except smtplib.SMTPDataError as exc:
            self._reset()
            raise _classify(Stage.DATA, exc.smtp_code, _reply(exc)) from exc
        except smtplib.SMTPHeloError as exc:
            self.close()
            raise _classify(Stage.EHLO, exc.smtp_code, _reply(exc)) from exc
        except TimeoutError as exc:
            self.close()
            raise ConnectionFailure(f"SMTP server timed out: {exc}") from exc
        except smtplib.SMTPServerDisconnected:
            raise
        except smtplib.SMTPException as exc:  # a refused greeting, an unexpected reply
            self.close()
            raise ConnectionFailure(f"SMTP session failed: {exc}") from exc

    def _reset(self) -> None:
        try:
            if self._conn is not None:
                self._conn.rset()
        except (OSError, smtplib.SMTPException):
            self.close()

    def close(self) -> None:
        if self._conn is None:
            return
        try:
            self._conn.quit()
        except (OSError, smtplib.SMTPException):
            self._conn.close()
        self._conn = None


def _reply(exc: smtplib.SMTPResponseException) -> str:
    error = exc.smtp_error
    text = error.decode(errors="replace") if isinstance(error, bytes) else str(error)
    return f"{exc.smtp_code} {text}"


_ERRORS: dict[Verdict, type[DeliveryError]] = {
    Verdict.RECIPIENT: RecipientRefused,
    Verdict.PERMANENT: PermanentError,
    Verdict.TEMPORARY: TransientError,
    Verdict.TRANSPORT: TransportFailure,
}


def _classify(stage: Stage, code: int, reply: str) -> DeliveryError:
    text = reply if reply.startswith(str(code)) else f"{code} {reply}"
    return _ERRORS[classify(stage, code, text)](text, code, stage)


class CaptureTransport:
    """Writes each message to DIR/<message-id>.eml: a resend overwrites, it never duplicates."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def __enter__(self) -> Self:
        self.directory.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def send(self, sender: str, recipient: str, data: bytes, message_id: str) -> None:
        name = re.sub(r"[^A-Za-z0-9._-]", "_", message_id.strip("<>"))
        target = self.directory / f"{name}.eml"
        partial = target.with_suffix(".eml.part")
        partial.write_bytes(data)
        partial.replace(target)


class ConsoleTransport:
    """Prints a one-line summary per message (for trying things out)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def send(self, sender: str, recipient: str, data: bytes, message_id: str) -> None:
        subject = next((line for line in data.split(b"\r\n") if line.startswith(b"Subject:")), b"")
        print(
            f"email {message_id} to {recipient}: {subject.decode(errors='replace')}",
            file=sys.stdout,
            flush=True,
        )


def transport_from_url(url: str, timeout: float = 30.0) -> Transport:
    """smtp://user:pass@host:587?starttls=true, smtps://host:465, capture://DIR, console://.

    `postmark_metadata=true|false` in an SMTP URL says whether to add Postmark's metadata header;
    without it, only Postmark's own SMTP hosts get it.
    """
    parts = urlsplit(url)
    if parts.scheme in ("smtp", "smtps"):
        if not parts.hostname:
            shown = url_without_password(url)
            raise UserError(f"SMTP URL {shown!r} has no host; use smtp://user:pass@host:587")
        try:
            port = parts.port
        except ValueError as exc:
            shown = url_without_password(url)
            raise UserError(f"SMTP URL {shown!r} has an invalid port: {exc}") from exc
        query = parse_qs(parts.query)
        starttls = _flag(query, "starttls", False)
        postmark = _flag(query, "postmark_metadata", parts.hostname.lower() in POSTMARK_HOSTS)
        return SMTPTransport(
            parts.hostname,
            port or (465 if parts.scheme == "smtps" else 25),
            ssl_on_connect=parts.scheme == "smtps",
            starttls=starttls,
            username=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            timeout=timeout,
            postmark_metadata=postmark,
        )
    if parts.scheme == "capture":
        return CaptureTransport(Path(parts.netloc + parts.path))
    if parts.scheme == "console":
        return ConsoleTransport()
    raise UserError(
        f"unknown DRIPCARE_SMTP_URL scheme {parts.scheme!r}; "
        "use smtp://, smtps://, capture://DIR or console://"
    )


def _flag(query: dict[str, list[str]], name: str, default: bool) -> bool:
    if name not in query:
        return default
    return query[name][0].lower() in ("1", "true", "yes")
