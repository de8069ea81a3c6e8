"""red-flag lifecycle: held messages, safety-only steps, acknowledgement and escalation

A red-flag check-in holds the patient's other emails (status `held`, no schema change: the
status is a string) until the clinic resolves it. Check-ins gain their alert's lifecycle
(open, acknowledged, resolved) and the next escalation time; alert rows gain an escalation
round and a recipient, so one check-in has one row per round and recipient.

Revision ID: c5d3f9a4b1e6
Revises: d6e4a0b5c2f7
Create Date: 2026-12-01 09:40:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from dripcare.models import UTCDateTime

# revision identifiers, used by Alembic.
revision: str = "c5d3f9a4b1e6"
down_revision: str | Sequence[str] | None = "d6e4a0b5c2f7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("steps") as batch_op:
        batch_op.add_column(
            sa.Column("safety_only", sa.Boolean(), server_default=sa.text("false"), nullable=False)
        )
    with op.batch_alter_table("check_ins") as batch_op:
        batch_op.add_column(sa.Column("alert_state", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("acknowledged_at", UTCDateTime(), nullable=True))
        for name, length in (
            ("acknowledged_by", 320),
            ("resolved_by", 320),
            ("outcome", 16),
            ("resolution_note", 1000),
            ("ack_jti", 32),
        ):
            batch_op.add_column(
                sa.Column(name, sa.String(length=length), server_default="", nullable=False)
            )
        batch_op.add_column(sa.Column("resolved_at", UTCDateTime(), nullable=True))
        batch_op.add_column(
            sa.Column("ack_jti_used", sa.Boolean(), server_default=sa.text("false"), nullable=False)
        )
        batch_op.add_column(sa.Column("escalate_at", UTCDateTime(), nullable=True))
        batch_op.add_column(
            sa.Column("escalations", sa.Integer(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("clinic_alerts") as batch_op:
        batch_op.add_column(
            sa.Column("escalation", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("recipient", sa.String(length=500), server_default="", nullable=False)
        )
        batch_op.drop_constraint("uq_clinic_alerts_check_in_id_channel", type_="unique")
        batch_op.create_unique_constraint(
            "uq_clinic_alerts_check_in_id_channel_escalation_recipient",
            ["check_in_id", "channel", "escalation", "recipient"],
        )


def downgrade() -> None:
    op.execute("DELETE FROM clinic_alerts WHERE escalation > 0")
    op.execute("UPDATE messages SET status = 'scheduled', status_reason = '' WHERE status = 'held'")
    with op.batch_alter_table("clinic_alerts") as batch_op:
        batch_op.drop_constraint(
            "uq_clinic_alerts_check_in_id_channel_escalation_recipient", type_="unique"
        )
        batch_op.create_unique_constraint(
            "uq_clinic_alerts_check_in_id_channel", ["check_in_id", "channel"]
        )
        batch_op.drop_column("recipient")
        batch_op.drop_column("escalation")
    with op.batch_alter_table("check_ins") as batch_op:
        for name in (
            "escalations",
            "escalate_at",
            "ack_jti_used",
            "resolved_at",
            "ack_jti",
            "resolution_note",
            "outcome",
            "resolved_by",
            "acknowledged_by",
            "acknowledged_at",
            "alert_state",
        ):
            batch_op.drop_column(name)
    with op.batch_alter_table("steps") as batch_op:
        batch_op.drop_column("safety_only")
