"""Tables of the store. Timestamps are timezone-aware UTC; ids shown to Slack are opaque."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, Index, Text
from sqlmodel import Field, SQLModel


def _utc_column(*, nullable: bool = False, index: bool = False) -> Column[datetime]:
    return Column(DateTime(timezone=True), nullable=nullable, index=index)


class AuditEvent(SQLModel, table=True):
    """One step of one action; append-only and hash-chained (see bot.audit.log)."""

    __tablename__ = "audit_event"

    # Assigned under the chain lock, not by a sequence, so it is gap-free and part of the hash.
    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    at: datetime = Field(sa_column=_utc_column(index=True))
    team_id: str = Field(default="", max_length=32)
    user_id: str = Field(default="", max_length=32)
    action: str = Field(max_length=64)
    params: str = Field(sa_column=Column(Text, nullable=False))
    params_hash: str = Field(max_length=64)
    outcome: str = Field(max_length=32)
    detail: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    request_id: str = Field(default="", max_length=64)
    approval_id: str = Field(default="", max_length=64, index=True)
    channel: str = Field(default="", max_length=32)
    replica: str = Field(default="", max_length=128)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class Approval(SQLModel, table=True):
    """A two-person request. `status` only moves through conditional UPDATEs (bot.approvals.store)."""

    __tablename__ = "approval"
    __table_args__ = (Index("ix_approval_status_expires", "status", "expires_at"),)

    id: str = Field(primary_key=True, max_length=64)
    action: str = Field(max_length=32)
    params: str = Field(sa_column=Column(Text, nullable=False))
    params_hash: str = Field(max_length=64)
    team_id: str = Field(default="", max_length=32)
    requester: str = Field(max_length=32)
    approve_role: str = Field(max_length=32)
    channel: str = Field(max_length=32)
    message_ts: str | None = Field(default=None, max_length=32)
    status: str = Field(max_length=32)
    request_id: str = Field(max_length=64)
    break_glass: bool = Field(default=False)
    created_at: datetime = Field(sa_column=_utc_column())
    expires_at: datetime = Field(sa_column=_utc_column())
    decided_by: str | None = Field(default=None, max_length=32)
    decided_at: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True))
    finished_at: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True))
    # Executions that may have reached the backend: a claim counts one, undone when its outcome proves
    # nothing took effect (back to pending after a refused connection, say).
    attempts: int = Field(default=0)
    outcome: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    # The claimant's hold on an execution: once it lapses, any replica resumes it (same Idempotency-Key).
    lease_until: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True))
    claimed_by: str | None = Field(default=None, max_length=128)
    resumes: int = Field(default=0)


class Freeze(SQLModel, table=True):
    """A cutover freeze; open while `lifted_at` is NULL."""

    __tablename__ = "cutover_freeze"

    id: int | None = Field(default=None, primary_key=True)
    reason: str = Field(max_length=500)
    owner: str = Field(max_length=64, index=True)  # e.g. the rollback id that froze it
    frozen_at: datetime = Field(sa_column=_utc_column())
    lifted_at: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True))
    lifted_by: str | None = Field(default=None, max_length=32)


class AuditCheckpoint(SQLModel, table=True):
    """A signed statement of the audit chain's head (bot.audit.checkpoint); append-only like the chain."""

    __tablename__ = "audit_checkpoint"

    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    replica: str = Field(primary_key=True, max_length=128)
    hash: str = Field(max_length=64)
    at: datetime = Field(sa_column=_utc_column())
    key_id: str = Field(max_length=64)
    signature: str = Field(max_length=128)


class OutboxRow(SQLModel, table=True):
    """One Slack effect waiting for (or done with) delivery; see bot.approvals.outbox."""

    __tablename__ = "outbox"

    id: int | None = Field(default=None, primary_key=True)
    stream: str = Field(max_length=96)  # one message and its thread: delivered in id order
    kind: str = Field(max_length=16)  # post | update | reply | respond
    channel: str = Field(max_length=32)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(max_length=16)  # pending | delivered | superseded | given_up
    created_at: datetime = Field(sa_column=_utc_column())
    next_at: datetime = Field(sa_column=_utc_column())
    attempts: int = Field(default=0)
    claimed_by: str | None = Field(default=None, max_length=128)
    claimed_until: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True))
    done_at: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True))
    ts: str | None = Field(default=None, max_length=32)
    error: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class SeenRequest(SQLModel, table=True):
    """A signed Slack request already taken (bot.audit.replays): its key is a hash of timestamp and signature,
    so a replay of it, on any replica, hits the primary key."""

    __tablename__ = "slack_request_seen"

    key: str = Field(primary_key=True, max_length=64)
    seen_at: datetime = Field(sa_column=_utc_column(index=True))
    replays: int = Field(default=0)
