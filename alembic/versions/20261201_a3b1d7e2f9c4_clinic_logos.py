"""clinic logos: uploaded and served by dripcare (logos.py), not any https URL

Revision ID: a3b1d7e2f9c4
Revises: b4c2e8f3a0d5
Create Date: 2026-12-01 09:45:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dripcare.models

# revision identifiers, used by Alembic.
revision: str = "a3b1d7e2f9c4"
down_revision: str | Sequence[str] | None = "b4c2e8f3a0d5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "clinic_logos",
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("content_type", sa.String(length=20), nullable=False),
        sa.Column("digest", sa.String(length=16), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", dripcare.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinics.id"]),
        sa.PrimaryKeyConstraint("clinic_id"),
    )


def downgrade() -> None:
    op.drop_table("clinic_logos")
