"""Sessions and their messages (the episodic record).

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from service.storage.sql.types import BigSerial, JsonDoc, UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("agent_id", sa.String(128), nullable=True),
        sa.Column("metadata", JsonDoc, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_sessions_tenant_created", "sessions", ["tenant_id", "created_at", "id"])
    op.create_index("ix_sessions_tenant_user_created", "sessions", ["tenant_id", "user_id", "created_at", "id"])
    op.create_table(
        "messages",
        sa.Column("seq", BigSerial, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("session_id", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("name", sa.String(128), nullable=True),
        sa.Column("metadata", JsonDoc, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("token_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "session_id"], ["sessions.tenant_id", "sessions.id"], ondelete="CASCADE"
        ),
    )
    op.create_index("ix_messages_session_created", "messages", ["tenant_id", "session_id", "created_at", "seq"])


def downgrade() -> None:
    op.drop_index("ix_messages_session_created", table_name="messages")
    op.drop_table("messages")
    op.drop_index("ix_sessions_tenant_user_created", table_name="sessions")
    op.drop_index("ix_sessions_tenant_created", table_name="sessions")
    op.drop_table("sessions")
