"""Cutover freeze (set by an open rollback).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cutover_freeze",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("frozen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lifted_by", sa.String(32), nullable=True),
    )
    op.create_index("ix_cutover_freeze_owner", "cutover_freeze", ["owner"])


def downgrade() -> None:
    op.drop_table("cutover_freeze")
