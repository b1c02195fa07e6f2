"""Subkeys of retired key-encryption keys, so audit events under them stay verifiable.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retained_subkeys",
        sa.Column("kek_version", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("wrapped_by", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["kek_version"], ["kek_versions.version"]),
        sa.ForeignKeyConstraint(["wrapped_by"], ["kek_versions.version"]),
        sa.PrimaryKeyConstraint("kek_version", "purpose", name="pk_retained_subkeys"),
    )


def downgrade() -> None:
    op.drop_table("retained_subkeys")
