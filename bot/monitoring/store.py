"""Persistence of monitoring: windows, alerts (claimed once per breach), watcher runs, App Home viewers.

Every state change that must happen once (a window opened for a transition, an alert claimed for a
breach, a summary claimed for posting, an alert cleared) is one conditional write; the loser of a race
gets False and posts nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from contextlib import suppress
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.audit.log import SYSTEM, AuditLog, Entry
from bot.monitoring.models import HomeViewer, MonitoringAlert, MonitoringLeader, MonitoringWindow, WatcherRun
from bot.storage.db import transaction
from bot.storage.models import AuditEvent

OPEN, CLEARED, CLOSED, SUPERSEDED = "open", "cleared", "closed", "superseded"
BREACH, DEGRADED = "breach", "degraded"


def new_alert_id() -> str:
    return "mon-" + secrets.token_hex(6)


def active_key(kind: str, signal_id: str) -> str:
    return f"{kind}:{signal_id}"


class MonitoringStore:
    def __init__(self, engine: Engine, audit: AuditLog) -> None:
        self._engine = engine
        self._audit = audit

    # -- windows ------------------------------------------------------------------------------

    def open_window(
        self, row: MonitoringWindow, entry: Entry
    ) -> tuple[MonitoringWindow | None, list[MonitoringWindow]]:
        """Insert `row` and supersede the windows still open; (None, []) if this transition has one."""
        try:
            with transaction(self._engine) as session:
                older = list(session.exec(select(MonitoringWindow).where(MonitoringWindow.status == OPEN)))
                for old in older:
                    old.status, old.closed_at = SUPERSEDED, row.opened_at
                    session.add(old)
                session.add(row)
                session.flush()
                self._audit.append(session, entry)
                return row, older
        except IntegrityError:
            return None, []

    def current_window(self) -> MonitoringWindow | None:
        with Session(self._engine, expire_on_commit=False) as session:
            query = select(MonitoringWindow).where(MonitoringWindow.status == OPEN)
            return session.exec(query.order_by(col(MonitoringWindow.opened_at).desc()).limit(1)).first()

    def get_window(self, window_id: int | None) -> MonitoringWindow | None:
        if window_id is None:
            return None
        with Session(self._engine, expire_on_commit=False) as session:
            return session.get(MonitoringWindow, window_id)

    def claim_not_fixed(self, alert_id: str, rollback_id: str, entry: Entry) -> bool:
        """Mark an open alert as outliving `rollback_id`, once: False if it was marked already."""
        stmt = (
            update(MonitoringAlert)
            .where(col(MonitoringAlert.id) == alert_id, col(MonitoringAlert.not_fixed_by).is_(None))
            .values(not_fixed_by=rollback_id)
        )
        return self._changed(stmt, entry)

    def latest_window(self) -> MonitoringWindow | None:
        with Session(self._engine, expire_on_commit=False) as session:
            return session.exec(select(MonitoringWindow).order_by(col(MonitoringWindow.id).desc()).limit(1)).first()

    def claim_immediate_summary(self, window_id: int, at: datetime) -> bool:
        stmt = update(MonitoringWindow).where(
            col(MonitoringWindow.id) == window_id, col(MonitoringWindow.immediate_summary_at).is_(None)
        )
        return self._changed(stmt.values(immediate_summary_at=at))

    def close_window(self, window_id: int, at: datetime, entry: Entry) -> bool:
        stmt = update(MonitoringWindow).where(
            col(MonitoringWindow.id) == window_id, col(MonitoringWindow.status) == OPEN
        )
        return self._changed(stmt.values(status=CLOSED, closed_at=at), entry)

    def save_stats(self, window_id: int, stats: str) -> None:
        self._changed(update(MonitoringWindow).where(col(MonitoringWindow.id) == window_id).values(stats=stats))

    # -- alerts -------------------------------------------------------------------------------

    def claim_alert(self, row: MonitoringAlert, entry: Entry) -> bool:
        """Insert an open alert; False when one is already open for the same kind and signal."""
        row.active = active_key(row.kind, row.signal_id)
        try:
            with transaction(self._engine) as session:
                session.add(row)
                session.flush()
                self._audit.append(session, entry)
            return True
        except IntegrityError:
            return False

    def update_alert(self, alert_id: str, **values: Any) -> None:
        self._changed(update(MonitoringAlert).where(col(MonitoringAlert.id) == alert_id).values(**values))

    def finish_alert(self, alert_id: str, *, status: str, at: datetime, entry: Entry) -> bool:
        stmt = update(MonitoringAlert).where(col(MonitoringAlert.id) == alert_id, col(MonitoringAlert.status) == OPEN)
        return self._changed(stmt.values(status=status, cleared_at=at, active=None), entry)

    def get_alert(self, alert_id: str) -> MonitoringAlert | None:
        with Session(self._engine, expire_on_commit=False) as session:
            return session.get(MonitoringAlert, alert_id)

    def open_alerts(self, kind: str | None = None) -> list[MonitoringAlert]:
        with Session(self._engine, expire_on_commit=False) as session:
            query = select(MonitoringAlert).where(MonitoringAlert.status == OPEN)
            if kind is not None:
                query = query.where(MonitoringAlert.kind == kind)
            return list(session.exec(query.order_by(col(MonitoringAlert.raised_at))))

    def window_alerts(self, window_id: int) -> list[MonitoringAlert]:
        with Session(self._engine, expire_on_commit=False) as session:
            query = select(MonitoringAlert).where(MonitoringAlert.window_id == window_id)
            return list(session.exec(query.order_by(col(MonitoringAlert.raised_at))))

    # -- watcher runs and the leadership fence ------------------------------------------------

    def start_run(self, *, replica: str, term: int, at: datetime) -> int | None:
        """Record a watcher pass; None (nothing recorded) when `term` is no longer the leader's term."""
        with transaction(self._engine) as session:
            if term > 0:
                leader = session.get(MonitoringLeader, 1)
                if leader is None or leader.term != term:
                    return None
            run = WatcherRun(replica=replica, term=term, started_at=at)
            session.add(run)
            session.flush()
            return run.id

    def finish_run(self, run_id: int, *, at: datetime, outcome: str, detail: str = "") -> None:
        stmt = update(WatcherRun).where(col(WatcherRun.id) == run_id)
        self._changed(stmt.values(finished_at=at, outcome=outcome, detail=detail[:2000]))

    def runs(self) -> list[WatcherRun]:
        with Session(self._engine, expire_on_commit=False) as session:
            return list(session.exec(select(WatcherRun).order_by(col(WatcherRun.started_at))))

    def prune_runs(self, before: datetime) -> None:
        self._changed(delete(WatcherRun).where(col(WatcherRun.started_at) < before))

    # -- App Home viewers ---------------------------------------------------------------------

    def touch_viewer(self, user_id: str, at: datetime) -> None:
        with suppress(IntegrityError), transaction(self._engine) as session:  # a racing first open: fine
            row = session.get(HomeViewer, user_id)
            if row is None:
                session.add(HomeViewer(user_id=user_id, opened_at=at))
            else:
                row.opened_at = at
                session.add(row)

    def viewers(self, since: datetime, limit: int = 50) -> list[str]:
        with Session(self._engine) as session:
            query = select(HomeViewer).where(col(HomeViewer.opened_at) >= since)
            return [v.user_id for v in session.exec(query.order_by(col(HomeViewer.opened_at).desc()).limit(limit))]

    def note(self, entry: Entry) -> None:
        """An audit row of its own, for what changed nothing stored (a chart Slack refused)."""
        self._audit.record(entry)

    def audit_head(self) -> int:
        """The newest audit sequence number: it moves with every action the bot records."""
        with Session(self._engine) as session:
            return int(session.exec(select(func.coalesce(func.max(AuditEvent.seq), 0))).one())

    def _changed(self, stmt: Any, entry: Entry | None = None) -> bool:
        with transaction(self._engine) as session:
            result = session.execute(stmt)
            won = int(getattr(result, "rowcount", 0)) >= 1
            if won and entry is not None:
                self._audit.append(session, entry)
            return won


def system_entry(action: str, outcome: str, params: dict[str, Any], *, channel: str = "", detail: str = "") -> Entry:
    return Entry(SYSTEM, action, outcome, params, "", "", channel, detail)


def open_of(alerts: Sequence[MonitoringAlert], kind: str) -> dict[str, MonitoringAlert]:
    return {a.signal_id: a for a in alerts if a.kind == kind and a.status == OPEN}
