"""Tables of post-cutover monitoring (migration 0005). Timestamps are timezone-aware UTC."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, Text
from sqlmodel import Field, SQLModel


def _utc(*, nullable: bool = False) -> Column[datetime]:
    return Column(DateTime(timezone=True), nullable=nullable)


class MonitoringWindow(SQLModel, table=True):
    """The watch after one cutover transition: the immediate phase, then the first 24 hours."""

    __tablename__ = "monitoring_window"

    id: int | None = Field(default=None, primary_key=True)
    cutover_seq: int = Field(unique=True)  # the cutover_state row it follows: one window per transition
    from_stage: str = Field(max_length=64)
    stage_id: str = Field(max_length=64)
    channel: str = Field(max_length=32)  # where it is announced and summarised
    request_id: str = Field(max_length=64)
    opened_at: datetime = Field(sa_column=_utc())
    immediate_until: datetime = Field(sa_column=_utc())
    ends_at: datetime = Field(sa_column=_utc())
    status: str = Field(max_length=16, index=True)  # open, closed, superseded
    immediate_summary_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    closed_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    stats: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))  # JSON per signal


class MonitoringAlert(SQLModel, table=True):
    """One breach of one signal (kind `breach`), or one "monitoring degraded" spell (kind `degraded`).

    `active` holds "<kind>:<signal>" while open and NULL once closed; its unique constraint keeps a
    second alert for the same breach from being claimed, whichever process tries."""

    __tablename__ = "monitoring_alert"

    id: str = Field(primary_key=True, max_length=32)
    window_id: int | None = Field(default=None, index=True)
    kind: str = Field(max_length=16)
    signal_id: str = Field(default="", max_length=64)
    active: str | None = Field(default=None, max_length=96, unique=True)
    status: str = Field(max_length=16)  # open, cleared, closed (the window ended while it was open)
    trigger: str = Field(default="", max_length=16)
    threshold: float = 0.0
    comparison: str = Field(default=">", max_length=2)
    value: float | None = None
    peak: float | None = None
    detail: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    since: datetime = Field(sa_column=_utc())
    raised_at: datetime = Field(sa_column=_utc())
    last_seen_at: datetime = Field(sa_column=_utc())
    cleared_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    ok_count: int = 0
    channel: str = Field(default="", max_length=32)
    message_ts: str | None = Field(default=None, max_length=32)
    chart_file_id: str | None = Field(default=None, max_length=64)
    not_fixed_by: str | None = Field(default=None, max_length=32)  # migration 0008: the rollback it outlived
    edited_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))  # last card refresh


class WatcherRun(SQLModel, table=True):
    """One watcher pass by the leader: the record that shows two never ran at once."""

    __tablename__ = "watcher_run"

    id: int | None = Field(default=None, primary_key=True)
    replica: str = Field(max_length=128)
    term: int
    started_at: datetime = Field(sa_column=_utc())
    finished_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    outcome: str = Field(default="running", max_length=16)
    detail: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class MonitoringLeader(SQLModel, table=True):
    """The single leadership row: `term` grows by one each time a process becomes leader (a fence)."""

    __tablename__ = "monitoring_leader"

    id: int = Field(default=1, primary_key=True)
    term: int
    replica: str = Field(max_length=128)
    acquired_at: datetime = Field(sa_column=_utc())
    heartbeat_at: datetime = Field(sa_column=_utc())


class HomeViewer(SQLModel, table=True):
    """Who opened the App Home and when: their home is re-published after each action."""

    __tablename__ = "home_viewer"

    user_id: str = Field(primary_key=True, max_length=32)
    opened_at: datetime = Field(sa_column=_utc())
