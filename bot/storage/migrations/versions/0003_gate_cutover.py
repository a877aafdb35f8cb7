"""Release gate evaluations, attestations, cutover state and observed backend versions.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "gate_evaluation",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("started_at", _UTC, nullable=False),
        sa.Column("finished_at", _UTC, nullable=False),
        sa.Column("version", sa.String(64), nullable=True),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("message_ts", sa.String(32), nullable=True),
        sa.Column("deadline_s", sa.Float(), nullable=False),
        sa.Column("results", sa.Text(), nullable=False),
    )
    op.create_index("ix_gate_evaluation_started_at", "gate_evaluation", ["started_at"])
    op.create_index("ix_gate_evaluation_version", "gate_evaluation", ["version"])
    op.create_table(
        "attestation",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("check_id", sa.String(64), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("attested_by", sa.String(32), nullable=False),
        sa.Column("attested_at", _UTC, nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
    )
    op.create_index("ix_attestation_version_check", "attestation", ["version", "check_id"])
    op.create_table(
        "cutover_state",
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("stage_id", sa.String(64), nullable=False),
        sa.Column("from_stage", sa.String(64), nullable=True),
        sa.Column("entered_at", _UTC, nullable=False),
        sa.Column("version", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.String(32), nullable=False),
        sa.Column("approved_by", sa.String(32), nullable=False),
        sa.Column("approval_id", sa.String(64), nullable=True, unique=True),
        sa.Column("gate_id", sa.String(32), nullable=True),
        sa.Column("evidence", sa.Text(), nullable=False),
    )
    op.create_table(
        "backend_version_observation",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("previous_version", sa.String(64), nullable=True),
        sa.Column("observed_at", _UTC, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
    )
    op.create_index("ix_backend_version_observation_observed_at", "backend_version_observation", ["observed_at"])


def downgrade() -> None:
    op.drop_table("backend_version_observation")
    op.drop_table("cutover_state")
    op.drop_table("attestation")
    op.drop_table("gate_evaluation")
