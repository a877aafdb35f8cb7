"""Post-cutover monitoring: windows, alerts, watcher runs, the leadership fence, App Home viewers.

`monitoring_alert.active` is "<kind>:<signal>" while an alert is open and NULL once it closed; its
unique constraint is what lets exactly one alert be claimed per breach, across processes.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "monitoring_window",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("cutover_seq", sa.BigInteger(), nullable=False, unique=True),
        sa.Column("from_stage", sa.String(64), nullable=False),
        sa.Column("stage_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("opened_at", _UTC, nullable=False),
        sa.Column("immediate_until", _UTC, nullable=False),
        sa.Column("ends_at", _UTC, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("immediate_summary_at", _UTC, nullable=True),
        sa.Column("closed_at", _UTC, nullable=True),
        sa.Column("stats", sa.Text(), nullable=False),
    )
    op.create_index("ix_monitoring_window_status", "monitoring_window", ["status"])
    op.create_table(
        "monitoring_alert",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("window_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("signal_id", sa.String(64), nullable=False),
        sa.Column("active", sa.String(96), nullable=True, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("comparison", sa.String(2), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("peak", sa.Float(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("since", _UTC, nullable=False),
        sa.Column("raised_at", _UTC, nullable=False),
        sa.Column("last_seen_at", _UTC, nullable=False),
        sa.Column("cleared_at", _UTC, nullable=True),
        sa.Column("ok_count", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("message_ts", sa.String(32), nullable=True),
        sa.Column("chart_file_id", sa.String(64), nullable=True),
    )
    op.create_index("ix_monitoring_alert_window_id", "monitoring_alert", ["window_id"])
    op.create_table(
        "watcher_run",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("replica", sa.String(128), nullable=False),
        sa.Column("term", sa.BigInteger(), nullable=False),
        sa.Column("started_at", _UTC, nullable=False),
        sa.Column("finished_at", _UTC, nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
    )
    op.create_index("ix_watcher_run_started_at", "watcher_run", ["started_at"])
    op.create_table(
        "monitoring_leader",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("term", sa.BigInteger(), nullable=False),
        sa.Column("replica", sa.String(128), nullable=False),
        sa.Column("acquired_at", _UTC, nullable=False),
        sa.Column("heartbeat_at", _UTC, nullable=False),
    )
    op.create_table(
        "home_viewer",
        sa.Column("user_id", sa.String(32), primary_key=True),
        sa.Column("opened_at", _UTC, nullable=False),
    )


def downgrade() -> None:
    for table in ("home_viewer", "monitoring_leader", "watcher_run", "monitoring_alert", "monitoring_window"):
        op.drop_table(table)
