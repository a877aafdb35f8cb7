"""Tables of /gate and /cutover (migration 0003). Kept apart from bot.storage.models so features do not collide."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, Index, Text
from sqlmodel import Field, SQLModel


def _utc(*, nullable: bool = False, index: bool = False) -> Column[datetime]:
    return Column(DateTime(timezone=True), nullable=nullable, index=index)


class GateEvaluation(SQLModel, table=True):
    """One `/gate` run: the verdict and every check's result (JSON list), for one backend version."""

    __tablename__ = "gate_evaluation"

    id: str = Field(primary_key=True, max_length=32)
    started_at: datetime = Field(sa_column=_utc(index=True))
    finished_at: datetime = Field(sa_column=_utc())
    version: str | None = Field(default=None, max_length=64, index=True)  # None: the backend did not say
    verdict: str = Field(max_length=16)  # "go" | "no_go"
    requested_by: str = Field(max_length=32)
    channel: str = Field(default="", max_length=32)
    request_id: str = Field(max_length=64)
    message_ts: str | None = Field(default=None, max_length=32)
    deadline_s: float
    results: str = Field(sa_column=Column(Text, nullable=False))  # JSON: [{item, section, probe, verdict, …}]


class Attestation(SQLModel, table=True):
    """A person's word for a manual check, valid for one backend version only."""

    __tablename__ = "attestation"
    __table_args__ = (Index("ix_attestation_version_check", "version", "check_id"),)

    id: int | None = Field(default=None, primary_key=True)
    check_id: str = Field(max_length=64)
    version: str = Field(max_length=64)
    evidence: str = Field(sa_column=Column(Text, nullable=False))
    attested_by: str = Field(max_length=32)
    attested_at: datetime = Field(sa_column=_utc())
    request_id: str = Field(default="", max_length=64)
    channel: str = Field(default="", max_length=32)


class CutoverState(SQLModel, table=True):
    """One row per stage entered. `seq` is assigned as previous + 1 and is the primary key, so two
    concurrent advances from the same state cannot both commit (the second insert conflicts)."""

    __tablename__ = "cutover_state"

    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    stage_id: str = Field(max_length=64)
    from_stage: str | None = Field(default=None, max_length=64)
    entered_at: datetime = Field(sa_column=_utc())
    version: str | None = Field(default=None, max_length=64)  # backend version when the stage began
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    requested_by: str = Field(default="", max_length=32)
    approved_by: str = Field(default="", max_length=32)
    approval_id: str | None = Field(default=None, max_length=64, unique=True)
    gate_id: str | None = Field(default=None, max_length=32)
    evidence: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))  # JSON checklist


class BackendVersionObservation(SQLModel, table=True):
    """A backend version the bot saw in `GET /api/health`; a row is written only when it changed."""

    __tablename__ = "backend_version_observation"

    id: int | None = Field(default=None, primary_key=True)
    version: str = Field(max_length=64)
    previous_version: str | None = Field(default=None, max_length=64)  # None: the first one ever seen
    observed_at: datetime = Field(sa_column=_utc(index=True))
    source: str = Field(default="", max_length=32)  # "gate", "cutover status", …
