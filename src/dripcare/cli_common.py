"""What every `dripcare` command shares: one-line errors with exit status 2, and `--json`."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click
from sqlalchemy import exc as sa_exc

from dripcare.db_faults import fault_of
from dripcare.errors import UserError

F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


_NO_SCHEMA = ("no such table", "undefinedtable", "does not exist")


def user_errors(func: F) -> F:
    """Turn a domain `UserError` into one clear line and exit status 2."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except UserError as exc:
            _fail(str(exc))

    return wrapper  # type: ignore[return-value]


class CommandGroup(click.Group):
    """The `dripcare` group: any command meeting a database that is down or has no schema yet
    says so in one line (exit status 2) instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except sa_exc.DBAPIError as exc:
            _fail(database_problem(exc))


def database_problem(error: sa_exc.DBAPIError) -> str:
    """What a person can do about a database error; a bug in a query still shows as one."""
    fault = fault_of(error)
    if fault is not None:
        return f"{fault}; check that it runs and DRIPCARE_DATABASE_URL points at it"
    text = f"{type(error.orig).__name__} {error.orig}".lower()
    if isinstance(error, sa_exc.OperationalError | sa_exc.ProgrammingError) and any(
        needle in text for needle in _NO_SCHEMA
    ):
        return (
            "the database has no dripcare tables yet (or an older schema): run "
            "`dripcare db upgrade`, then try again"
        )
    raise error


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
