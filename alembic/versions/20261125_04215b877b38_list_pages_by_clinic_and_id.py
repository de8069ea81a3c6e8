"""list pages by clinic and id

GET /messages and GET /enrollments read a clinic's rows in id order after a cursor: an index
on (clinic_id, id) returns one page without reading and sorting all of the clinic's rows. On
messages it replaces the index on clinic_id alone.

Revision ID: 04215b877b38
Revises: 3971ae7e802b
Create Date: 2026-11-25 10:37:00

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "04215b877b38"
down_revision: str | Sequence[str] | None = "3971ae7e802b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_enrollments_clinic_id_id", "enrollments", ["clinic_id", "id"])
    op.create_index("ix_messages_clinic_id_id", "messages", ["clinic_id", "id"])
    op.drop_index("ix_messages_clinic_id", table_name="messages")


def downgrade() -> None:
    op.create_index("ix_messages_clinic_id", "messages", ["clinic_id"])
    op.drop_index("ix_messages_clinic_id_id", table_name="messages")
    op.drop_index("ix_enrollments_clinic_id_id", table_name="enrollments")
