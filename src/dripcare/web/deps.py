"""Request dependencies: a database session, and the clinic an API key belongs to."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi._body_limit import get_body_limit_error
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.responses import Response

from dripcare.config import get_settings
from dripcare.db import new_session, session_scope
from dripcare.people.apikeys import authenticate
from dripcare.people.audit import Actor
from dripcare.web.errors import ApiError
from dripcare.web.jsonbody import StrictJsonRequest
from dripcare.web.middleware import ANNOUNCED_TOO_LARGE
from dripcare.web.ratelimit import client_address, retry_after_header

log = logging.getLogger("dripcare.api")
CHALLENGE = {"WWW-Authenticate": "Bearer"}
UNAUTHENTICATED_SHARE = 10  # of a key's rate and burst, for each address without a live key
Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class ApiRoute(APIRoute):
    """The clinic API's routes: the key is checked before the body is read (a stranger's
    megabytes cost nothing), then the body is parsed as strict JSON (see jsonbody.py).

    FastAPI reads the body before it solves dependencies, so this cannot be a dependency.
    """

    def get_route_handler(self) -> Handler:
        handle = super().get_route_handler()

        async def keyed(request: Request) -> Response:
            await run_in_threadpool(authorize, request)
            if request.scope.get(ANNOUNCED_TOO_LARGE):
                raise body_too_large(request)
            try:
                return await handle(StrictJsonRequest(request.scope, request.receive))
            except Exception as exc:
                if get_body_limit_error(exc) is None:
                    raise
                raise body_too_large(request) from None

        return keyed


def body_too_large(request: Request) -> ApiError:
    """A 413 the request log records (the body limit's own error surfaced as a 500)."""
    limit = get_settings().api_max_body_bytes
    log.warning("%s %s: body over %d bytes refused", request.method, request.url.path, limit)
    detail = f"the body is larger than {limit} bytes; send fewer items per request"
    return ApiError(413, "body_too_large", detail)


def authorize(request: Request) -> None:
    """Admit a request signed by a live key, within its key's rate; 401 or 429 otherwise.

    Requests without a live key are rate limited per client address, so guessing keys is
    slow and a stranger cannot keep the database busy checking them.
    """
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    caller = None
    if scheme.lower() == "bearer" and token:
        with session_scope() as session:
            caller = authenticate(session, token.strip())
    limiter = request.app.state.limiter
    if caller is None:
        settings = get_settings()
        address = client_address(request, settings)
        wait = limiter.acquire(
            f"address:{address}",
            settings.api_rate_per_second / UNAUTHENTICATED_SHARE,
            max(1, settings.api_rate_burst // UNAUTHENTICATED_SHARE),
        )
        if wait > 0:
            raise _too_many("too many requests without a valid API key from this address", wait)
        if not token:
            raise ApiError(
                401,
                "missing_api_key",
                "missing API key: send 'Authorization: Bearer <key>'",
                headers=CHALLENGE,
            )
        raise ApiError(401, "invalid_api_key", "invalid or revoked API key", headers=CHALLENGE)
    wait = limiter.acquire(str(caller.key_id))
    if wait > 0:
        raise _too_many("too many requests for this API key; slow down", wait)
    request.state.clinic_id, request.state.api_key_id = caller.clinic_id, caller.key_id


def _too_many(detail: str, wait: float) -> ApiError:
    return ApiError(429, "rate_limited", detail, headers={"Retry-After": retry_after_header(wait)})


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
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> int:
    """The clinic whose key signed this request, checked by ApiRoute before the body was read
    (`bearer` is here to document the scheme in the OpenAPI)."""
    clinic_id: int = request.state.clinic_id  # AttributeError outside ApiRoute: fail closed
    return clinic_id


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
