"""Per-window figures for the summaries: each signal's peak, readings and readings without data. Pure."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from bot.monitoring.models import MonitoringWindow
from bot.monitoring.signals import Reading
from bot.runbook.model import Runbook, Signal
from bot.storage.db import as_utc


@dataclass
class SignalStats:
    peak: float | None = None  # the worst value seen (highest for >, lowest for <)
    readings: int = 0
    no_data: int = 0
    last_problem: str = ""
    unconfigured: bool = False


def load(window: MonitoringWindow) -> dict[str, SignalStats]:
    try:
        raw: Any = json.loads(window.stats or "{}")
    except ValueError:
        raw = {}
    out: dict[str, SignalStats] = {}
    for key, value in raw.items() if isinstance(raw, dict) else []:
        if isinstance(value, dict):
            out[str(key)] = SignalStats(**{k: v for k, v in value.items() if k in SignalStats.__annotations__})
    return out


def dump(stats: dict[str, SignalStats]) -> str:
    return json.dumps({k: asdict(v) for k, v in sorted(stats.items())}, sort_keys=True)


def record(stats: dict[str, SignalStats], runbook: Runbook, readings: Iterable[Reading]) -> None:
    """Fold one pass's readings into the window's figures."""
    by_id = {s.id: s for s in runbook.signals()}
    for reading in readings:
        signal = by_id.get(reading.signal_id)
        if signal is None:
            continue
        entry = stats.setdefault(signal.id, SignalStats())
        entry.readings += 1
        if reading.value is None:
            entry.no_data += 1
            entry.last_problem = reading.problem[:200]
            entry.unconfigured = reading.unconfigured
        else:
            entry.peak = worse(signal, entry.peak, reading.value)


def worse(signal: Signal, a: float | None, b: float) -> float:
    if a is None:
        return b
    return max(a, b) if signal.comparison in (">", ">=") else min(a, b)


def watched(runbook: Runbook, window: MonitoringWindow, now: datetime) -> list[Signal]:
    """Immediate signals until `immediate_until`; first-24-hours signals until `ends_at`."""
    signals: list[Signal] = []
    if now < as_utc(window.immediate_until):
        signals += runbook.monitoring.immediate
    if now < as_utc(window.ends_at):
        signals += runbook.monitoring.first_24h
    return signals
