"""User profiles, knowledge documents and their chunks; memory versions name their user.

A user is whoever has a session, memory, document or profile in a tenant (no table of its own).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from service.storage.sql.types import JsonDoc, UtcDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Versions name their user, so erasing a user also finds the history of memories deleted earlier.
    op.add_column("memory_versions", sa.Column("user_id", sa.String(128), nullable=True))
    user_of_snapshot = (
        "snapshot ->> 'user_id'" if op.get_bind().dialect.name == "postgresql" else "json_extract(snapshot, '$.user_id')"
    )
    op.execute(f"UPDATE memory_versions SET user_id = {user_of_snapshot}")
    op.create_index("ix_memory_versions_user", "memory_versions", ["tenant_id", "user_id"])
    op.create_table(
        "user_profiles",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("fields", JsonDoc, nullable=False),
        sa.Column("facts", JsonDoc, nullable=False),
        sa.Column("topics", JsonDoc, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("derived_at", UtcDateTime(), nullable=True),
    )
    op.create_table(
        "documents",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("user_id", sa.String(128), nullable=True),
        sa.Column("namespace", sa.String(128), nullable=True),
        sa.Column("title", sa.String(512), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("metadata", JsonDoc, nullable=False),
        sa.Column("chunk_tokens", sa.Integer(), nullable=False),
        sa.Column("overlap_tokens", sa.Integer(), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_documents_user_created", "documents", ["tenant_id", "user_id", "created_at", "id"])
    op.create_index("ix_documents_namespace_created", "documents", ["tenant_id", "namespace", "created_at", "id"])
    op.create_table(
        "document_chunks",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("document_id", sa.String(36), nullable=False),
        sa.Column("chunk_index", sa.Integer(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("start_char", sa.Integer(), nullable=False),
        sa.Column("heading", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "document_id"], ["documents.tenant_id", "documents.id"], ondelete="CASCADE"
        ),
    )
    op.create_index(
        "ix_document_chunks_document", "document_chunks", ["tenant_id", "document_id", "chunk_index"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_document_chunks_document", table_name="document_chunks")
    op.drop_table("document_chunks")
    op.drop_index("ix_documents_namespace_created", table_name="documents")
    op.drop_index("ix_documents_user_created", table_name="documents")
    op.drop_table("documents")
    op.drop_table("user_profiles")
    op.drop_index("ix_memory_versions_user", table_name="memory_versions")
    op.drop_column("memory_versions", "user_id")
