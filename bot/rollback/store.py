"""Persistence of rollbacks. Starting one is an INSERT whose unique `active` slot lets only one run
at a time (any number of threads or replicas); each change that matters is audited in the same
transaction; updates of a running rollback are conditional on it still running."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.audit.log import SYSTEM, Actor, AuditLog, Entry
from bot.rollback.models import ACTIVE, Rollback, RollbackStatus
from bot.rollback.steps import current_step, not_run
from bot.storage.db import transaction


def new_rollback_id() -> str:
    return "rb-" + secrets.token_hex(6)


def freeze_owner(rollback_id: str) -> str:
    return f"rollback:{rollback_id}"


class RollbackStore:
    def __init__(self, engine: Engine, audit: AuditLog) -> None:
        self._engine = engine
        self._audit = audit

    def start(self, row: Rollback, actor: Actor) -> bool:
        """Insert a running rollback; False when another one runs (or this approval already started one)."""
        row.active, row.status = ACTIVE, RollbackStatus.RUNNING.value
        try:
            with transaction(self._engine) as session:
                session.add(row)
                session.flush()
                self._audit.append(
                    session,
                    self._entry(
                        row,
                        actor,
                        "rollback.started",
                        "accepted",
                        {"trigger": row.trigger, "deployed": row.deployed, "target": row.target},
                    ),
                )
        except IntegrityError:
            return False
        return True

    def get(self, rollback_id: str) -> Rollback | None:
        with Session(self._engine, expire_on_commit=False) as session:
            return session.get(Rollback, rollback_id)

    def running(self) -> Rollback | None:
        with Session(self._engine, expire_on_commit=False) as session:
            return session.exec(select(Rollback).where(col(Rollback.active).is_not(None))).first()

    def latest(self) -> Rollback | None:
        with Session(self._engine, expire_on_commit=False) as session:
            return session.exec(select(Rollback).order_by(col(Rollback.created_at).desc()).limit(1)).first()

    def recent(self, limit: int = 50) -> list[Rollback]:
        """The newest rollbacks, newest first."""
        with Session(self._engine, expire_on_commit=False) as session:
            return list(session.exec(select(Rollback).order_by(col(Rollback.created_at).desc()).limit(limit)))

    def last_completed(self) -> Rollback | None:
        """The rollback that completed (and closed) last."""
        with Session(self._engine, expire_on_commit=False) as session:
            query = select(Rollback).where(Rollback.status == RollbackStatus.COMPLETED.value)
            return session.exec(query.order_by(col(Rollback.closed_at).desc()).limit(1)).first()

    def open_failed(self) -> list[Rollback]:
        """Failed rollbacks not yet closed: their freezes are still held."""
        with Session(self._engine, expire_on_commit=False) as session:
            query = select(Rollback).where(
                Rollback.status == RollbackStatus.FAILED.value, col(Rollback.closed_at).is_(None)
            )
            return list(session.exec(query.order_by(col(Rollback.created_at))))

    def save(self, rollback_id: str, *, now: datetime, **values: Any) -> bool:
        """Update a running rollback's fields (steps, run, progress message); False if it is no longer running."""
        with transaction(self._engine) as session:
            stmt = update(Rollback).where(
                col(Rollback.id) == rollback_id, col(Rollback.status) == RollbackStatus.RUNNING.value
            )
            result = session.execute(stmt.values(updated_at=now, **values))
            return int(getattr(result, "rowcount", 0)) == 1

    def attach_progress(self, rollback_id: str, ts: str) -> None:
        """The progress message's ts, once the notifier posted it (whatever state the rollback is in by then)."""
        with transaction(self._engine) as session:
            session.execute(update(Rollback).where(col(Rollback.id) == rollback_id).values(progress_ts=ts))

    def record(self, row: Rollback, action: str, outcome: str, params: dict[str, Any], detail: str = "") -> None:
        self._audit.record(self._entry(row, SYSTEM, action, outcome, params, detail))

    def fail(
        self, row: Rollback, *, step: str, failure: str, next_action: str, steps: str, now: datetime, detail: str = ""
    ) -> bool:
        """Stop a running rollback at `step`; it stays open (its freeze is kept)."""
        values = {
            "status": RollbackStatus.FAILED.value,
            "active": None,
            "failed_step": step,
            "failure": failure,
            "next_action": next_action,
            "steps": steps,
            "finished_at": now,
            "updated_at": now,
        }
        return self._finish(row, values, "rollback.failed", "failed", {"step": step}, detail or failure)

    def complete(self, row: Rollback, *, steps: str, now: datetime) -> list[str]:
        """Close a finished rollback and every earlier failed one; returns the ids it closed (empty: lost)."""
        values = {
            "status": RollbackStatus.COMPLETED.value,
            "active": None,
            "steps": steps,
            "finished_at": now,
            "updated_at": now,
            "closed_at": now,
            "closed_by": row.id,
        }
        superseded = [r.id for r in self.open_failed()]
        with transaction(self._engine) as session:
            if not self._conditional(session, row.id, values):
                return []
            if superseded:
                session.execute(
                    update(Rollback)
                    .where(col(Rollback.id).in_(superseded), col(Rollback.closed_at).is_(None))
                    .values(closed_at=now, closed_by=row.id)
                )
            self._audit.append(
                session, self._entry(row, SYSTEM, "rollback.closed", "applied", {"superseded": superseded})
            )
        return [row.id, *superseded]

    def reap(self, *, now: datetime, older_than: timedelta) -> list[Rollback]:
        """Running rollbacks that outlived every bound (the process running them stopped): mark them failed."""
        with Session(self._engine, expire_on_commit=False) as session:
            query = select(Rollback).where(
                col(Rollback.active).is_not(None), col(Rollback.created_at) < now - older_than
            )
            stale = list(session.exec(query))
        reaped = []
        for row in stale:
            why = "interrupted: the bot stopped while this rollback ran, so its last step never finished"
            nxt = (
                "check the workflow run in GitHub Actions and `GET /api/health` by hand; then request "
                "`/rollback` again if the deployment is not reverted"
            )
            if self.fail(
                row, step=current_step(row.steps), failure=why, next_action=nxt, steps=not_run(row.steps, now), now=now
            ):
                reaped.append(row)
        return reaped

    def _finish(
        self, row: Rollback, values: dict[str, Any], action: str, outcome: str, params: dict[str, Any], detail: str
    ) -> bool:
        with transaction(self._engine) as session:
            won = self._conditional(session, row.id, values)
            if won:
                self._audit.append(session, self._entry(row, SYSTEM, action, outcome, params, detail))
        return won

    @staticmethod
    def _conditional(session: Session, rollback_id: str, values: dict[str, Any]) -> bool:
        stmt = update(Rollback).where(
            col(Rollback.id) == rollback_id, col(Rollback.status) == RollbackStatus.RUNNING.value
        )
        return int(getattr(session.execute(stmt.values(**values)), "rowcount", 0)) == 1

    @staticmethod
    def _entry(
        row: Rollback, actor: Actor, action: str, outcome: str, params: dict[str, Any], detail: str = ""
    ) -> Entry:
        return Entry(
            actor,
            action,
            outcome,
            {"rollback_id": row.id, **params},
            row.run_request_id,
            row.approval_id,
            row.channel,
            detail,
        )
