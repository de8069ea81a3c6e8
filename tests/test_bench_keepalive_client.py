"""bench/keepalive_client.py, the API load benchmark's HTTP client, against real servers: the
dripcare API under uvicorn, and a small asyncio server for the answer framings uvicorn does not
send it (chunks, end of stream) and for broken answers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bench.keepalive_client import HTTPError, KeepAliveClient

from dripcare.db import session_scope
from dripcare.people.apikeys import create_key
from tests.factories import make_clinic


@dataclass
class ScriptedServer:
    """Answers the i-th request it reads with answers[i]: raw bytes, and whether to close the
    connection after them. Records each request's head and body."""

    answers: list[tuple[bytes, bool]]
    requests: list[tuple[bytes, bytes]] = field(default_factory=list)
    connections: int = 0
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        close = False
        while not close:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):  # the client closed
                break
            length = 0
            for line in head.lower().split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            self.requests.append((head, await reader.readexactly(length)))
            answer, close = self.answers[len(self.requests) - 1]
            writer.write(answer)
            await writer.drain()
        writer.close()


def serve(
    answers: list[tuple[bytes, bool]],
    check: Callable[[KeepAliveClient], Awaitable[None]],
) -> ScriptedServer:
    """Run `check` with a client of a ScriptedServer; returns the server, to look at."""

    async def main() -> ScriptedServer:
        scripted = ScriptedServer(answers)
        server = await asyncio.start_server(scripted.handle, "127.0.0.1", 0)
        scripted.port = server.sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{scripted.port}"
        async with server, KeepAliveClient(url, {"X-Key": "k"}) as client:
            await check(client)
        return scripted

    return asyncio.run(main())


def test_answers_are_read_by_length_by_chunks_and_to_the_end_of_the_stream() -> None:
    answers = [
        (
            b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n"
            b'{"id":1}',
            False,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n",
            False,
        ),
        (b"HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 4\r\n\r\ngone", True),
        (b"HTTP/1.0 200 OK\r\n\r\nuntil the end", True),
    ]
    got = []

    async def check(client: KeepAliveClient) -> None:
        got.append(await client.request("POST", "/api/v1/enrollments", '{"a":"é"}'.encode()))
        got.append(await client.request("GET", "/chunks?x=1"))
        got.append(await client.request("GET", "/gone"))
        got.append(await client.request("GET", "/stream"))

    server = serve(answers, check)

    assert [(r.status, r.body) for r in got] == [
        (201, b'{"id":1}'),
        (200, b"hello, world"),
        (404, b"gone"),
        (200, b"until the end"),
    ]
    assert got[0].headers["content-type"] == "application/json"
    assert server.connections == 2  # kept alive until the server said close
    host = f"Host: 127.0.0.1:{server.port}"
    assert server.requests[0] == (
        f"POST /api/v1/enrollments HTTP/1.1\r\n{host}\r\nX-Key: k\r\n"
        "Content-Type: application/json\r\nContent-Length: 10\r\n\r\n".encode(),
        '{"a":"é"}'.encode(),
    )
    assert server.requests[1] == (
        f"GET /chunks?x=1 HTTP/1.1\r\n{host}\r\nX-Key: k\r\n\r\n".encode(),
        b"",
    )


@pytest.mark.parametrize(
    ("answer", "cause"),
    [
        (b"SMTP 220 hello\r\n\r\n", "HTTPError"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "IncompleteReadError"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "ValueError"),
    ],
)
def test_a_broken_answer_is_an_http_error_and_its_connection_is_dropped(
    answer: bytes, cause: str
) -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    answers = [(answer, True), (ok, False)]  # closed after the broken answer: a cut one ends
    failures: list[HTTPError] = []
    after = []

    async def check(client: KeepAliveClient) -> None:
        try:
            await client.request("GET", "/broken")
        except HTTPError as exc:
            failures.append(exc)
        after.append(await client.request("GET", "/next"))

    server = serve(answers, check)

    assert len(failures) == 1
    assert type(failures[0].__cause__ or failures[0]).__name__ == cause
    assert after[0].body == b"ok"
    assert server.connections == 2


def test_the_api_answers_enrollments_on_one_kept_alive_connection(live_server: str) -> None:
    with session_scope() as session:
        key = create_key(session, make_clinic(), "bench").plaintext
    treated = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0).isoformat()

    async def main() -> tuple[list[int], dict[str, Any], int]:
        async with KeepAliveClient(live_server, {"Authorization": f"Bearer {key}"}) as client:
            statuses, ids = [], []
            for i in range(3):
                body = {
                    "patient": {"email": f"p{i}@example.com", "first_name": f"Pat{i}"},
                    "treated_at": treated,
                    "external_id": f"bench-{i}",
                }
                answer = await client.request(
                    "POST", "/api/v1/enrollments", json.dumps(body).encode()
                )
                statuses.append(answer.status)
                ids.append(json.loads(answer.body)["id"])
            timeline = await client.request("GET", f"/api/v1/enrollments/{ids[-1]}")
            statuses.append(timeline.status)
            return statuses, json.loads(timeline.body), client.connections_opened

    statuses, timeline, opened = asyncio.run(main())

    assert statuses == [201, 201, 201, 200]
    assert timeline["external_id"] == "bench-2"
    assert len(timeline["messages"]) == 7
    assert opened == 1
