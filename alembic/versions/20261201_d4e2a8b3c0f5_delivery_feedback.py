"""delivery feedback: reports about sent emails, and alerts about unreachable patients

`delivery_attempts.feedback_key` names a bounce, delay, complaint or delivery report applied
to a message (feedback.py), unique per message so a replayed report changes nothing.
`clinic_alerts` gets a kind: red-flag (a check-in, as before) or unreachable (a patient).

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
    with op.batch_alter_table("clinic_alerts") as batch_op:
        batch_op.alter_column("check_in_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(
            sa.Column(
                "kind",
                sa.Enum(
                    "red-flag", "unreachable", name="alertkind", native_enum=False, length=16
                ),
                server_default="red-flag",
                nullable=False,
            )
        )
        batch_op.add_column(sa.Column("patient_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_clinic_alerts_patient_id_patients"), "patients", ["patient_id"], ["id"]
        )


def downgrade() -> None:
    op.execute("DELETE FROM clinic_alerts WHERE check_in_id IS NULL")
    with op.batch_alter_table("clinic_alerts") as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_clinic_alerts_patient_id_patients"), type_="foreignkey"
        )
        batch_op.drop_column("patient_id")
        batch_op.drop_column("kind")
        batch_op.alter_column("check_in_id", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("delivery_attempts") as batch_op:
        batch_op.drop_constraint(
            batch_op.f("uq_delivery_attempts_message_id_feedback_key"), type_="unique"
        )
        batch_op.drop_column("feedback_key")
