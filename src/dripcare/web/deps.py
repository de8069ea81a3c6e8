"""Request dependencies: a database session, and the clinic an API key belongs to."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.responses import Response

from dripcare.apikeys import authenticate
from dripcare.audit import Actor
from dripcare.db import new_session
from dripcare.web.errors import ApiError
from dripcare.web.jsonbody import StrictJsonRequest
from dripcare.web.ratelimit import retry_after_header

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class ApiRoute(APIRoute):
    """The clinic API's routes: bodies are parsed as strict JSON (see jsonbody.py)."""

    def get_route_handler(self) -> Handler:
        handle = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handle(StrictJsonRequest(request.scope, request.receive))

        return strict


async def get_session() -> AsyncIterator[Session]:
    """One unit of work per request: committed on success, rolled back on any error.

    Opening a session does no I/O, so it happens on the event loop; the commit or rollback
    goes to a worker thread only when a transaction is still open (handlers that write
    commit before answering), saving two thread hops on most requests.
    """
    session = new_session()
    try:
        yield session
        if session.in_transaction():
            await run_in_threadpool(session.commit)
    except BaseException:
        if session.in_transaction():
            await run_in_threadpool(session.rollback)
        raise
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]

bearer = HTTPBearer(
    auto_error=False,
    description="A clinic's API key, from `dripcare apikey create --clinic ID`.",
)


def current_clinic(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> int:
    """The clinic whose key signed this request; 401 without a live key, 429 over its limit."""
    if credentials is None:
        raise ApiError(
            401,
            "missing_api_key",
            "missing API key: send 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    key = authenticate(session, credentials.credentials)
    if key is None:
        raise ApiError(
            401,
            "invalid_api_key",
            "invalid or revoked API key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    wait = request.app.state.limiter.acquire(str(key.key_id))
    if wait > 0:
        raise ApiError(
            429,
            "rate_limited",
            "too many requests for this API key; slow down",
            headers={"Retry-After": retry_after_header(wait)},
        )
    request.state.clinic_id, request.state.api_key_id = key.clinic_id, key.key_id
    return key.clinic_id


ClinicDep = Annotated[int, Depends(current_clinic)]


def api_actor(request: Request, clinic: ClinicDep) -> Actor:
    """The key that signed this request, for the audit log."""
    return Actor.api_key(request.state.api_key_id)


ApiActorDep = Annotated[Actor, Depends(api_actor)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="Retrying a POST with the same key returns the first response",
    ),
]
