"""What monitoring says, as pure functions of plain data: announcements, phase summaries, an alert's
fallback line, cleared, degraded and restored notices (mrkdwn, user text escaped)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from bot.monitoring.models import MonitoringAlert, MonitoringWindow
from bot.monitoring.signals import against, figure
from bot.monitoring.stats import SignalStats
from bot.runbook.model import Runbook, Signal
from bot.storage.db import as_utc
from bot.text import plural, safe, when

MAX_PROBLEM_LINES = 8


def minutes(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def threshold_text(signal: Signal) -> str:
    return f"{signal.comparison} {figure(signal.threshold, signal.unit)}"


def signal_line(signal: Signal) -> str:
    trigger = f" → trigger `{signal.trigger}`" if signal.trigger else " (not a hard trigger)"
    source = "" if signal.source == "prometheus" else " (measured by the bot)"
    return (
        f"• {safe(signal.name, 120)}: breach when {threshold_text(signal)} over "
        f"{minutes(signal.window.total_seconds())}{source}{trigger}"
    )


def announcement(
    runbook: Runbook, window: MonitoringWindow, *, stage_name: str, source: str, alert_channel: str
) -> str:
    immediate = len(runbook.monitoring.immediate)
    later = len(runbook.monitoring.first_24h)
    lines = [
        f":eyes: *Post-cutover monitoring opened* after the move to *{safe(stage_name, 100)}*.",
        f"Immediate signals ({immediate}) are watched until {when(as_utc(window.immediate_until))}; "
        f"first-24-hours signals ({later}) until {when(as_utc(window.ends_at))}. A breach is posted once in "
        f"<#{alert_channel}> with a chart and a *Propose rollback* button; a summary follows each phase.",
        source,
        "*Immediately after rollout:*",
        *[signal_line(s) for s in runbook.monitoring.immediate],
        "*First 24 hours:*",
        *[signal_line(s) for s in runbook.monitoring.first_24h],
    ]
    return "\n".join(lines)


def summary(
    runbook: Runbook,
    window: MonitoringWindow,
    signals: Sequence[Signal],
    stats: Mapping[str, SignalStats],
    alerts: Sequence[MonitoringAlert],
    *,
    heading: str,
    stage_name: str,
) -> str:
    """One phase's outcome: what breached (and whether it cleared), each signal's peak, data gaps."""
    mine = [a for a in alerts if a.kind == "breach" and a.signal_id in {s.id for s in signals}]
    degraded = [a for a in alerts if a.kind == "degraded"]
    lines = [
        f":clipboard: *{heading}* (after the move to *{safe(stage_name, 100)}*, opened "
        f"{when(as_utc(window.opened_at))}): {plural(len(signals), 'signal')}, {plural(len(mine), 'alert')}."
    ]
    for signal in signals:
        lines.append(_summary_line(signal, stats.get(signal.id), [a for a in mine if a.signal_id == signal.id]))
    if degraded:
        total = sum(((as_utc(a.cleared_at or a.last_seen_at) - as_utc(a.since)).total_seconds() for a in degraded), 0.0)
        times = plural(len(degraded), "time")
        lines.append(f":warning: Monitoring was degraded {times}, about {minutes(total)} in all.")
    return "\n".join(lines)


def _summary_line(signal: Signal, stats: SignalStats | None, alerts: Sequence[MonitoringAlert]) -> str:
    name = safe(signal.name, 120)
    if stats is None or stats.readings == 0:
        return f"• :grey_question: {name}: never evaluated"
    if stats.unconfigured and stats.peak is None:
        return f"• :heavy_minus_sign: {name}: not watched ({safe(stats.last_problem, 200)})"
    peak = f"peak {figure(stats.peak, signal.unit)}" if stats.peak is not None else "no value"
    gaps = f", {stats.no_data} of {stats.readings} readings without data" if stats.no_data else ""
    if not alerts:
        icon = ":grey_question:" if stats.peak is None else ":white_check_mark:"
        return f"• {icon} {name}: {peak} (threshold {threshold_text(signal)}){gaps}"
    states = ", ".join(f"`{a.id}` {'still open' if a.status == 'open' else a.status}" for a in alerts)
    return f"• :rotating_light: {name}: {peak}, threshold {threshold_text(signal)}; alerts {states}{gaps}"


def alert_fallback(signal: Signal, alert: MonitoringAlert) -> str:
    state = "Monitoring alert" if alert.status == "open" else "Cleared"
    return f"{state}: {signal.name}: {against(signal, alert.value)} since {when(as_utc(alert.since))}"


def cleared_text(signal: Signal, alert: MonitoringAlert, at: datetime) -> str:
    lasted = minutes((at - as_utc(alert.since)).total_seconds())
    return (
        f":white_check_mark: *Cleared:* {safe(signal.name, 120)} is back to {figure(alert.value, signal.unit)} "
        f"({threshold_text(signal)} no longer holds) after {lasted}; "
        f"peak {figure(alert.peak, signal.unit)}. Alert `{alert.id}`."
    )


def degraded_text(problems: Mapping[str, str], watched: int) -> str:
    """Problems grouped by cause: "Prometheus is unreachable (…): a, b, c"."""
    by_cause: dict[str, list[str]] = {}
    for signal_id, problem in sorted(problems.items()):
        by_cause.setdefault(problem, []).append(signal_id)
    lines = [
        f":warning: *Monitoring degraded:* {len(problems)} of {watched} watched signals cannot be evaluated, "
        "so a breach of these could go unseen. Missing data never raises or clears an alert."
    ]
    for cause, ids in list(by_cause.items())[:MAX_PROBLEM_LINES]:
        lines.append(f"• {safe(cause, 300)}: {', '.join(f'`{i}`' for i in ids)}")
    if len(by_cause) > MAX_PROBLEM_LINES:
        lines.append(f"…and {len(by_cause) - MAX_PROBLEM_LINES} more causes")
    return "\n".join(lines)


def restored_text(since: datetime, at: datetime) -> str:
    return (
        f":white_check_mark: *Monitoring restored:* every watched signal is evaluated again "
        f"(degraded for {minutes((at - since).total_seconds())})."
    )
