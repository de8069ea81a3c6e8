"""operator alerts: clinic_alerts.clinic_id is NULL for the platform operator's own rows

Transport alerts (transport_alerts.py) used to attach the operator's copy to the first clinic
among those affected; it now has no clinic (channel `operator` or `operator-hook`), so no
clinic's view can list it. Existing operator rows lose their borrowed clinic.

Revision ID: b8c6e2f7a4d9
Revises: a7b5d1e6f3c8
Create Date: 2026-12-01 08:40:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "b8c6e2f7a4d9"
down_revision: str | Sequence[str] | None = "a7b5d1e6f3c8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clinic_alerts") as batch_op:
        batch_op.alter_column("clinic_id", existing_type=sa.Integer(), nullable=True)
    op.execute(
        "UPDATE clinic_alerts SET clinic_id = NULL WHERE channel IN ('operator', 'operator-hook')"
    )


def downgrade() -> None:
    op.execute("DELETE FROM clinic_alerts WHERE clinic_id IS NULL")
    with op.batch_alter_table("clinic_alerts") as batch_op:
        batch_op.alter_column("clinic_id", existing_type=sa.Integer(), nullable=False)
