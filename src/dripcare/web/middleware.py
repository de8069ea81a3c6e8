"""ASGI middleware: a request log that names no patient."""

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
