"""The audit chain table: append-only, with JSON expression indexes for queries.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Query filters read fields out of the authenticated body. Every index here is one more B-tree
# page in each audit commit (measured: five JSON indexes added ~45 µs to a ~150 µs durable
# commit), so only the two questions operators ask most are indexed: who touched credential X
# (resource_id) and what did actor Y do (actor, below). Other filters scan.
_INDEXED = ("resource_id",)


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("prev_hash", sa.LargeBinary(), nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        for field in _INDEXED:
            op.execute(
                f"CREATE INDEX ix_audit_{field} ON audit_events (((body::jsonb) ->> '{field}'))"
            )
        op.execute(
            "CREATE INDEX ix_audit_actor ON audit_events ((((body::jsonb) -> 'actor') ->> 'id'))"
        )
        # Append-only at the database level. An owner can still drop these triggers; the keyed
        # hash chain is what proves tampering.
        op.execute(
            """
            CREATE FUNCTION flowcred_audit_append_only() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'audit_events is append-only';
            END
            $$
            """
        )
        op.execute(
            "CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION flowcred_audit_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION flowcred_audit_append_only()"
        )
    else:
        for field in _INDEXED:
            op.execute(
                f"CREATE INDEX ix_audit_{field} ON audit_events (json_extract(body, '$.{field}'))"
            )
        op.execute("CREATE INDEX ix_audit_actor ON audit_events (json_extract(body, '$.actor.id'))")
        op.execute(
            "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
            "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
        )
        op.execute(
            "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
            "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events")
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_change ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS flowcred_audit_append_only()")
    op.drop_table("audit_events")
