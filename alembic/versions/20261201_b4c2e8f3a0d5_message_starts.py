"""messages.starts: sends started without an outcome recorded since

`attempts` now counts only tries the mail server answered. `starts` counts the starts that ended
without any outcome (a worker killed, a lease lost, a database outage); it is cleared whenever an
outcome is recorded, and a message that reaches DRIPCARE_MAX_STARTS (a poison message that kills
its worker every time) fails with a clear reason instead of looping.

Revision ID: b4c2e8f3a0d5
Revises: b8c6e2f7a4d9
Create Date: 2026-12-01 08:50:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "b4c2e8f3a0d5"
down_revision: str | Sequence[str] | None = "b8c6e2f7a4d9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("starts", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_column("starts")
