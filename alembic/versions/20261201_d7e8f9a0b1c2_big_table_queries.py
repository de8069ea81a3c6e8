"""big table queries: sent counts per quarter hour, and the indexes 10 M rows need

- `sent_counts`: emails sent per clinic and UTC quarter hour, kept by triggers on `messages`
  (insert, update of sent_at or clinic_id, delete), filled here from the rows there are. The
  dashboard's sent per day reads it instead of counting every sent row of the window.
- `ix_messages_unsent_id_clinic`: `(id, clinic_id)` over the unsent statuses, for
  `GET /messages?status=scheduled` (and queued, sending): id first, since the planner costs an
  index by its first column's correlation with the table's order; as `(clinic_id, id)` it
  still preferred walking the primary key past every finished row (194 ms at 1 M rows).
- `ix_enrollments_clinic_status_id`: `(clinic_id, status, id)`, for `GET /enrollments?status=`.
- PostgreSQL only: `CREATE EXTENSION IF NOT EXISTS pg_trgm` and `ix_patients_search_trgm`, a
  trigram GIN index of lower(email), lower(first_name) and lower(last_name), for the admin
  outbox's search. pg_trgm is a trusted extension (PostgreSQL 13+): the database's owner, or a
  user with CREATE on the database, can create it without being a superuser; or create it
  beforehand as a superuser.

On a big outbox, create the indexes `CONCURRENTLY` by hand first (same names and definitions),
then upgrade: each CREATE INDEX here blocks writes to its table while it builds.

Revision ID: d7e8f9a0b1c2
Revises: f6a7b8c9d0e1
Create Date: 2026-12-01 19:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "d7e8f9a0b1c2"
down_revision: str | Sequence[str] | None = "f6a7b8c9d0e1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNSENT = "status IN ('scheduled', 'queued', 'sending', 'held')"
TRIGGERS = (
    "messages_sent_count_insert",
    "messages_sent_count_update",
    "messages_sent_count_delete",
)

# ---- PostgreSQL: one function, three statement triggers over the rows a statement changed
# (transition tables): one upsert per clinic and quarter hour a statement touches, not one
# per row; row triggers made the send path's outcome write of 100 rows about twice as long.
# An UPDATE takes away the old rows' counts and adds the new ones', so rows whose sent_at did
# not change cancel out; a claim's rows (never sent) leave both sides empty.

PG_QUARTER = "CAST(floor(extract(epoch from {}) / 900) AS BIGINT)"
PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION dripcare_count_sent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        UPDATE sent_counts SET sent = sent_counts.sent - gone.n
        FROM (
            SELECT {PG_QUARTER.format("sent_at")} AS quarter, clinic_id, count(*) AS n
            FROM old_rows WHERE sent_at IS NOT NULL GROUP BY 1, 2
        ) AS gone
        WHERE sent_counts.quarter = gone.quarter AND sent_counts.clinic_id = gone.clinic_id;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO sent_counts (quarter, clinic_id, sent)
        SELECT {PG_QUARTER.format("sent_at")}, clinic_id, count(*)
        FROM new_rows WHERE sent_at IS NOT NULL GROUP BY 1, 2
        ON CONFLICT (quarter, clinic_id) DO UPDATE SET sent = sent_counts.sent + EXCLUDED.sent;
    END IF;
    RETURN NULL;
END
$$
"""
PG_TRIGGERS = (
    "CREATE TRIGGER messages_sent_count_insert AFTER INSERT ON messages "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION dripcare_count_sent()",
    "CREATE TRIGGER messages_sent_count_update AFTER UPDATE ON messages "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION dripcare_count_sent()",
    "CREATE TRIGGER messages_sent_count_delete AFTER DELETE ON messages "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION dripcare_count_sent()",
)

# ---- SQLite (no statement triggers): three row triggers whose WHEN skips unchanged rows

SQLITE_QUARTER = "(CAST(strftime('%s', {}) AS INTEGER) / 900)"
SQLITE_ADD = f"""
    INSERT INTO sent_counts (clinic_id, quarter, sent)
    SELECT NEW.clinic_id, {SQLITE_QUARTER.format("NEW.sent_at")}, 1 WHERE NEW.sent_at IS NOT NULL
    ON CONFLICT (quarter, clinic_id) DO UPDATE SET sent = sent + 1;"""
SQLITE_REMOVE = f"""
    UPDATE sent_counts SET sent = sent - 1
    WHERE OLD.sent_at IS NOT NULL AND clinic_id = OLD.clinic_id
      AND quarter = {SQLITE_QUARTER.format("OLD.sent_at")};"""
SQLITE_TRIGGERS = (
    "CREATE TRIGGER messages_sent_count_insert AFTER INSERT ON messages "
    f"WHEN NEW.sent_at IS NOT NULL BEGIN {SQLITE_ADD} END",
    "CREATE TRIGGER messages_sent_count_update AFTER UPDATE OF sent_at, clinic_id ON messages "
    "WHEN OLD.sent_at IS NOT NEW.sent_at OR OLD.clinic_id IS NOT NEW.clinic_id "
    f"BEGIN {SQLITE_REMOVE} {SQLITE_ADD} END",
    "CREATE TRIGGER messages_sent_count_delete AFTER DELETE ON messages "
    f"WHEN OLD.sent_at IS NOT NULL BEGIN {SQLITE_REMOVE} END",
)


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "sent_counts",
        sa.Column("quarter", sa.BigInteger(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_sent_counts_clinic_id_clinics")
        ),
        sa.PrimaryKeyConstraint("quarter", "clinic_id", name=op.f("pk_sent_counts")),
    )
    quarter = (PG_QUARTER if postgresql else SQLITE_QUARTER).format("sent_at")
    op.execute(
        f"INSERT INTO sent_counts (clinic_id, quarter, sent) SELECT clinic_id, {quarter}, "
        f"count(*) FROM messages WHERE sent_at IS NOT NULL GROUP BY clinic_id, {quarter}"
    )
    if postgresql:
        op.execute(PG_FUNCTION)
    for statement in PG_TRIGGERS if postgresql else SQLITE_TRIGGERS:
        op.execute(statement)
    _indexes(postgresql)


def _indexes(postgresql: bool) -> None:
    op.create_index(
        "ix_messages_unsent_id_clinic",
        "messages",
        ["id", "clinic_id"],
        postgresql_where=sa.text(UNSENT),
        sqlite_where=sa.text(UNSENT),
    )
    op.create_index("ix_enrollments_clinic_status_id", "enrollments", ["clinic_id", "status", "id"])
    if postgresql:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(
            "CREATE INDEX ix_patients_search_trgm ON patients USING gin ("
            "lower(email) gin_trgm_ops, lower(first_name) gin_trgm_ops, "
            "lower(last_name) gin_trgm_ops)"
        )


def downgrade() -> None:
    """The extension stays: an operator may have created it for this, or for something else."""
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        op.execute("DROP INDEX IF EXISTS ix_patients_search_trgm")
    op.drop_index("ix_enrollments_clinic_status_id", table_name="enrollments")
    op.drop_index("ix_messages_unsent_id_clinic", table_name="messages")
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (" ON messages" if postgresql else ""))
    if postgresql:
        op.execute("DROP FUNCTION IF EXISTS dripcare_count_sent()")
    op.drop_table("sent_counts")
