"""What the gate's `monitoring-clean` check is judged on: the breaches open now that point to a hard
rollback trigger, in words (bot.cutover.engine.Evidence.alerts)."""

from __future__ import annotations

from sqlalchemy import Engine

from bot.audit.log import AuditLog
from bot.monitoring.signals import against
from bot.monitoring.store import BREACH, MonitoringStore
from bot.runbook.model import Runbook
from bot.storage.db import as_utc
from bot.text import when


def open_breaches(engine: Engine, audit: AuditLog, runbook: Runbook) -> tuple[str, ...]:
    signals = {s.id: s for s in runbook.signals()}
    lines = []
    for alert in MonitoringStore(engine, audit).open_alerts(BREACH):
        signal = signals.get(alert.signal_id)
        if signal is None or not alert.trigger:
            continue
        lines.append(
            f"{signal.name}: {against(signal, alert.value)} since {when(as_utc(alert.since))} "
            f"(trigger {alert.trigger}, alert {alert.id})"
        )
    return tuple(lines)
