"""What every `dripcare` command shares: one-line errors with exit status 2, and `--json`."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from dripcare.errors import UserError

F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def user_errors(func: F) -> F:
    """Turn a domain `UserError` into one clear line and exit status 2."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except UserError as exc:
            _fail(str(exc))

    return wrapper  # type: ignore[return-value]


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def quiet_option(what: str) -> Callable[[F], F]:
    """`-q`: print only what a script keeps, e.g. `CLINIC=$(dripcare clinic create … -q)`."""
    return click.option("-q", "--quiet", is_flag=True, help=f"Print only {what}, for scripts.")


def emit(as_json: bool, data: Any, text: str, only: Any = None) -> None:
    """JSON, the human text, or with `--quiet` only the one value a script needs."""
    if only is not None:
        click.echo(only)
    else:
        click.echo(json.dumps(data, indent=2, default=str) if as_json else text)
