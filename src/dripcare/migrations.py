"""Run Alembic migrations from code (the CLI, the dev server and the tests use this).

The configuration is built here rather than read from alembic.ini, which only a checkout has:
an installed dripcare migrates from any working directory. alembic.ini stays for developers
who run `alembic revision` in the checkout.
"""

from __future__ import annotations

from functools import cache

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from dripcare.shipped import migrations_dir


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("path_separator", "os")
    return config


def upgrade(revision: str = "head") -> None:
    command.upgrade(alembic_config(), revision)


@cache
def code_head() -> str | None:
    """The schema revision this code expects. Read once per process: the shipped scripts do not
    change while it runs, and /readyz asks on every probe."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
