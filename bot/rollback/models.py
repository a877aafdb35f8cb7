"""The `rollback` table (migration 0004): one row per approved rollback and its steps' states."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, DateTime, String, Text
from sqlmodel import Field, SQLModel

ACTIVE = "running"  # the value of `active` while a rollback runs; unique, so only one can


class RollbackStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"  # every step done; closed, freeze lifted
    FAILED = "failed"  # stopped at `failed_step`; open (freeze kept) until a later rollback completes


def _utc(*, nullable: bool = False, index: bool = False) -> Column[datetime]:
    return Column(DateTime(timezone=True), nullable=nullable, index=index)


class Rollback(SQLModel, table=True):
    __tablename__ = "rollback"

    id: str = Field(primary_key=True, max_length=32)
    approval_id: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    active: str | None = Field(default=None, sa_column=Column(String(16), nullable=True, unique=True))
    status: str = Field(max_length=16)
    request_id: str = Field(max_length=64)  # the /rollback command's
    run_request_id: str = Field(max_length=64)  # the approving click's: x-request-id and the workflow input
    requester: str = Field(max_length=32)
    approver: str = Field(max_length=32)
    channel: str = Field(max_length=32)
    trigger: str = Field(default="", max_length=16)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    deployed: str = Field(max_length=64)
    target: str = Field(max_length=64)
    release_started_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    steps: str = Field(sa_column=Column(Text, nullable=False))  # JSON list, see bot.rollback.steps
    progress_ts: str | None = Field(default=None, max_length=32)
    run_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    run_url: str | None = Field(default=None, max_length=300)
    bundle_path: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    bundle_sha256: str | None = Field(default=None, max_length=64)
    failed_step: str = Field(default="", max_length=32)
    failure: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    next_action: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = Field(sa_column=_utc(index=True))
    updated_at: datetime = Field(sa_column=_utc())
    finished_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    closed_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    closed_by: str | None = Field(default=None, max_length=32)  # the rollback whose completion closed it


class IncidentBundle(SQLModel, table=True):
    """A rollback's evidence bundle (migration 0008), kept in the store so it outlives the bot's disk."""

    __tablename__ = "incident_bundle"

    rollback_id: str = Field(primary_key=True, max_length=32)
    created_at: datetime = Field(sa_column=_utc())
    sha256: str = Field(max_length=64)
    lines: int
    content: str = Field(sa_column=Column(Text, nullable=False))
