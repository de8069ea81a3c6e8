"""drop indexes that a unique index already leads

Each of these columns is the first column of a unique index, which serves the same lookups;
the extra index only cost writes (7 index entries fewer per enrollment's messages).

Revision ID: 3971ae7e802b
Revises: e9cd8e9fd485
Create Date: 2026-11-25 10:31:53.549299

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "3971ae7e802b"
down_revision: str | Sequence[str] | None = "e9cd8e9fd485"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REDUNDANT = {  # index -> (table, column); the unique index that leads with the column
    "ix_campaigns_clinic_id": ("campaigns", "clinic_id"),  # (clinic_id, slug)
    "ix_enrollments_clinic_id": ("enrollments", "clinic_id"),  # (clinic_id, external_id)
    "ix_messages_enrollment_id": ("messages", "enrollment_id"),  # (enrollment_id, step_id)
    "ix_patients_clinic_id": ("patients", "clinic_id"),  # (clinic_id, email)
}


def upgrade() -> None:
    for name, (table, _) in REDUNDANT.items():
        op.drop_index(name, table_name=table)


def downgrade() -> None:
    for name, (table, column) in REDUNDANT.items():
        op.create_index(name, table, [column])
