"""delivery feedback: reports about sent emails in their delivery attempts

`delivery_attempts.feedback_key` names a bounce, delay, complaint or delivery report applied
to a message (feedback.py), unique per message so a replayed report changes nothing.

Revision ID: d4e2a8b3c0f5
Revises: 5d1e0a7c9b42
Create Date: 2026-12-01 04:50:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "d4e2a8b3c0f5"
down_revision: str | Sequence[str] | None = "5d1e0a7c9b42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("delivery_attempts") as batch_op:
        batch_op.add_column(sa.Column("feedback_key", sa.String(length=200), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_delivery_attempts_message_id_feedback_key"),
            ["message_id", "feedback_key"],
        )


def downgrade() -> None:
    with op.batch_alter_table("delivery_attempts") as batch_op:
        batch_op.drop_constraint(
            batch_op.f("uq_delivery_attempts_message_id_feedback_key"), type_="unique"
        )
        batch_op.drop_column("feedback_key")
