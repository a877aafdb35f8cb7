"""Signed Slack requests already taken, so a replay within Slack's 5-minute window is ignored on
every replica: `slack_request_seen.key` is sha256 of the request's timestamp and signature.

Revision ID: 0009
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slack_request_seen",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replays", sa.Integer(), nullable=False),
    )
    op.create_index("ix_slack_request_seen_seen_at", "slack_request_seen", ["seen_at"])


def downgrade() -> None:
    op.drop_table("slack_request_seen")
