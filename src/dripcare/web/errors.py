"""Domain errors as HTTP answers: 404 for what is not (or not yours), 422 for bad input.

The API answers JSON. The pages people open in a browser (the admin, the patients' links)
register an HTML page with `html_not_found`: a URL there that names nothing, whether unknown
or malformed (`/admin/patients/abc`), gets that page instead of FastAPI's JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

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


MAX_MESSAGE = 200  # characters of one validation message


def public_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Validation errors without the `input` and `ctx` pydantic adds: they echo what was sent,
    which may be megabytes, a patient's data, or text JSON cannot encode (a 500 before)."""
    return [
        {"loc": list(error["loc"]), "msg": _message(error)[:MAX_MESSAGE], "type": error["type"]}
        for error in errors
    ]


def _message(error: dict[str, Any]) -> str:
    if error["type"] == "json_invalid":
        return f"the body is not valid JSON: {error.get('ctx', {}).get('error', '')}"
    return str(error["msg"])


NotFoundPage = Callable[[Request], Response]
URL_PARTS = ("path", "query")


def html_not_found(app: FastAPI, prefixes: tuple[str, ...], page: NotFoundPage) -> None:
    """Answer unknown or malformed URLs under `prefixes` ("/admin") with `page`."""
    app.state.not_found_pages += [(prefixes, page)]


def _not_found_page(request: Request) -> NotFoundPage | None:
    path = request.url.path
    for prefixes, page in request.app.state.not_found_pages:
        if any(path == prefix or path.startswith(prefix + "/") for prefix in prefixes):
            return page
    return None


def install(app: FastAPI) -> None:
    app.state.not_found_pages = []

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        page = _not_found_page(request)
        if exc.status_code == 404 and page is not None:
            return page(request)
        return await http_exception_handler(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        page = _not_found_page(request)
        if page is not None and any(error["loc"][0] in URL_PARTS for error in exc.errors()):
            return page(request)
        return JSONResponse({"detail": public_errors(exc.errors())}, 422)

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
