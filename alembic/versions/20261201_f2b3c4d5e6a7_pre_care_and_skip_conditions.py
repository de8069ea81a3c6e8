"""pre-care steps, skip conditions and treatment attributes

Steps gain `stop_now`, `late_booking` (the merged email a late booking gets) and `skip_if`;
campaigns gain `requires` (treatment attributes an enrollment must bring); enrollments gain
those `attributes`, the marks skip conditions read (`next_session_booked_at`, `one_off`)
and the stop-now steps a late booking missed (`missed_steps`).

Revision ID: f2b3c4d5e6a7
Revises: e1a2b3c4d5f6
Create Date: 2026-12-01 12:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from dripcare.models import UTCDateTime

# revision identifiers, used by Alembic.
revision: str = "f2b3c4d5e6a7"
down_revision: str | Sequence[str] | None = "e1a2b3c4d5f6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FALSE = sa.text("false")


def upgrade() -> None:
    with op.batch_alter_table("steps") as batch_op:
        batch_op.add_column(
            sa.Column("stop_now", sa.Boolean(), server_default=_FALSE, nullable=False)
        )
        batch_op.add_column(
            sa.Column("late_booking", sa.Boolean(), server_default=_FALSE, nullable=False)
        )
        batch_op.add_column(
            sa.Column("skip_if", sa.JSON(), server_default=sa.text("'[]'"), nullable=False)
        )
    with op.batch_alter_table("campaigns") as batch_op:
        batch_op.add_column(
            sa.Column("requires", sa.JSON(), server_default=sa.text("'{}'"), nullable=False)
        )
    with op.batch_alter_table("enrollments") as batch_op:
        batch_op.add_column(
            sa.Column("attributes", sa.JSON(), server_default=sa.text("'{}'"), nullable=False)
        )
        batch_op.add_column(sa.Column("next_session_booked_at", UTCDateTime(), nullable=True))
        batch_op.add_column(
            sa.Column("one_off", sa.Boolean(), server_default=_FALSE, nullable=False)
        )
        batch_op.add_column(
            sa.Column("missed_steps", sa.JSON(), server_default=sa.text("'[]'"), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("enrollments") as batch_op:
        batch_op.drop_column("missed_steps")
        batch_op.drop_column("one_off")
        batch_op.drop_column("next_session_booked_at")
        batch_op.drop_column("attributes")
    with op.batch_alter_table("campaigns") as batch_op:
        batch_op.drop_column("requires")
    with op.batch_alter_table("steps") as batch_op:
        batch_op.drop_column("skip_if")
        batch_op.drop_column("late_booking")
        batch_op.drop_column("stop_now")
