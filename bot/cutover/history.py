"""Read-only store queries behind a stage's entry conditions: when the stage being left began, its latest
hard-trigger alert, which backend version changes were rollbacks, and when each version was first seen."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from bot.cutover.engine import StageEntry
from bot.cutover.entry import DeployFacts, RollbackMark, Soak, real_deploys
from bot.gate.composite import VersionChange
from bot.gate.models import BackendVersionObservation
from bot.gate.store import GateStore
from bot.monitoring.models import MonitoringAlert
from bot.monitoring.store import BREACH, OPEN
from bot.rollback.models import Rollback
from bot.storage.db import as_utc


def first_observed(engine: Engine) -> datetime | None:
    """When the bot first saw the backend: the first stage has no entry row, so its start is this."""
    with Session(engine) as session:
        found = session.exec(select(func.min(BackendVersionObservation.observed_at))).first()
        return as_utc(found) if found else None


def soak_of(engine: Engine, entry: StageEntry | None, now: datetime) -> Soak:
    """The stage being left: when it began, and when its latest hard-trigger alert ended (now if open)."""
    began = entry.entered_at if entry is not None else first_observed(engine)
    if began is None:
        return Soak(None)
    with Session(engine) as session:
        query = select(MonitoringAlert).where(
            MonitoringAlert.kind == BREACH, MonitoringAlert.trigger != "", col(MonitoringAlert.last_seen_at) >= began
        )
        rows = list(session.exec(query))
    if not rows:
        return Soak(began)
    ends = [(now if r.status == OPEN else as_utc(r.cleared_at or r.last_seen_at), r) for r in rows]
    ended, row = max(ends, key=lambda pair: pair[0])
    return Soak(began, ended, f"alert {row.id} ({row.signal_id})")


def rollback_marks(engine: Engine, since: datetime) -> list[RollbackMark]:
    with Session(engine) as session:
        rows = session.exec(select(Rollback).where(col(Rollback.created_at) >= since))
        return [RollbackMark(r.id, r.target, as_utc(r.created_at)) for r in rows]


def first_seen(engine: Engine) -> dict[str, datetime]:
    with Session(engine) as session:
        rows = session.exec(
            select(BackendVersionObservation.version, func.min(BackendVersionObservation.observed_at)).group_by(
                BackendVersionObservation.version
            )
        )
        return {version: as_utc(at) for version, at in rows}


def deploy_facts(engine: Engine, gates: GateStore, since_entry: StageEntry | None) -> DeployFacts:
    """The stability rule's facts: version changes since `since_entry`, of which the real deploys."""
    if since_entry is None:
        return DeployFacts(None)
    changes: list[VersionChange] = gates.changes_since(since_entry.entered_at)
    rollbacks = rollback_marks(engine, since_entry.entered_at)
    deploys = real_deploys(changes, rollbacks, first_seen(engine))
    after = gates.since(deploys[0].observed_at) if deploys else []
    return DeployFacts(since_entry, changes, deploys, rollbacks, after)
