"""Warnings the gate message leads with: what monitoring already knows that an operator must not miss.

Open monitoring alerts with a hard rollback trigger, and kill-switch misfires (halt/resume read-backs
that showed the change not applied) within the runbook signal's window. They do not change the
verdict (the runbook's go/no-go rules are its ten go and three no-go conditions); they are shown
above it and stored with the evaluation's audit row. Read on a side thread bounded by the gate's
deadline, so a slow store cannot hold the message back.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime

from sqlalchemy import Engine

from bot.audit.log import AuditLog
from bot.monitoring.clean import open_breaches
from bot.monitoring.measures import Measurer
from bot.monitoring.signals import against
from bot.runbook.model import Runbook, Signal

log = logging.getLogger("opsbot.gate.warnings")

MISFIRES = "kill-switch-misfires"  # the bot measure that counts halt/resume read-backs not applied
SHOWN = 3  # alerts named in the line; the count says how many more


def gate_warnings(engine: Engine, audit: AuditLog, runbook: Runbook, now: datetime) -> tuple[str, ...]:
    """Plain lines (mrkdwn-escaped later), most urgent first; empty when there is nothing to say."""
    lines = (_alerts_line(engine, audit, runbook), *_misfire_lines(engine, runbook, now))
    return tuple(line for line in lines if line)


def _alerts_line(engine: Engine, audit: AuditLog, runbook: Runbook) -> str:
    try:
        alerts = open_breaches(engine, audit, runbook)
    except Exception as exc:  # the store is down: say so rather than imply "no alerts"
        log.warning("open monitoring alerts not read: %s", type(exc).__name__)
        return f":warning: Open monitoring alerts could not be read ({type(exc).__name__})."
    if not alerts:
        return ""
    more = f"; and {len(alerts) - SHOWN} more" if len(alerts) > SHOWN else ""
    noun = "alert with a hard rollback trigger is" if len(alerts) == 1 else "alerts with hard rollback triggers are"
    return f":rotating_light: {len(alerts)} monitoring {noun} open: {'; '.join(alerts[:SHOWN])}{more}."


def _misfire_lines(engine: Engine, runbook: Runbook, now: datetime) -> list[str]:
    signals = [s for s in runbook.signals() if s.source == "bot" and s.measure == MISFIRES]
    if not signals:
        return []
    measurer = Measurer(engine)  # the misfires are counted from the audit log alone
    try:
        return [_misfire_line(signal, measurer, now) for signal in signals]
    finally:
        measurer.close()


def _misfire_line(signal: Signal, measurer: Measurer, now: datetime) -> str:
    reading = measurer.read_one(signal, now)
    window = f"{signal.window.total_seconds() / 60:g} min"
    if reading.value is None:
        return f":warning: Kill-switch misfires in the last {window} could not be counted ({reading.problem})."
    if reading.value <= 0:
        return ""
    figure = against(signal, reading.value)
    count = f"{reading.value:g} kill-switch misfire{'' if reading.value == 1 else 's'}"
    return (
        f":rotating_light: {count} in the last {window}: a `/halt` or "
        f"`/halt resume` read-back showed the change NOT applied ({signal.name}: {figure})."
    )


def start(engine: Engine, audit: AuditLog, runbook: Runbook, now: datetime) -> Future[tuple[str, ...]]:
    """Read the warnings on a side thread; `collect` waits for them no later than the gate's deadline."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="opsbot-gate-warnings")
    try:
        return pool.submit(gate_warnings, engine, audit, runbook, now)
    finally:
        pool.shutdown(wait=False)


def collect(future: Future[tuple[str, ...]], deadline_at: float) -> tuple[str, ...]:
    try:
        return future.result(timeout=max(0.0, deadline_at - time.monotonic()))
    except TimeoutError:
        return (":warning: Monitoring alerts and kill-switch misfires were not read before the deadline.",)
    except Exception as exc:
        log.exception("gate warnings failed")
        return (f":warning: Monitoring alerts and kill-switch misfires could not be read ({type(exc).__name__}).",)
