"""Liveness and readiness for load balancers and orchestrators (no API key needed).

Anyone may ask whether dripcare is up, but only an operator learns why not: the exception
type and the schema revision help an attacker fingerprint the deployment, so they are shown
only to a caller with an API key or the metrics token."""

from __future__ import annotations

import hmac
from typing import Any

from alembic.runtime.migration import MigrationContext
from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse
from kombu.connection import Connection
from sqlalchemy import text

from dripcare.config import get_settings
from dripcare.db import get_engine, new_session
from dripcare.migrations import code_head
from dripcare.people.apikeys import authenticate
from dripcare.web.schemas import Health

router = APIRouter(tags=["health"])
UNHEALTHY: dict[int | str, dict[str, Any]] = {
    503: {"model": Health, "description": "A dependency is down"}
}


def _database() -> str:
    try:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure is an answer here, not an error
        return f"error: {type(exc).__name__}"
    return "ok"


def _broker() -> str:
    try:
        with Connection(get_settings().broker_url, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    return "ok"


def _schema() -> str:
    try:
        with get_engine().connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    head = code_head()
    return "ok" if current == head else f"error: schema at {current}, code expects {head}"


def _operator(authorization: str) -> bool:
    """A live API key or the metrics token: someone who may see why a check failed."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    metrics_token = get_settings().metrics_token
    if metrics_token and hmac.compare_digest(token.encode(), metrics_token.encode()):
        return True
    try:
        with new_session() as session:
            return authenticate(session, token) is not None
    except Exception:  # the database being down is what the check reports, not an error
        return False


def _answer(database: str, broker: str, authorization: str) -> JSONResponse:
    healthy = database == "ok" and broker == "ok"
    if not _operator(authorization):
        database, broker = (("ok" if part == "ok" else "error") for part in (database, broker))
    body = Health(status="ok" if healthy else "error", database=database, broker=broker)
    return JSONResponse(body.model_dump(), 200 if healthy else 503)


@router.get(
    "/healthz",
    operation_id="getHealth",
    response_model=Health,
    responses=UNHEALTHY,
    summary="Database and broker reachable",
)
def healthz(authorization: str = Header("")) -> JSONResponse:
    """The database and the broker answer; why not only with an API key or metrics token."""
    return _answer(_database(), _broker(), authorization)


@router.get(
    "/readyz",
    operation_id="getReadiness",
    response_model=Health,
    responses=UNHEALTHY,
    summary="Ready: schema migrated",
)
def readyz(authorization: str = Header("")) -> JSONResponse:
    """Ready for traffic: the database schema is at the version this code expects."""
    return _answer(_schema(), _broker(), authorization)
