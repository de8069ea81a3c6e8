"""Request bodies parsed as strict JSON: only what every JSON parser reads the same way.

Python's `json` accepts NaN, Infinity and -Infinity (not JSON), turns 1e999 into infinity,
and keeps lone UTF-16 surrogates ("\\ud800") as strings no database or encoder accepts. Each
of them reached a handler and came back as a 500; here they are a JSON decode error, which
the API answers 422 like any other malformed body.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, NoReturn

from starlette.requests import Request

# An escaped UTF-16 surrogate; only bodies holding one are searched for a lone one.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def loads(body: bytes) -> Any:
    """`json.loads` refusing NaN, infinities, numbers out of range and lone surrogates."""
    text = _text(body)
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite)
    except ValueError as exc:  # json.JSONDecodeError, or an integer too long to convert
        if isinstance(exc, json.JSONDecodeError):
            raise
        _refuse(text, str(exc)[:80])
    if _SURROGATE_ESCAPE.search(body) and _has_lone_surrogate(value):
        _refuse(text, "a \\u escape is a lone UTF-16 surrogate: not a character")
    return value


class StrictJsonRequest(Request):
    """A request whose `json()` is `loads` above (FastAPI parses bodies through it)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads(await self.body())
        return self._json


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise json.JSONDecodeError("the body is not UTF-8", "", exc.start) from None


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number; send null or a finite number")


def _finite(literal: str) -> float:
    number = float(literal)
    if math.isinf(number):
        raise ValueError(f"number out of range: {literal[:20]}; send a finite number")
    return number


def _refuse(text: str, message: str) -> NoReturn:
    raise json.JSONDecodeError(message, text, 0)


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    return False
