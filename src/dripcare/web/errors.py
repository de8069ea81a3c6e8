"""Domain errors as HTTP answers: 404 for what is not (or not yours), 422 for bad input."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import TimeoutError as PoolTimeout

from dripcare.errors import NotFound, UserError
from dripcare.web.schemas import ErrorOut, ValidationErrorOut

COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "The body is not valid JSON"},
    413: {"model": ErrorOut, "description": "The body is too large"},
    401: {"model": ErrorOut, "description": "Missing, invalid or revoked API key"},
    422: {"model": ValidationErrorOut, "description": "Invalid input, field by field"},
    429: {"model": ErrorOut, "description": "Rate limit reached; see Retry-After"},
    503: {"model": ErrorOut, "description": "Every database connection is busy; see Retry-After"},
}
IDEMPOTENT_POST: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorOut, "description": "Idempotency-Key reused for a different request"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No such object for this clinic"},
}


def install(app: FastAPI) -> None:
    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, 404)

    @app.exception_handler(PoolTimeout)
    async def _busy(request: Request, exc: PoolTimeout) -> JSONResponse:
        return JSONResponse(
            {"detail": "the service is busy: every database connection is in use; retry shortly"},
            503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(UserError)
    async def _bad_input(request: Request, exc: UserError) -> JSONResponse:
        item = {"loc": ["body"], "msg": str(exc), "type": "value_error"}
        return JSONResponse({"detail": [item]}, 422)
