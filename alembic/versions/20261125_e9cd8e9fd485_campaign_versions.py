"""campaign versions

Revision ID: e9cd8e9fd485
Revises: b993c5825180
Create Date: 2026-11-25 07:16:53.160683

"""

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import dripcare.models

# revision identifiers, used by Alembic.
revision: str = "e9cd8e9fd485"
down_revision: str | Sequence[str] | None = "b993c5825180"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "campaign_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("note", sa.String(length=300), nullable=False),
        sa.Column("based_on", sa.Integer(), nullable=True),
        sa.Column("created_at", dripcare.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("published_at", dripcare.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("published_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_versions_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_versions")),
        sa.UniqueConstraint(
            "campaign_id", "number", name=op.f("uq_campaign_versions_campaign_id_number")
        ),
    )
    _record_live_versions()


def _record_live_versions() -> None:
    """Existing campaigns get their live steps and templates recorded as a published version.

    The snapshot format is `dataclasses.asdict(CampaignSpec)`, written out here so that this
    migration keeps working whatever the code later becomes.
    """
    conn = op.get_bind()
    now = datetime.now(UTC)
    campaigns = conn.execute(
        sa.text("SELECT id, slug, name, treatment, description, variables, version FROM campaigns")
    ).all()
    versions = sa.table(
        "campaign_versions",
        *(sa.column(n) for n in ("campaign_id", "number", "digest", "author", "note")),
        *(sa.column(n) for n in ("published_by", "based_on")),
        sa.column("content", sa.JSON()),
        sa.column("created_at", dripcare.models.UTCDateTime()),
        sa.column("published_at", dripcare.models.UTCDateTime()),
    )
    for cid, slug, name, treatment, description, variables, number in campaigns:
        steps = conn.execute(
            sa.text(
                "SELECT key, offset_days, offset_hours, offset_minutes, send_time, subject,"
                " preheader, template, checkin FROM steps"
                " WHERE campaign_id = :c AND active ORDER BY position"
            ),
            {"c": cid},
        ).all()
        sources = conn.execute(
            sa.text("SELECT name, source FROM campaign_templates WHERE campaign_id = :c"),
            {"c": cid},
        ).all()
        content = {
            "slug": slug,
            "name": name,
            "treatment": treatment,
            "description": description,
            "variables": json.loads(variables) if isinstance(variables, str) else variables,
            "steps": [{**row._asdict(), "checkin": bool(row.checkin)} for row in steps],
            "sources": dict(sorted((n, s) for n, s in sources)),
        }
        digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
        conn.execute(
            versions.insert().values(
                campaign_id=cid,
                number=number,
                content=content,
                digest=digest,
                author="migration",
                note="recorded when versions were introduced",
                based_on=None,
                created_at=now,
                published_at=now,
                published_by="migration",
            )
        )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("campaign_versions")
