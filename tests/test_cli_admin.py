"""`dripcare admin create-user`: the first admin of a clinic, or a platform admin."""

from __future__ import annotations

import json

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner, Result
from sqlalchemy import select

from dripcare.cli import main
from dripcare.config import Settings
from dripcare.db import session_scope
from dripcare.models import AdminUser
from tests.admin_fixtures import PASSWORD
from tests.factories import make_clinic


def create_user(*args: str, password: str = PASSWORD) -> Result:
    return CliRunner().invoke(
        main, ["admin", "create-user", *args], input=f"{password}\n", catch_exceptions=False
    )


@pytest.fixture
def clinic(settings: Settings) -> int:
    return make_clinic()


def stored_users() -> list[tuple[str, int | None, bool, str]]:
    with session_scope() as session:
        return [
            (u.email, u.clinic_id, u.is_platform_admin, u.password_hash)
            for u in session.scalars(select(AdminUser).order_by(AdminUser.id))
        ]


@pytest.mark.real_argon2
def test_creates_a_clinic_admin_from_stdin_with_an_argon2_hash(clinic: int) -> None:
    result = create_user(
        "--email", "Ana@Riverside.example", "--clinic", str(clinic), "--password-stdin", "--json"
    )

    ((email, clinic_id, platform, password_hash),) = stored_users()
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "id": 1,
        "email": "ana@riverside.example",
        "clinic_id": clinic,
        "is_platform_admin": False,
    }
    assert (email, clinic_id, platform) == ("ana@riverside.example", clinic, False)
    assert password_hash.startswith("$argon2id$") and PASSWORD not in password_hash
    assert not PasswordHasher().check_needs_rehash(password_hash)  # argon2-cffi's defaults


def test_prompts_twice_for_a_hidden_password(clinic: int) -> None:
    result = CliRunner().invoke(
        main,
        ["admin", "create-user", "--email", "root@platform.example", "--platform"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )

    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output  # hidden input is not echoed
    assert stored_users()[0][1:3] == (None, True)


@pytest.mark.parametrize(
    ("args", "password", "message"),
    [
        (["--email", "a@r.example"], PASSWORD, "give either --clinic ID or --platform"),
        (["--email", "a@r.example", "--clinic", "1", "--platform"], PASSWORD, "exactly one"),
        (["--email", "a@r.example", "--clinic", "99"], PASSWORD, "no clinic with id 99"),
        (["--email", "nope", "--clinic", "1"], PASSWORD, "invalid email address 'nope'"),
        (["--email", "a@r.example", "--clinic", "1"], "short", "password is too short"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(
    clinic: int, args: list[str], password: str, message: str
) -> None:
    result = create_user(*args, "--password-stdin", password=password)

    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert stored_users() == []


def test_an_email_is_taken_once(clinic: int) -> None:
    create_user("--email", "a@r.example", "--clinic", str(clinic), "--password-stdin")
    again = create_user("--email", "A@r.example", "--platform", "--password-stdin")

    assert again.exit_code == 2 and "exists already" in again.stderr
    assert len(stored_users()) == 1
