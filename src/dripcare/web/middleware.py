"""ASGI middleware: a request log that names no patient, and headers for one part of the site.

Plain ASGI, not Starlette's BaseHTTPMiddleware: that one runs every request, the API's too,
through a task group and a streamed response, which cost more than a whole enrollment.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from fastapi import FastAPI

# Starlette's body limit raises it through us after answering 413 to a request that announced
# too large a body; it has no public name.
from starlette.middleware.body_limit import _RequestBodyLimitResponseSent

from dripcare.logs import REQUEST_ID, request_id_from
from dripcare.redaction import withheld
from dripcare.web.errors import API_PATHS, PROBLEM_JSON, problem_body

log = logging.getLogger("dripcare.api")

Scope = dict[str, Any]


class RequestLog:
    """One line per request: method, route template, status, time, clinic id, request id.
    Query strings and bodies are never logged (they carry patients' emails and names).

    The request id (the caller's X-Request-ID if it is short and plain, else a new one) is on
    every line logged while the request runs, and answered in X-Request-ID.

    An unexpected error is answered 500 here and logged without exception messages, which the
    server would otherwise print: a database error's message holds the statement's values.
    """

    def __init__(self, app: Any, prefixes: tuple[str, ...] = ()) -> None:
        self.app, self.prefixes = app, prefixes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status, started = time.perf_counter(), 500, False
        request_id = request_id_from(_header(scope, b"x-request-id"))
        id_header = (b"x-request-id", request_id.encode())
        context = REQUEST_ID.set(request_id)

        async def tracked_send(message: dict[str, Any]) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                message = {**message, "headers": [*message.get("headers", []), id_header]}
            try:
                await send(message)
            except _RequestBodyLimitResponseSent:  # a 413 went out in place of this response
                status = 413
                raise

        try:
            await self.app(scope, receive, tracked_send)
        except _RequestBodyLimitResponseSent:
            raise  # Starlette's body limit ends the request with it; not an error of ours
        except Exception as exc:
            status = 500
            route = self.route(scope)
            log.error("unexpected error in %s %s\n%s", scope["method"], route, withheld(exc))
            if not started:
                await _answer_500(scope, tracked_send)
        finally:
            clinic = scope.get("state", {}).get("clinic_id", "-")
            route, ms = self.route(scope), round((time.perf_counter() - start) * 1000, 1)
            log.info(
                "%s %s %s %.1fms request=%s clinic=%s",
                scope["method"],
                route,
                status,
                ms,
                request_id,
                clinic,
                extra={
                    "method": scope["method"],
                    "path": route,
                    "status": status,
                    "duration_ms": ms,
                    "clinic": clinic,
                },
            )
            REQUEST_ID.reset(context)

    def route(self, scope: Scope) -> str:
        """The matched route's template, never the path itself: patients' links carry tokens.

        Routes of an included router know only their own part (`/enrollments/{id}`); the
        prefix they were mounted under is added back.
        """
        template: str | None = getattr(scope.get("route"), "path", None)
        if template is None:
            return "(unmatched)"
        for prefix in self.prefixes:
            within = scope["path"] == prefix or scope["path"].startswith(prefix + "/")
            if within and not template.startswith(prefix):
                return prefix + template
        return template


def _header(scope: Scope, name: bytes) -> str | None:
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _answer_500(scope: Scope, send: Any) -> None:
    if scope["path"].startswith(API_PATHS):
        detail = "internal error; it has been logged"
        body = json.dumps(problem_body(500, "internal_error", detail, scope["path"]))
        kind = PROBLEM_JSON
    else:
        body, kind = "Something went wrong on our side. Please try again later.", "text/plain"
    headers = [(b"content-type", f"{kind}; charset=utf-8".encode())]
    await send({"type": "http.response.start", "status": 500, "headers": headers})
    await send({"type": "http.response.body", "body": body.encode()})


class HeadersUnder:
    """Headers added to every response under a path prefix; a response's own value wins."""

    def __init__(self, app: Any, prefix: str, headers: dict[str, str]) -> None:
        self.app, self.prefix = app, prefix
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                own = list(message.get("headers", []))
                present = {name.lower() for name, _ in own}
                extra = [(name, value) for name, value in self.headers if name not in present]
                message = {**message, "headers": own + extra}
            await send(message)

        await self.app(scope, receive, with_headers)


ANNOUNCED_TOO_LARGE = "dripcare.announced_too_large"


class AnnouncedBodyLimit:
    """An API request that announces a body over the limit reaches our route (which answers
    the 413 problem after checking the key, see deps.ApiRoute), not Starlette's limiter.

    The limiter, outside every middleware of ours, would replace any response to it, our 413
    problem included, with a plain-text "Content Too Large". So the announced length is taken
    off such a request and the scope marked; the limiter still counts the bytes actually sent.
    Admin and patient pages keep the limiter's own answer.
    """

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith(API_PATHS):
            length = _announced_length(scope)
            if length is not None and length > self.limit:
                headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
                scope = {**scope, "headers": headers, ANNOUNCED_TOO_LARGE: True}
        await self.app(scope, receive, send)


def _announced_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def outside_the_body_limit(app: FastAPI, limit: int) -> None:
    """Put AnnouncedBodyLimit in front of FastAPI's own stack, body limiter included:
    add_middleware only reaches inside it."""
    build = app.build_middleware_stack

    def build_with_limit() -> Any:
        return AnnouncedBodyLimit(build(), limit)

    app.build_middleware_stack = build_with_limit  # type: ignore[method-assign]
