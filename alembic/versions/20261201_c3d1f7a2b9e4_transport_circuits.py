"""transport circuits and transport alerts

A transport that refuses our sender, login or TLS is paused for every worker host at once:
its state lives in the database (circuit.py). Clinics are told through the clinic alert outbox
(a new kind, `transport`, with a `detail`; the kind column came with delivery feedback).
Messages get `stop_cause`, so what undoes a stop (resume, resubscribe) selects by cause
instead of by the words in `status_reason`; existing rows get theirs from those words.

Revision ID: c3d1f7a2b9e4
Revises: f6a4c0d5e2b7
Create Date: 2026-12-01 05:15:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from dripcare.models import UTCDateTime

# revision identifiers, used by Alembic.
revision: str = "c3d1f7a2b9e4"
down_revision: str | Sequence[str] | None = "f6a4c0d5e2b7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# status, status_reason pattern (LIKE), cause: the words each stop wrote until now.
CAUSES = [
    ("cancelled", "cancelled", "clinic"),
    ("cancelled", "stopped by the patient", "patient"),
    ("cancelled", "superseded by enrollment %", "superseded"),
    ("cancelled", "step % removed in version %", "step-removed"),
    ("cancelled", "unsubscribed", "unsubscribed"),
    ("cancelled", "address suppressed:%", "suppressed"),
    ("cancelled", "patient erased", "erased"),
    ("cancelled", "address bounced", "bounced"),
    ("cancelled", "patient marked an email as spam", "complained"),
    ("skipped", "due more than the grace period before enrollment", "late"),
]


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("stop_cause", sa.String(length=16), nullable=True))
    messages = sa.table(
        "messages",
        sa.column("status", sa.String),
        sa.column("status_reason", sa.String),
        sa.column("stop_cause", sa.String),
    )
    for status, words, cause in CAUSES:
        op.execute(
            messages.update()
            .where(messages.c.status == status, messages.c.status_reason.like(words))
            .values(stop_cause=cause)
        )
    op.create_table(
        "transport_circuits",
        sa.Column("transport", sa.String(length=200), nullable=False),
        sa.Column("is_open", sa.Boolean(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("opened_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("probe_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("transport", name=op.f("pk_transport_circuits")),
    )
    with op.batch_alter_table("clinic_alerts") as batch:
        batch.add_column(sa.Column("detail", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    op.execute("DELETE FROM clinic_alerts WHERE kind = 'transport'")
    with op.batch_alter_table("clinic_alerts") as batch:
        batch.drop_column("detail")
    op.drop_table("transport_circuits")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("stop_cause")
