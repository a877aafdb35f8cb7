"""Rollbacks: one row per approved rollback, with each runbook step's state.

`active` is "running" while the rollback runs and NULL otherwise; its unique constraint is what
keeps a second rollback from starting while one runs, across threads and replicas.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "rollback",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("approval_id", sa.String(64), nullable=False, unique=True),
        sa.Column("active", sa.String(16), nullable=True, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("run_request_id", sa.String(64), nullable=False),
        sa.Column("requester", sa.String(32), nullable=False),
        sa.Column("approver", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("deployed", sa.String(64), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("release_started_at", _UTC, nullable=True),
        sa.Column("steps", sa.Text(), nullable=False),
        sa.Column("progress_ts", sa.String(32), nullable=True),
        sa.Column("run_id", sa.BigInteger(), nullable=True),
        sa.Column("run_url", sa.String(300), nullable=True),
        sa.Column("bundle_path", sa.Text(), nullable=True),
        sa.Column("bundle_sha256", sa.String(64), nullable=True),
        sa.Column("failed_step", sa.String(32), nullable=False),
        sa.Column("failure", sa.Text(), nullable=False),
        sa.Column("next_action", sa.Text(), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("updated_at", _UTC, nullable=False),
        sa.Column("finished_at", _UTC, nullable=True),
        sa.Column("closed_at", _UTC, nullable=True),
        sa.Column("closed_by", sa.String(32), nullable=True),
    )
    op.create_index("ix_rollback_created_at", "rollback", ["created_at"])


def downgrade() -> None:
    op.drop_table("rollback")
