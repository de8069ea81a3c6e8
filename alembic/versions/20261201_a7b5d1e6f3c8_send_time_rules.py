"""send-time rules: quiet hours per clinic, send_until per step, per-clinic claim index

clinics.quiet_hours: a clinic's own quiet hours (NULL: DRIPCARE_QUIET_HOURS).
steps.send_until: how long after its planned time a step may still go out (NULL:
DRIPCARE_LATE_GRACE_HOURS). ix_messages_clinic_due_scheduled serves the dispatcher's fair,
per-clinic claim the way ix_messages_due_scheduled serves the global one.

Revision ID: a7b5d1e6f3c8
Revises: c3d1f7a2b9e4
Create Date: 2026-12-01 04:50:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "a7b5d1e6f3c8"
down_revision: str | Sequence[str] | None = "c3d1f7a2b9e4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEDULED = sa.text("status = 'scheduled'")


def upgrade() -> None:
    with op.batch_alter_table("clinics") as batch_op:
        batch_op.add_column(sa.Column("quiet_hours", sa.String(length=16), nullable=True))
    with op.batch_alter_table("steps") as batch_op:
        batch_op.add_column(sa.Column("send_until", sa.String(length=16), nullable=True))
    op.create_index(
        "ix_messages_clinic_due_scheduled",
        "messages",
        ["clinic_id", "due_at"],
        postgresql_where=SCHEDULED,
        sqlite_where=SCHEDULED,
    )


def downgrade() -> None:
    op.drop_index("ix_messages_clinic_due_scheduled", table_name="messages")
    with op.batch_alter_table("steps") as batch_op:
        batch_op.drop_column("send_until")
    with op.batch_alter_table("clinics") as batch_op:
        batch_op.drop_column("quiet_hours")
