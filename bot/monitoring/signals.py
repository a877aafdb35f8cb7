"""Signal evaluation, pure: a value against its threshold, and the alert state machine per signal.

    closed ──raise_after bad──▶ open (alert posted once) ──clear_after good──▶ closed (cleared said)
      no data (None) changes nothing: a missing answer neither raises nor clears an alert.

Breaches use raise_after=1 (the PromQL is already windowed) and clear_after=2, so one good reading
amid a breach does not clear it; "monitoring degraded" uses 2 and 2, so one slow answer is no notice.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from bot.clients.prometheus import duration
from bot.runbook.model import Signal

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
BREACH_RAISE_AFTER, BREACH_CLEAR_AFTER = 1, 2
DEGRADED_RAISE_AFTER, DEGRADED_CLEAR_AFTER = 2, 2


class Step(StrEnum):
    NONE = "none"  # nothing to say
    RAISE = "raise"  # post the alert (once)
    HOLD = "hold"  # still open: update figures, post nothing
    CLEAR = "clear"  # say it cleared


@dataclass(frozen=True)
class Track:
    open: bool = False
    streak: int = 0  # consecutive readings pointing away from the current state


@dataclass(frozen=True)
class Reading:
    """One evaluation of one signal; `value` None is no data, with `problem` saying why."""

    signal_id: str
    at: datetime
    value: float | None
    problem: str = ""
    unconfigured: bool = False  # no source is configured (not "degraded": announced when the window opens)
    detail: str = ""  # what a bot-measured value counts (which approvals), in mrkdwn, for the alert


def promql(signal: Signal) -> str:
    """The signal's query as sent: `$window` replaced by its window as a PromQL duration."""
    return (signal.query or "").replace("$window", duration(signal.window))


def breached(signal: Signal, value: float) -> bool:
    return _OPS[signal.comparison](value, signal.threshold)


def verdict(signal: Signal, reading: Reading) -> bool | None:
    """True breach, False fine, None no data."""
    return None if reading.value is None else breached(signal, reading.value)


def advance(track: Track, bad: bool | None, *, raise_after: int, clear_after: int) -> tuple[Track, Step]:
    if bad is None:
        return track, Step.NONE
    if not track.open:
        if not bad:
            return Track(), Step.NONE
        streak = track.streak + 1
        return (Track(True), Step.RAISE) if streak >= raise_after else (Track(False, streak), Step.NONE)
    if bad:
        return Track(True), Step.HOLD
    streak = track.streak + 1
    return (Track(), Step.CLEAR) if streak >= clear_after else (Track(True, streak), Step.HOLD)


def worst(signal: Signal, values: Iterable[float]) -> float | None:
    """The value that matters of several series: the highest for > / >=, the lowest for < / <=.
    NaN (e.g. 0/0) is no data; an empty answer is no data, never zero."""
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return None
    return max(finite) if signal.comparison in (">", ">=") else min(finite)


def breach_since(signal: Signal, points: Sequence[tuple[float, float]], fallback: datetime) -> datetime:
    """When the current breach began: the start of the trailing run of breaching points."""
    since = None
    for at, value in reversed(points):
        if math.isnan(value) or not breached(signal, value):
            break
        since = at
    return datetime.fromtimestamp(since, UTC) if since is not None and since < fallback.timestamp() else fallback


def number(value: float, digits: int = 3) -> str:
    """A value as an operator reads it: 14, 12.5, 0.031, 1,048,576."""
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if abs(value - round(value)) < 1e-9:
        return f"{round(value):,}"
    if abs(value) >= 10**digits:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def figure(value: float | None, unit: str, digits: int = 3) -> str:
    if value is None:
        return "no data"
    return f"{number(value, digits)} {unit_for(value, unit)}".strip()


def unit_for(value: float, unit: str) -> str:
    """The unit in the value's number: `1 failure`, `1 anomaly`, `2 failures`; `%` units never change."""
    if value != 1 or unit.startswith("%") or not unit.endswith("s"):
        return unit
    return unit[:-3] + "y" if unit.endswith("ies") else unit[:-1]


def shown(signal: Signal, value: float | None) -> str:
    """The value in the signal's unit, with the digits that tell it from the threshold ("10.04", not "10")."""
    digits = 3
    while (
        value is not None
        and value != signal.threshold
        and digits < 8
        and number(value, digits) == number(signal.threshold, digits)
    ):
        digits += 1
    return figure(value, signal.unit, digits)


def against(signal: Signal, value: float | None) -> str:
    """`14 failures > 10 failures`: the value against the threshold, in the signal's unit."""
    return f"{shown(signal, value)} {signal.comparison} {figure(signal.threshold, signal.unit)}"
