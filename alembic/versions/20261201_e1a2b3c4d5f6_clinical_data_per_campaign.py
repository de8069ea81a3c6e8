# ruff: noqa: E501  (the clinical texts are data, kept one per line)
"""clinical data per campaign; a clinic's default campaign

The red flags, expected course and emergency lines were constants in code, written for
microneedling; they are now each campaign version's `clinical` content. Every version stored
before this was checked and shown with those constants, so they are written into it here (its
digest recomputed), exactly as they were. Clinics gain `default_campaign`: the campaign an
enrollment that names none follows; a clinic with the microneedling campaign keeps it as such.

Revision ID: e1a2b3c4d5f6
Revises: c5d3f9a4b1e6
Create Date: 2026-12-01 12:00:00

"""

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "e1a2b3c4d5f6"
down_revision: str | Sequence[str] | None = "c5d3f9a4b1e6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What checkins.py and safety.py held at c5d3f9a4b1e6 (a copy: later edits of the shipped
# campaign.toml must not change what old versions meant).
CLINICAL_BEFORE: dict[str, Any] = json.loads(
    """
{
    "emergency_heading": "Emergency: get help now",
    "emergency_line": "Swelling of lips, tongue or throat, or trouble breathing: call {number} now.",
    "pointer_line": "Swelling of lips, tongue or throat, or trouble breathing: call {number} now. More warning signs are listed below.",
    "pointer_days": 7,
    "red_flags": [
        {
            "code": "airway",
            "tier": "emergency",
            "text": "Swelling of your lips, face, tongue or throat, trouble breathing or swallowing, wheezing, or feeling dizzy or confused"
        },
        {
            "code": "spreading",
            "tier": "emergency",
            "text": "Redness spreading quickly, or a fever of 38 °C (100.4 °F) or more, vomiting, a fast heartbeat or fast breathing"
        },
        {
            "code": "face-hot",
            "tier": "emergency",
            "text": "Painful, hot, swollen skin on your face, especially around the eye, or skin that is getting worse quickly"
        },
        {
            "code": "eye",
            "tier": "emergency",
            "text": "Eye pain or any change in your vision"
        },
        {
            "code": "worse",
            "tier": "urgent",
            "text": "Redness, warmth or itching that is getting worse, or pus"
        },
        {
            "code": "blisters",
            "tier": "urgent",
            "text": "Tingling or burning, then a group of blisters, sores or crusts, especially near your lips"
        },
        {
            "code": "not-better",
            "tier": "urgent",
            "text": "Redness or swelling that is not getting better by day 3, or is still there on day 7"
        },
        {
            "code": "rash",
            "tier": "urgent",
            "text": "A new itchy, red, bumpy or scaly rash, or lumps, where you were treated"
        },
        {
            "code": "pimples",
            "tier": "urgent",
            "text": "Many pimples, or pimples that hurt or have pus"
        },
        {
            "code": "patches",
            "tier": "urgent",
            "text": "Dark or light patches, or grid or track marks that last more than a week"
        }
    ],
    "expected_course": [
        {
            "text": "Redness like a sunburn, tightness, tenderness, some swelling, stinging or itching are normal today. Tiny spots of blood or clear fluid can happen; press gently with clean gauze.",
            "before_day": 1
        },
        {
            "text": "Redness and swelling usually ease within 1 to 2 days.",
            "before_day": 2
        },
        {
            "text": "Redness, swelling and flaking usually settle within about 3 days. Small crusts can form: do not pick them.",
            "before_day": 3
        },
        {
            "text": "Dryness, peeling, itching and small bruises usually clear within 7 days.",
            "before_day": 7
        },
        {
            "text": "By now your skin should look healed. Keep using sunscreen every day."
        }
    ]
}
"""
)

versions = sa.table(
    "campaign_versions",
    sa.column("id", sa.Integer),
    sa.column("content", sa.JSON),
    sa.column("digest", sa.String),
)


def upgrade() -> None:
    with op.batch_alter_table("clinics") as batch_op:
        batch_op.add_column(sa.Column("default_campaign", sa.String(length=64), nullable=True))
    op.execute(
        "UPDATE clinics SET default_campaign = 'microneedling' WHERE EXISTS "
        "(SELECT 1 FROM campaigns WHERE campaigns.clinic_id = clinics.id "
        "AND campaigns.slug = 'microneedling')"
    )
    bind = op.get_bind()
    for row in bind.execute(sa.select(versions.c.id, versions.c.content)).all():
        content = dict(row.content)
        if "clinical" in content:
            continue
        content["clinical"] = CLINICAL_BEFORE
        digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
        bind.execute(
            versions.update().where(versions.c.id == row.id).values(content=content, digest=digest)
        )


def downgrade() -> None:
    bind = op.get_bind()
    for row in bind.execute(sa.select(versions.c.id, versions.c.content)).all():
        content = {k: v for k, v in dict(row.content).items() if k != "clinical"}
        digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
        bind.execute(
            versions.update().where(versions.c.id == row.id).values(content=content, digest=digest)
        )
    with op.batch_alter_table("clinics") as batch_op:
        batch_op.drop_column("default_campaign")
