"""Alembic environment: the database URL comes from DRIPCARE_DATABASE_URL (or the default)."""

from alembic import context
from sqlalchemy import Connection

from dripcare.db import get_engine
from dripcare.models import POSTGRESQL_ONLY_INDEXES, Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    url = config.get_main_option("sqlalchemy.url") or str(get_engine().url)
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = config.attributes.get("connection") or get_engine()
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Batch mode copies a table and drops the old one; with foreign keys enforced,
            # dropping a table that other rows point at fails. The pragma works only outside a
            # transaction, hence the driver's connection; the keys are checked at the end.
            _pragma(connection, "foreign_keys=OFF")
        try:
            _migrate(connection, sqlite)
        finally:
            if sqlite:
                connection.rollback()  # nothing, after the commit; else the failed migration
                _pragma(connection, "foreign_keys=ON")


def _compared(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Leave PostgreSQL-only indexes (models.POSTGRESQL_ONLY_INDEXES) out of the drift check."""
    return not (type_ == "index" and reflected and name in POSTGRESQL_ONLY_INDEXES)


def _migrate(connection: Connection, sqlite: bool) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=sqlite,
        include_object=_compared,
    )
    with context.begin_transaction():
        context.run_migrations()
    if sqlite:
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
        if broken:
            raise RuntimeError(f"the migration left rows pointing at nothing: {broken[:5]}")
    connection.commit()


def _pragma(connection: Connection, pragma: str) -> None:
    cursor = connection.connection.cursor()
    cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
