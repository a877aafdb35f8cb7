"""The Slack outbox, and execution leases on approvals.

`outbox` holds every Slack effect, written in the transaction of the state change that causes it
and delivered by the notifier (commands.webapi.notifier). `approval.lease_until` is how long the replica that
claimed an execution keeps it; once it lapses any replica resumes the execution with the same
Idempotency-Key (`resumes` counts how often that happened).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("stream", sa.String(96), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("next_at", _UTC, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("claimed_by", sa.String(128), nullable=True),
        sa.Column("claimed_until", _UTC, nullable=True),
        sa.Column("done_at", _UTC, nullable=True),
        sa.Column("ts", sa.String(32), nullable=True),
        sa.Column("error", sa.Text(), nullable=False, server_default=""),
    )
    op.create_index("ix_outbox_status_stream", "outbox", ["status", "stream", "id"])
    op.create_index("ix_outbox_stream_kind", "outbox", ["stream", "kind"])
    with op.batch_alter_table("approval") as batch:
        batch.add_column(sa.Column("lease_until", _UTC, nullable=True))
        batch.add_column(sa.Column("claimed_by", sa.String(128), nullable=True))
        batch.add_column(sa.Column("resumes", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("approval") as batch:
        batch.drop_column("resumes")
        batch.drop_column("claimed_by")
        batch.drop_column("lease_until")
    op.drop_index("ix_outbox_stream_kind", table_name="outbox")
    op.drop_index("ix_outbox_status_stream", table_name="outbox")
    op.drop_table("outbox")
