"""Request dependencies: a database session, and the clinic an API key belongs to."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from dripcare.apikeys import authenticate
from dripcare.db import session_scope
from dripcare.web.ratelimit import retry_after_header


def get_session() -> Iterator[Session]:
    """Handlers that write commit before answering; anything uncommitted is rolled back."""
    with session_scope() as session:
        yield session


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
        raise HTTPException(
            401,
            "missing API key: send 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    key = authenticate(session, credentials.credentials)
    if key is None:
        raise HTTPException(
            401, "invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"}
        )
    wait = request.app.state.limiter.acquire(str(key.key_id))
    if wait > 0:
        raise HTTPException(
            429,
            "too many requests for this API key; slow down",
            headers={"Retry-After": retry_after_header(wait)},
        )
    request.state.clinic_id = key.clinic_id
    return key.clinic_id


ClinicDep = Annotated[int, Depends(current_clinic)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="Retrying a POST with the same key returns the first response",
    ),
]
