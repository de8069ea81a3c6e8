"""dashboard indexes

The dashboard counts a clinic's emails sent per day (by sent_at) and failed per day (by their
last change). Without these both read the whole messages table; with them PostgreSQL reads
only the clinic's window from the index (bench/dashboard.py: 200,000 messages, sent per day
over 30 days from ~42 to ~10 ms, failed from ~28 to ~0.2 ms). The failed one is partial: few
rows are failed.

Revision ID: 5d1e0a7c9b42
Revises: 7c1e5a90d3b2
Create Date: 2026-12-01 04:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "5d1e0a7c9b42"
down_revision: str | Sequence[str] | None = "7c1e5a90d3b2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FAILED = sa.text("status = 'failed'")


def upgrade() -> None:
    op.create_index("ix_messages_clinic_id_sent_at", "messages", ["clinic_id", "sent_at"])
    op.create_index(
        "ix_messages_failed",
        "messages",
        ["clinic_id", "updated_at"],
        postgresql_where=FAILED,
        sqlite_where=FAILED,
    )


def downgrade() -> None:
    op.drop_index("ix_messages_failed", table_name="messages")
    op.drop_index("ix_messages_clinic_id_sent_at", table_name="messages")
