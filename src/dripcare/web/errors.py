"""Errors as HTTP answers: the API's as RFC 9457 problem details, the pages' as HTML.

Every error under /api/ is `application/problem+json`: `type`, `title`, `status`, `detail`,
`instance`, and a stable `code` a program can branch on (`type` is that code as a URN). 404 is
what is not (or not yours), 422 bad input; validation errors list each field in `errors`.

The pages people open in a browser (the admin, the patients' links) register an HTML page with
`html_not_found`: a URL there that names nothing, whether unknown or malformed
(`/admin/patients/abc`), gets that page instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from dripcare.errors import NotFound, UserError
from dripcare.web.schemas import Problem

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE = "urn:dripcare:problem:"
API_PATHS = "/api/"

# The codes an API error can carry, with their titles. Programs branch on these: keep them.
TITLES = {
    "bad_request": "Bad request",
    "missing_api_key": "Missing API key",
    "invalid_api_key": "Invalid API key",
    "forbidden": "Forbidden",
    "not_found": "Not found",
    "method_not_allowed": "Method not allowed",
    "idempotency_key_reused": "Idempotency-Key reused",
    "conflict": "Conflict",
    "body_too_large": "Body too large",
    "invalid_json": "Invalid JSON",
    "invalid_input": "Invalid input",
    "rate_limited": "Too many requests",
    "internal_error": "Internal error",
    "busy": "Service busy",
}
# The code of an HTTPException raised without one (FastAPI's and Starlette's own).
CODE_OF_STATUS = {
    400: "bad_request",
    401: "invalid_api_key",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    422: "invalid_input",
    429: "rate_limited",
    500: "internal_error",
    503: "busy",
}


class ApiError(StarletteHTTPException):
    """An HTTP error with its problem `code` (one of TITLES)."""

    def __init__(
        self, status: int, code: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status, detail, headers)
        self.code = code


def problem_body(status: int, code: str, detail: str, instance: str) -> dict[str, Any]:
    title = TITLES.get(code) or HTTPStatus(status).phrase
    return {
        "type": PROBLEM_TYPE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "code": code,
    }


def problem(
    request: Request,
    status: int,
    code: str,
    detail: str,
    headers: dict[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> JSONResponse:
    body = problem_body(status, code, detail, request.url.path)
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status, headers=headers, media_type=PROBLEM_JSON)


# The error answers documented on the API's operations, as components/responses.
RESPONSES = {
    400: ("BadRequest", "The request could not be read"),
    401: ("Unauthorized", "Missing, invalid or revoked API key"),
    403: ("Forbidden", "The key may not do this"),
    404: ("NotFound", "No such object for this clinic"),
    409: ("Conflict", "Idempotency-Key reused for a different request"),
    413: ("ContentTooLarge", "The body is too large"),
    422: ("InvalidInput", "Invalid input: not JSON, or invalid fields (see `errors`)"),
    429: ("TooManyRequests", "Rate limit reached; see Retry-After"),
    500: ("InternalError", "Unexpected error; it has been logged"),
    503: ("ServiceUnavailable", "Every database connection is busy; see Retry-After"),
}


def _documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": Problem, "description": RESPONSES[status][1]} for status in statuses}


COMMON_RESPONSES = _documented(400, 401, 413, 422, 429, 500, 503)
IDEMPOTENT_POST = _documented(409)
NOT_FOUND = _documented(404)

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


def _summary(errors: list[dict[str, Any]]) -> str:
    fields = "; ".join(
        f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in errors[:3]
    )
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return f"invalid input: {fields}{more}"


NotFoundPage = Callable[[Request], Response]
URL_PARTS = ("path", "query")


def html_not_found(app: FastAPI, prefixes: tuple[str, ...], page: NotFoundPage) -> None:
    """Answer unknown or malformed URLs under `prefixes` ("/admin") with `page`."""
    app.state.not_found_pages += [(prefixes, page)]


def _not_found_page(request: Request) -> NotFoundPage | None:
    path = request.url.path
    pages: list[tuple[tuple[str, ...], NotFoundPage]] = request.app.state.not_found_pages
    for prefixes, page in pages:
        if any(path == prefix or path.startswith(prefix + "/") for prefix in prefixes):
            return page
    return None


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(API_PATHS)


def _error(
    request: Request,
    status: int,
    code: str,
    detail: str,
    headers: dict[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> JSONResponse:
    """A problem under /api/; elsewhere the `{"detail": …}` the other JSON endpoints answer."""
    if _is_api(request):
        return problem(request, status, code, detail, headers, errors)
    return JSONResponse({"detail": detail if errors is None else errors}, status, headers=headers)


def install(app: FastAPI) -> None:
    app.state.not_found_pages = []
    app.exception_handler(StarletteHTTPException)(_http_error)
    app.exception_handler(RequestValidationError)(_invalid)
    app.exception_handler(NotFound)(_not_found)
    app.exception_handler(PoolTimeout)(_busy)
    app.exception_handler(UserError)(_bad_input)

    generate = app.openapi

    def openapi() -> dict[str, Any]:
        spec = generate()  # cached by FastAPI after the first call
        if "responses" not in spec.setdefault("components", {}):
            _with_problem_responses(spec)
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    page = _not_found_page(request)
    if exc.status_code == 404 and page is not None:
        return page(request)
    if not _is_api(request):
        return await http_exception_handler(request, exc)
    code = getattr(exc, "code", None) or CODE_OF_STATUS.get(exc.status_code, "error")
    headers = dict(exc.headers) if exc.headers else None
    return problem(request, exc.status_code, code, str(exc.detail), headers)


async def _invalid(request: Request, exc: RequestValidationError) -> Response:
    page = _not_found_page(request)
    if page is not None and any(error["loc"][0] in URL_PARTS for error in exc.errors()):
        return page(request)
    errors = public_errors(exc.errors())
    code = "invalid_json" if errors and errors[0]["type"] == "json_invalid" else "invalid_input"
    return _error(request, 422, code, _summary(errors), errors=errors)


async def _not_found(request: Request, exc: NotFound) -> JSONResponse:
    return _error(request, 404, "not_found", str(exc))


async def _busy(request: Request, exc: PoolTimeout) -> JSONResponse:
    detail = "the service is busy: every database connection is in use; retry shortly"
    return _error(request, 503, "busy", detail, headers={"Retry-After": "1"})


async def _bad_input(request: Request, exc: UserError) -> JSONResponse:
    item = {"loc": ["body"], "msg": str(exc), "type": "value_error"}
    return _error(request, 422, "invalid_input", str(exc), errors=[item])


def _with_problem_responses(spec: dict[str, Any]) -> None:
    """Problem answers as shared components/responses, served as application/problem+json."""
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    spec["components"]["responses"] = {
        name: {"description": text, "content": {PROBLEM_JSON: {"schema": problem_ref}}}
        for name, text in RESPONSES.values()
    }
    for operations in spec["paths"].values():
        for operation in operations.values():
            for status, answer in operation.get("responses", {}).items():
                schema = answer.get("content", {}).get("application/json", {}).get("schema")
                if schema == problem_ref:
                    name = RESPONSES[int(status)][0]
                    operation["responses"][status] = {"$ref": f"#/components/responses/{name}"}
