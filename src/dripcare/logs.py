"""Log lines as text for people or JSON for log collectors, and the request id that ties
together the lines of one API request (or one Celery task).

DRIPCARE_LOG_FORMAT=json prints one object per line, the same fields from the API and the
workers: time, level, logger, message, request_id, and method/path/status/duration_ms/clinic
on the API's request lines. What goes into the messages is unchanged: no patient data, no
query strings or paths (web/middleware.py, redaction.py).
"""

from __future__ import annotations

import copy
import json
import logging
import re
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from uvicorn.config import LOGGING_CONFIG

REQUEST_ID: ContextVar[str] = ContextVar("dripcare_request_id", default="-")
# A caller's id is kept only when it cannot forge a log line or fill the disk.
_SAFE_ID = re.compile(r"[A-Za-z0-9._:@+=-]{1,64}")
# Attributes a log call may pass with `extra=`, copied to the JSON object.
REQUEST_FIELDS = ("method", "path", "status", "duration_ms", "clinic")


def request_id_from(header: str | None) -> str:
    """The caller's X-Request-ID when it is short and plain, else a new random one."""
    if header and _SAFE_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Stamps every record with the current request's (or task's) id."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", REQUEST_ID.get()),
        }
        line |= {name: getattr(record, name) for name in REQUEST_FIELDS if hasattr(record, name)}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def uvicorn_log_config(log_format: str) -> dict[str, Any]:
    """uvicorn's logging, with dripcare's request log through uvicorn's handler.

    uvicorn's access log stays off (`access_log=False` where the server is made): it prints
    query strings, which can hold patients' emails.
    """
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["dripcare"] = {"handlers": ["default"], "level": "INFO"}
    config["filters"] = {"request_id": {"()": RequestIdFilter}}
    for handler in config["handlers"].values():
        handler["filters"] = ["request_id"]
    if log_format == "json":
        config["formatters"] = {name: {"()": JsonFormatter} for name in config["formatters"]}
    return config


def use_format(logger: logging.Logger, log_format: str) -> None:
    """Give a logger's handlers the request id, and JSON when asked (for Celery's loggers,
    which Celery sets up itself)."""
    for handler in logger.handlers:
        handler.addFilter(RequestIdFilter())
        if log_format == "json":
            handler.setFormatter(JsonFormatter())
