"""Monitoring alerts that stay honest and live; incident bundles kept in the store.

`monitoring_alert.not_fixed_by`: the completed rollback after which the breach was still open (posted
once). `monitoring_alert.edited_at`: when the alert's card was last brought up to date (at most one edit a
minute). `incident_bundle`: the evidence bundle of each rollback, completed or failed, as JSONL.

Revision ID: 0008
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("monitoring_alert") as batch:
        batch.add_column(sa.Column("not_fixed_by", sa.String(32), nullable=True))
        batch.add_column(sa.Column("edited_at", _UTC, nullable=True))
    op.create_table(
        "incident_bundle",
        sa.Column("rollback_id", sa.String(32), primary_key=True),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("incident_bundle")
    with op.batch_alter_table("monitoring_alert") as batch:
        batch.drop_column("edited_at")
        batch.drop_column("not_fixed_by")
