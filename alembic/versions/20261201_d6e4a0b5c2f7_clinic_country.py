"""clinic country: the emergency number comes from the clinic's country

clinics.country (ISO 3166 alpha-2) is new; every existing clinic gets "US", since 911 was
the only number. clinics.emergency_number becomes the clinic's override ("" = the
country's number): the 911 every clinic had by default is cleared, so a clinic that later
sets its country gets that country's number; any other number stays as the override.

Revision ID: d6e4a0b5c2f7
Revises: a3b1d7e2f9c4
Create Date: 2026-12-01 09:40:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "d6e4a0b5c2f7"
down_revision: str | Sequence[str] | None = "a3b1d7e2f9c4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The numbers of emergency_numbers.py when this was written, for the downgrade only.
_NUMBERS = {"US": "911", "CA": "911", "GB": "999", "AU": "000", "NZ": "111"}


def upgrade() -> None:
    with op.batch_alter_table("clinics") as batch_op:
        batch_op.add_column(
            sa.Column("country", sa.String(length=2), nullable=False, server_default="US")
        )
    op.execute("UPDATE clinics SET emergency_number = '' WHERE emergency_number = '911'")


def downgrade() -> None:
    for country, number in _NUMBERS.items():
        op.execute(
            sa.text(
                "UPDATE clinics SET emergency_number = :number "
                "WHERE emergency_number = '' AND country = :country"
            ).bindparams(number=number, country=country)
        )
    op.execute("UPDATE clinics SET emergency_number = '112' WHERE emergency_number = ''")
    with op.batch_alter_table("clinics") as batch_op:
        batch_op.drop_column("country")
