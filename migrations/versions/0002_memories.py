"""Long-term memories, their version history, and the job outbox.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from service.storage.sql.types import BigSerial, JsonDoc, UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "memories",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("session_id", sa.String(128), nullable=True),
        sa.Column("agent_id", sa.String(128), nullable=True),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("modality", sa.String(8), nullable=False),
        sa.Column("media_url", sa.String(2048), nullable=True),
        sa.Column("importance", sa.Float(), nullable=False),
        sa.Column("topic", sa.String(128), nullable=True),
        sa.Column("keywords", JsonDoc, nullable=False),
        sa.Column("metadata", JsonDoc, nullable=False),
        sa.Column("speaker", sa.String(128), nullable=True),
        sa.Column("event_time", UtcDateTime(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=True),
        sa.Column("source_ids", JsonDoc, nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_memories_user_created", "memories", ["tenant_id", "user_id", "created_at", "id"])
    op.create_index("ix_memories_dedup", "memories", ["tenant_id", "user_id", "type", "content_hash"])
    op.create_index("ix_memories_session", "memories", ["tenant_id", "session_id", "position"])
    op.create_index("ix_memories_speakers", "memories", ["tenant_id", "user_id", "speaker"])
    op.create_index("ix_memories_expires", "memories", ["expires_at"])
    op.create_table(
        "memory_versions",
        sa.Column("id", BigSerial, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("memory_id", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("op", sa.String(16), nullable=False),
        sa.Column("changes", JsonDoc, nullable=False),
        sa.Column("snapshot", JsonDoc, nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_memory_versions_memory", "memory_versions", ["tenant_id", "memory_id", "version"])
    op.create_table(
        "jobs",
        sa.Column("id", BigSerial, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("available_at", UtcDateTime(), nullable=False),
        sa.Column("locked_until", UtcDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_jobs_ready", "jobs", ["status", "available_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_jobs_ready", table_name="jobs")
    op.drop_table("jobs")
    op.drop_index("ix_memory_versions_memory", table_name="memory_versions")
    op.drop_table("memory_versions")
    for name in ("ix_memories_expires", "ix_memories_speakers", "ix_memories_session", "ix_memories_dedup", "ix_memories_user_created"):
        op.drop_index(name, table_name="memories")
    op.drop_table("memories")
