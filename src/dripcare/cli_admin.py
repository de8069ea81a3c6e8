"""`dripcare admin …`: people who sign in to the web admin (kept apart from cli.py's size)."""

from __future__ import annotations

import sys

import click

from dripcare.cli_common import emit, json_option, user_errors
from dripcare.db import session_scope
from dripcare.errors import UserError


@click.group()
def admin() -> None:
    """Admin users of the web admin (/admin)."""


@admin.command("create-user")
@click.option("--email", required=True, help="What they sign in with.")
@click.option("--clinic", "clinic_id", type=int, default=None, help="The clinic they administer.")
@click.option("--platform", is_flag=True, help="May administer every clinic.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@json_option
@user_errors
def create_user(
    email: str, clinic_id: int | None, platform: bool, password_stdin: bool, as_json: bool
) -> None:
    """Create an admin user; the password is asked for (hidden, twice) unless piped in."""
    from dripcare.people.admins import check_password, create_admin_user

    if platform == (clinic_id is not None):
        raise UserError("give either --clinic ID or --platform (exactly one)")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    check_password(password)
    with session_scope() as session:
        user = create_admin_user(
            session, email=email, password=password, clinic_id=clinic_id, platform=platform
        )
        data = {
            "id": user.id,
            "email": user.email,
            "clinic_id": user.clinic_id,
            "is_platform_admin": user.is_platform_admin,
        }
    where = "every clinic" if platform else f"clinic {clinic_id}"
    emit(as_json, data, f"admin user {data['id']} created: {data['email']} ({where})")
