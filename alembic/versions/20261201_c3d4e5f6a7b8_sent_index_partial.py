"""send path indexes: sent_at index partial; delivery_attempts(message_id) index dropped

A message is updated three times on its way out (claimed, started, its outcome). Each update
changes `status`, which partial indexes name, so none is a HOT update and each adds an entry
to every full index of the table. The dashboard's sent-per-day index needs only rows with a
`sent_at`, which only the outcome sets: as a partial index it takes one entry per email
instead of three (bench/README.md, "Issue 11"). The dashboard's query (`sent_at` in a window)
implies `sent_at IS NOT NULL`, so it still uses the index.

Every email sent also logs one attempt. `ix_delivery_attempts_message_id` is dropped: the
unique index on (message_id, feedback_key) leads with the same column and serves the same
lookups (as in 3971ae7e802b), so each attempt adds one index entry fewer.

Revision ID: c3d4e5f6a7b8
Revises: a9c8b7d6e5f4
Create Date: 2026-12-01 15:40:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c3d4e5f6a7b8"
down_revision: str | Sequence[str] | None = "a9c8b7d6e5f4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SENT = sa.text("sent_at IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_delivery_attempts_message_id", table_name="delivery_attempts")
    op.drop_index("ix_messages_clinic_id_sent_at", table_name="messages")
    op.create_index(
        "ix_messages_clinic_id_sent_at",
        "messages",
        ["clinic_id", "sent_at"],
        postgresql_where=SENT,
        sqlite_where=SENT,
    )


def downgrade() -> None:
    op.drop_index("ix_messages_clinic_id_sent_at", table_name="messages")
    op.create_index("ix_messages_clinic_id_sent_at", "messages", ["clinic_id", "sent_at"])
    op.create_index("ix_delivery_attempts_message_id", "delivery_attempts", ["message_id"])
