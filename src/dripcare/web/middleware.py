"""ASGI middleware: a request log that names no patient, and headers for one part of the site.

Plain ASGI, not Starlette's BaseHTTPMiddleware: that one runs every request, the API's too,
through a task group and a streamed response, which cost more than a whole enrollment.
"""

from __future__ import annotations

import logging
import time
from typing import Any

log = logging.getLogger("dripcare.api")

Scope = dict[str, Any]


class RequestLog:
    """One line per request: method, route template, status, time, clinic id. Query strings
    and bodies are never logged (they carry patients' emails and names)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500

        async def tracked_send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, tracked_send)
        finally:
            route = getattr(scope.get("route"), "path", "(unmatched)")
            clinic = scope.get("state", {}).get("clinic_id", "-")
            log.info(
                "%s %s %s %.1fms clinic=%s",
                scope["method"],
                route,
                status,
                (time.perf_counter() - start) * 1000,
                clinic,
            )


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
