"""A lean HTTP/1.1 keep-alive client on asyncio streams, for load generators.

A load generator that shares the cores with the server it measures takes its own CPU away from
that server: httpx costs ~3 ms of CPU per request on the 2-core bench machine, which is a
fifth of what the API server needs for an enrollment. This client does only what a benchmark
needs (one request at a time per connection, idle connections reused, each answer's status
line parsed and its body read to the end by Content-Length, chunks or end of stream), for a
small fraction of that.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlsplit

MAX_HEAD = 64 * 1024  # status line + headers
# EOFError: asyncio.IncompleteReadError, the server closed mid-answer; ValueError: a bad length
NETWORK_ERRORS = (OSError, TimeoutError, EOFError, asyncio.LimitOverrunError, ValueError)


class HTTPError(Exception):
    """The exchange failed: connection refused or lost, a timeout, or an answer that is not
    HTTP/1.x."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]  # names lower-cased; a repeated header keeps its last value
    body: bytes


class Connection:
    """One TCP connection: send a request, read its whole answer, then the next one."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.reusable = True

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port, limit=MAX_HEAD)
        return cls(reader, writer)

    async def exchange(self, request: bytes, has_body: bool = True) -> Response:
        """Send `request` (head and body, already encoded); `has_body` is False for HEAD."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status, headers = parse_head(head)
        if headers.get("connection", "").lower() == "close":
            self.reusable = False
        if not has_body or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = await self._read_chunks()
        elif "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        else:  # delimited by the end of the connection
            body = await self.reader.read()
            self.reusable = False
        return Response(status, headers, body)

    async def _read_chunks(self) -> bytes:
        parts = []
        while True:
            size_line = await self.reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0], 16)  # chunk extensions are ignored
            if size == 0:
                break
            parts.append(await self.reader.readexactly(size))
            if await self.reader.readexactly(2) != b"\r\n":
                raise HTTPError("a chunk does not end with CRLF")
        while await self.reader.readuntil(b"\r\n") != b"\r\n":  # trailer fields
            pass
        return b"".join(parts)

    def close(self) -> None:
        self.writer.close()


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    """Status code and headers of an answer's head (status line to the blank line)."""
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise HTTPError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return int(code), headers


class KeepAliveClient:
    """Requests to one `http://host:port`, each on an idle connection or a new one.

    As many connections stay open as requests ran at the same time (as with httpx's pool); a
    connection that failed or that the server closes is dropped, and its request is not
    retried (a POST might have been done).
    """

    def __init__(
        self, base_url: str, headers: Mapping[str, str] | None = None, timeout: float = 30.0
    ) -> None:
        url = urlsplit(base_url)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"{base_url!r}: give an http://host:port URL (no TLS here)")
        self.host = url.hostname
        self.port = url.port or 80
        self.timeout = timeout
        fixed = {"Host": url.netloc, **(headers or {})}
        self._fixed_headers = "".join(f"{k}: {v}\r\n" for k, v in fixed.items())
        self._idle: list[Connection] = []
        self.connections_opened = 0

    def encode(
        self, method: str, path: str, body: bytes = b"", content_type: str = "application/json"
    ) -> bytes:
        head = f"{method} {path} HTTP/1.1\r\n{self._fixed_headers}"
        if body or method in ("POST", "PUT", "PATCH"):
            head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        return (head + "\r\n").encode("latin-1") + body

    async def request(
        self, method: str, path: str, body: bytes = b"", content_type: str = "application/json"
    ) -> Response:
        request = self.encode(method, path, body, content_type)
        connection = None
        try:
            async with asyncio.timeout(self.timeout):
                connection = self._idle_connection() or await self._open()
                response = await connection.exchange(request, has_body=method != "HEAD")
        except BaseException as exc:  # also a cancellation: the answer was not read to its end
            if connection:
                connection.close()
            if isinstance(exc, NETWORK_ERRORS):
                raise HTTPError(f"{method} {path}: {type(exc).__name__} {exc}".rstrip()) from exc
            raise
        if connection.reusable:
            self._idle.append(connection)
        else:
            connection.close()
        return response

    async def _open(self) -> Connection:
        connection = await Connection.open(self.host, self.port)
        self.connections_opened += 1
        return connection

    def _idle_connection(self) -> Connection | None:
        """An idle connection the server has not closed meanwhile (e.g. its keep-alive timeout)."""
        while self._idle:
            connection = self._idle.pop()
            if not connection.reader.at_eof():
                return connection
            connection.close()
        return None

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
        await asyncio.gather(*(c.writer.wait_closed() for c in idle), return_exceptions=True)

    async def __aenter__(self) -> KeepAliveClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
