"""Jobs found by their subject: a digest or profile refresh already waiting is not queued twice.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_subject", "jobs", ["tenant_id", "kind", "subject"])


def downgrade() -> None:
    op.drop_index("ix_jobs_subject", table_name="jobs")
