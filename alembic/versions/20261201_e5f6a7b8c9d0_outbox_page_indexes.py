"""outbox page indexes: a clinic's recent and upcoming emails, and changes since, at 10 M rows

Revision ID: e5f6a7b8c9d0
Revises: a9c8b7d6e5f4
Create Date: 2026-12-01 15:30:00

bench/scale.py (bench/README.md, "Issue 14"): without them the admin outbox's "recent" list and
the API's `GET /messages?since=` read all of a clinic's rows and sort them, and "upcoming" reads
every unsent row of the clinic; with them each reads one end of an index.

Building them on 10 M rows takes about a minute, during which writes to `messages` wait; IF NOT
EXISTS lets an operator create them first with CREATE INDEX CONCURRENTLY under the same names.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "e5f6a7b8c9d0"
down_revision: str | Sequence[str] | None = "a9c8b7d6e5f4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPCOMING = sa.text("status IN ('scheduled', 'queued', 'sending', 'held')")


def upgrade() -> None:
    op.create_index(
        "ix_messages_clinic_id_updated_at",
        "messages",
        ["clinic_id", "updated_at", "id"],
        if_not_exists=True,
    )
    op.create_index(
        "ix_messages_clinic_upcoming",
        "messages",
        ["clinic_id", "due_at", "id"],
        postgresql_where=UPCOMING,
        sqlite_where=UPCOMING,
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_index("ix_messages_clinic_upcoming", table_name="messages")
    op.drop_index("ix_messages_clinic_id_updated_at", table_name="messages")
