"""A breach that outlives a rollback: pure rules and words.

An alert whose breach began before the last completed rollback closed, and that still breaches once
the signal's whole window lies after the close (so the reading no longer counts anything from before
the rollback), was not fixed by that rollback. It is said once, in the alert's thread and in the
channel, naming the rollback owners and the halt authorities; it is never called the old release's.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from bot.monitoring.models import MonitoringAlert
from bot.monitoring.signals import against, figure
from bot.rollback.models import Rollback
from bot.runbook.model import Signal
from bot.storage.db import as_utc
from bot.text import safe, when


def outlived(alert: MonitoringAlert, signal: Signal, reading_at: datetime, rollback: Rollback | None) -> bool:
    """True when this breaching reading shows `alert` not fixed by `rollback` (and it was not said yet)."""
    if rollback is None or rollback.closed_at is None or alert.not_fixed_by is not None:
        return False
    closed = as_utc(rollback.closed_at)
    return as_utc(alert.since) < closed and reading_at >= closed + signal.window


def mentions(people: Iterable[str]) -> str:
    ids = sorted(set(people))
    return " ".join(f"<@{safe(i, 32)}>" for i in ids) or "nobody configured"


def not_fixed_text(
    signal: Signal, alert: MonitoringAlert, rollback: Rollback, *, owners: Iterable[str], authorities: Iterable[str]
) -> str:
    closed = as_utc(rollback.closed_at or rollback.updated_at)
    return (
        f":rotating_light: *Not fixed by rollback `{safe(rollback.id, 32)}`:* {safe(signal.name, 120)} is "
        f"{against(signal, alert.value)} (peak {figure(alert.peak, signal.unit)}), a full "
        f"{_window(signal)} after production went back to `{safe(rollback.target[:7], 12)}` "
        f"({when(closed)}). The release running now breaches too.\n"
        f"Rollback owners {mentions(owners)}, halt authorities {mentions(authorities)}: decide on a halt "
        f"(`/halt <scope> <reason>`) or a further rollback (`/rollback <reason> --to <sha>`). Alert "
        f"`{safe(alert.id, 32)}`."
    )


def _window(signal: Signal) -> str:
    seconds = signal.window.total_seconds()
    return f"{seconds / 60:g} min window" if seconds < 5400 else f"{seconds / 3600:g} h window"
