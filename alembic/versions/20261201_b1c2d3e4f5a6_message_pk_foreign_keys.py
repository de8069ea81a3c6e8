"""message_pk: the foreign keys to messages.id are no longer called message_id

`messages.message_id` is the RFC 5322 Message-ID header; the integer keys that point at a
message in delivery_attempts, subscription_events and check_ins become `message_pk`, with
their indexes and constraints renamed to match. The rows and their links are kept.
`check_ins.outcome` (models.RedFlagOutcome) is NULL, not "", until the red flag is resolved.

Revision ID: b1c2d3e4f5a6
Revises: e5f6a7b8c9d0
Create Date: 2026-12-01 16:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "b1c2d3e4f5a6"
down_revision: str | Sequence[str] | None = "e5f6a7b8c9d0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table, nullable, has a unique (key, feedback_key); an index of the key is renamed if there is one
TABLES = (
    ("delivery_attempts", False, True),
    ("subscription_events", True, False),
    ("check_ins", False, False),
)

OUTCOME = sa.String(length=16)


def upgrade() -> None:
    for table, nullable, unique in TABLES:
        _rename(table, "message_id", "message_pk", nullable, unique)
    with op.batch_alter_table("check_ins") as batch_op:
        batch_op.alter_column("outcome", existing_type=OUTCOME, nullable=True, server_default=None)
    op.execute("UPDATE check_ins SET outcome = NULL WHERE outcome = ''")


def downgrade() -> None:
    op.execute("UPDATE check_ins SET outcome = '' WHERE outcome IS NULL")
    with op.batch_alter_table("check_ins") as batch_op:
        batch_op.alter_column("outcome", existing_type=OUTCOME, nullable=False, server_default="")
    for table, nullable, unique in TABLES:
        _rename(table, "message_pk", "message_id", nullable, unique)


def _rename(table: str, old: str, new: str, nullable: bool, unique: bool) -> None:
    """PostgreSQL renames in place (no rewrite, no index rebuild); SQLite copies the table."""
    indexed = f"ix_{table}_{old}" in {
        i["name"] for i in sa.inspect(op.get_bind()).get_indexes(table)
    }
    names = [
        (f"fk_{table}_{old}_messages", f"fk_{table}_{new}_messages"),
        *([(f"uq_{table}_{old}_feedback_key", f"uq_{table}_{new}_feedback_key")] if unique else []),
    ]
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(table, old, new_column_name=new)
        for before, after in names:
            op.execute(f"ALTER TABLE {table} RENAME CONSTRAINT {before} TO {after}")
        if indexed:
            op.execute(f"ALTER INDEX ix_{table}_{old} RENAME TO ix_{table}_{new}")
        return
    if indexed:
        op.drop_index(f"ix_{table}_{old}", table_name=table)
    with op.batch_alter_table(table) as batch_op:
        batch_op.alter_column(
            old, new_column_name=new, existing_type=sa.Integer(), existing_nullable=nullable
        )
    with op.batch_alter_table(table, recreate="always") as batch_op:
        for before, after in names:
            kind = "unique" if before.startswith("uq_") else "foreignkey"
            batch_op.drop_constraint(before, type_=kind)
            if kind == "unique":
                batch_op.create_unique_constraint(after, [new, "feedback_key"])
            else:
                batch_op.create_foreign_key(after, "messages", [new], ["id"])
    if indexed:
        op.create_index(f"ix_{table}_{new}", table, [new])
