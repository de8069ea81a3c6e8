"""clinic senders: sending domains, DKIM keys, per-clinic SMTP

Every existing clinic is granted the domain of its current sender address, so the new rule
(a From address must use one of the clinic's domains) breaks no clinic on upgrade.

Revision ID: f6a4c0d5e2b7
Revises: e5f3b9c4d1a6
Create Date: 2026-12-01 04:45:00

"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import dripcare.models

# revision identifiers, used by Alembic.
revision: str = "f6a4c0d5e2b7"
down_revision: str | Sequence[str] | None = "e5f3b9c4d1a6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    domains = op.create_table(
        "clinic_sending_domains",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("created_at", dripcare.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinics.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("clinic_id", "domain"),
    )
    op.create_table(
        "dkim_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("selector", sa.String(length=63), nullable=False),
        sa.Column("private_key", sa.Text(), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("created_at", dripcare.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinics.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("clinic_id", "domain", "selector"),
    )
    op.create_table(
        "clinic_transports",
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("smtp_url", sa.Text(), nullable=False),
        sa.Column("updated_at", dripcare.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinics.id"]),
        sa.PrimaryKeyConstraint("clinic_id"),
    )
    _grant_current_senders(domains)


def _grant_current_senders(domains: sa.Table) -> None:
    bind = op.get_bind()
    clinics = bind.execute(sa.text("SELECT id, sender_email FROM clinics")).all()
    now = datetime.now(UTC)
    rows = [
        {"clinic_id": clinic_id, "domain": sender.rsplit("@", 1)[-1].lower(), "created_at": now}
        for clinic_id, sender in clinics
        if "@" in sender
    ]
    if rows:
        bind.execute(domains.insert(), rows)


def downgrade() -> None:
    op.drop_table("clinic_transports")
    op.drop_table("dkim_keys")
    op.drop_table("clinic_sending_domains")
