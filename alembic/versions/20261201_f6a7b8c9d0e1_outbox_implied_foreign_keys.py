"""messages: drop the foreign keys to clinics and steps, implied by the one to enrollments

Each outbox row paid three foreign-key checks on insert (a per-row trigger, an index probe and
a lock of the parent row): about half of what PostgreSQL spends writing an import's outbox
rows. Two of them guard nothing the code can break:
- `messages.clinic_id` is copied from the row's enrollment by the only writers of outbox rows
  (`outbox_rows.insert_messages`, `bulk_enroll`), and the enrollment's own `clinic_id` keeps
  its foreign key to clinics; clinics are never deleted.
- `messages.step_id` is a step of the enrollment's campaign, taken from the campaign's plan
  (`campaigns.campaign_plan`); steps are never deleted (a step left out of a published version
  is deactivated, `active = False`), and a campaign is never deleted.
`messages.enrollment_id` keeps its foreign key. tests/test_outbox_integrity.py checks that every
path that writes outbox rows leaves each row's clinic the enrollment's and its step one of the
enrollment's campaign.

Revision ID: f6a7b8c9d0e1
Revises: b1c2d3e4f5a6
Create Date: 2026-12-01 19:30:00

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "f6a7b8c9d0e1"
down_revision: str | Sequence[str] | None = "b1c2d3e4f5a6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DROPPED = (
    ("fk_messages_clinic_id_clinics", "clinics", "clinic_id"),
    ("fk_messages_step_id_steps", "steps", "step_id"),
)


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        for name, _, _ in DROPPED:
            batch_op.drop_constraint(name, type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        for name, table, column in DROPPED:
            batch_op.create_foreign_key(name, table, [column], ["id"])
