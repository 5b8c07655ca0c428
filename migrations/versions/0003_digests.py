"""Session digests (rolling summary and condensation marks) and the keyword index.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from service.storage.sql.types import UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_MARKS = ("summarized", "condensed", "extracted")


def upgrade() -> None:
    mark_columns = []
    for mark in _MARKS:
        mark_columns += [
            sa.Column(f"{mark}_count", sa.Integer(), nullable=False),
            sa.Column(f"{mark}_at", UtcDateTime(), nullable=True),
            sa.Column(f"{mark}_seq", sa.BigInteger(), nullable=True),
        ]
    op.create_table(
        "session_digests",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("session_id", sa.String(128), primary_key=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("summary_tokens", sa.Integer(), nullable=False),
        sa.Column("summary_at", UtcDateTime(), nullable=True),
        *mark_columns,
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "session_id"], ["sessions.tenant_id", "sessions.id"], ondelete="CASCADE"
        ),
    )
    op.create_table(
        "memory_terms",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("term", sa.String(64), primary_key=True),
        sa.Column("memory_id", sa.String(36), primary_key=True),
    )
    op.create_index("ix_memory_terms_memory", "memory_terms", ["tenant_id", "memory_id"])


def downgrade() -> None:
    op.drop_index("ix_memory_terms_memory", table_name="memory_terms")
    op.drop_table("memory_terms")
    op.drop_table("session_digests")
