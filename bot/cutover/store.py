"""Persistence of the cutover: one row per stage entered, written at most once per transition."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.audit.log import AuditLog, Entry
from bot.cutover.engine import StageEntry
from bot.gate.models import CutoverState
from bot.storage.db import as_utc, transaction


def entry_of(row: CutoverState) -> StageEntry:
    return StageEntry(row.seq, row.stage_id, as_utc(row.entered_at), row.version, row.requested_by, row.approved_by)


@dataclass(frozen=True)
class Transition:
    """A stage change as the approver's click asks for it."""

    from_stage: str
    to_stage: str
    at: datetime
    version: str | None
    reason: str
    requested_by: str
    approved_by: str
    approval_id: str
    gate_id: str | None
    evidence: str  # JSON: the left stage's checklist as it stood


class CutoverStore:
    def __init__(self, engine: Engine, audit: AuditLog) -> None:
        self._engine = engine
        self._audit = audit

    def current(self) -> StageEntry | None:
        """The stage entered last; None while the cutover is still in its first stage."""
        with Session(self._engine, expire_on_commit=False) as session:
            row = session.exec(select(CutoverState).order_by(col(CutoverState.seq).desc()).limit(1)).first()
            return entry_of(row) if row else None

    def entered(self, stage_id: str) -> StageEntry | None:
        """When `stage_id` was (last) entered."""
        with Session(self._engine, expire_on_commit=False) as session:
            query = select(CutoverState).where(CutoverState.stage_id == stage_id)
            row = session.exec(query.order_by(col(CutoverState.seq).desc()).limit(1)).first()
            return entry_of(row) if row else None

    def history(self) -> list[CutoverState]:
        with Session(self._engine, expire_on_commit=False) as session:
            return list(session.exec(select(CutoverState).order_by(col(CutoverState.seq))))

    def enter(self, change: Transition, *, first_stage: str, entry: Entry) -> StageEntry | None:
        """Apply `change` if the cutover still stands at `change.from_stage`; None when it does not
        (already moved by someone else, or a concurrent writer won the same sequence number)."""
        try:
            with transaction(self._engine) as session:
                last = session.exec(select(CutoverState).order_by(col(CutoverState.seq).desc()).limit(1)).first()
                if (last.stage_id if last else first_stage) != change.from_stage:
                    return None
                row = CutoverState(
                    seq=(last.seq + 1) if last else 1,
                    stage_id=change.to_stage,
                    from_stage=change.from_stage,
                    entered_at=change.at,
                    version=change.version,
                    reason=change.reason,
                    requested_by=change.requested_by,
                    approved_by=change.approved_by,
                    approval_id=change.approval_id,
                    gate_id=change.gate_id,
                    evidence=change.evidence,
                )
                session.add(row)
                session.flush()
                self._audit.append(session, entry)
                return entry_of(row)
        except IntegrityError:
            return None
