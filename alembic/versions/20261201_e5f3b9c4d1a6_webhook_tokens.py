"""webhook tokens

`webhook_tokens` remembers the signed tokens of provider webhooks (Mailgun) already used, so a
recorded request replayed within the freshness window counts once.

Revision ID: e5f3b9c4d1a6
Revises: d4e2a8b3c0f5
Create Date: 2026-12-01 05:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import dripcare.models

# revision identifiers, used by Alembic.
revision: str = "e5f3b9c4d1a6"
down_revision: str | Sequence[str] | None = "d4e2a8b3c0f5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhook_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("token", sa.String(length=128), nullable=False),
        sa.Column("seen_at", dripcare.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_tokens")),
        sa.UniqueConstraint("provider", "token", name=op.f("uq_webhook_tokens_provider_token")),
    )
    op.create_index(op.f("ix_webhook_tokens_seen_at"), "webhook_tokens", ["seen_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_webhook_tokens_seen_at"), table_name="webhook_tokens")
    op.drop_table("webhook_tokens")
