"""audit events and patient erasure

`audit_events` records who did what among the admin actions (publish, roll back, API keys,
sign-ins, patient export and erasure); `patients.erased_at` marks a patient whose personal
data was removed on request.

Revision ID: 7c1e5a90d3b2
Revises: 04215b877b38
Create Date: 2026-12-01 04:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dripcare.models

# revision identifiers, used by Alembic.
revision: str = "7c1e5a90d3b2"
down_revision: str | Sequence[str] | None = "04215b877b38"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", dripcare.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=True),
        sa.Column(
            "actor_kind",
            sa.Enum(
                "admin", "api-key", "cli", "system", name="actorkind", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target_kind", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_audit_events_clinic_id_clinics")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index("ix_audit_events_clinic_id_id", "audit_events", ["clinic_id", "id"])
    with op.batch_alter_table("patients") as batch_op:
        batch_op.add_column(
            sa.Column("erased_at", dripcare.models.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("patients") as batch_op:
        batch_op.drop_column("erased_at")
    op.drop_index("ix_audit_events_clinic_id_id", table_name="audit_events")
    op.drop_table("audit_events")
