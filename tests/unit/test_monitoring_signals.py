"""Pure parts of monitoring: breach rules, the per-signal alert state machine, the chart PNG, and the
runbook's signal definitions."""

from __future__ import annotations

import io
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from bot.monitoring.signals import (
    BREACH_CLEAR_AFTER,
    BREACH_RAISE_AFTER,
    DEGRADED_CLEAR_AFTER,
    DEGRADED_RAISE_AFTER,
    Step,
    Track,
    advance,
    against,
    breach_since,
    breached,
    number,
    promql,
    worst,
)
from bot.runbook.load import load_runbook
from bot.runbook.model import BOT_MEASURES, RunbookError, Signal
from commands.webapi.charts import HEIGHT, LINE, THRESHOLD, WIDTH, line_chart
from tests.unit.test_runbook import SHIPPED

RUNBOOK = load_runbook()


def signal(**kw: Any) -> Signal:
    base: dict[str, Any] = {
        "id": "s",
        "name": "failures",
        "query": "x",
        "threshold": 10,
        "window": 300,
        "unit": "failures",
    }
    return Signal.model_validate({**base, **kw})


def run(readings: list[bool | None], *, raise_after: int, clear_after: int) -> list[Step]:
    track, steps = Track(), []
    for bad in readings:
        track, step = advance(track, bad, raise_after=raise_after, clear_after=clear_after)
        steps.append(step)
    return steps


def test_a_breach_is_raised_once_held_and_cleared_after_two_good_readings() -> None:
    steps = run(
        [False, True, True, True, False, True, False, False, False],
        raise_after=BREACH_RAISE_AFTER,
        clear_after=BREACH_CLEAR_AFTER,
    )
    assert steps == [
        Step.NONE,
        Step.RAISE,
        Step.HOLD,
        Step.HOLD,
        Step.HOLD,
        Step.HOLD,
        Step.HOLD,
        Step.CLEAR,
        Step.NONE,
    ]


def test_no_data_neither_raises_nor_clears() -> None:
    steps = run([None, None, True, None, None, False, None, False], raise_after=1, clear_after=2)
    assert steps == [Step.NONE, Step.NONE, Step.RAISE, Step.NONE, Step.NONE, Step.HOLD, Step.NONE, Step.CLEAR]


def test_degraded_needs_two_bad_passes_and_two_good_ones() -> None:
    steps = run(
        [True, False, True, True, True, False, True, False, False],
        raise_after=DEGRADED_RAISE_AFTER,
        clear_after=DEGRADED_CLEAR_AFTER,
    )
    assert steps == [
        Step.NONE,
        Step.NONE,
        Step.NONE,
        Step.RAISE,
        Step.HOLD,
        Step.HOLD,
        Step.HOLD,
        Step.HOLD,
        Step.CLEAR,
    ]


@pytest.mark.parametrize(
    ("comparison", "value", "expected"),
    [(">", 10, False), (">", 10.5, True), (">=", 10, True), ("<", 10, False), ("<", 9, True), ("<=", 10, True)],
)
def test_comparisons(comparison: str, value: float, expected: bool) -> None:
    assert breached(signal(comparison=comparison), value) is expected


def test_worst_of_several_series_and_nan_is_no_data() -> None:
    assert worst(signal(), [1.0, 7.0, 3.0]) == 7.0
    assert worst(signal(comparison="<"), [1.0, 7.0]) == 1.0
    assert worst(signal(), [math.nan]) is None and worst(signal(), []) is None


def test_breach_since_is_the_start_of_the_trailing_breach() -> None:
    now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    t = now.timestamp()
    points = [(t - 50, 12.0), (t - 40, 3.0), (t - 30, 11.0), (t - 20, 15.0), (t - 10, 20.0)]
    assert breach_since(signal(), points, now) == now - timedelta(seconds=30)
    assert breach_since(signal(), [(t - 10, 1.0)], now) == now
    assert breach_since(signal(), [], now) == now


def test_figures_read_like_an_operator_writes_them() -> None:
    assert number(14.0) == "14" and number(12.5) == "12.5" and number(524288) == "524,288"
    assert number(0.03125) == "0.0312" and number(1234.56) == "1,235"
    assert against(signal(), 14.0) == "14 failures > 10 failures"
    assert against(signal(), None) == "no data > 10 failures"
    # Just past the threshold, the digits show it is past: never "10 failures > 10 failures".
    assert against(signal(), 10.04) == "10.04 failures > 10 failures"
    assert against(signal(), 10.0001) == "10.0001 failures > 10 failures"
    assert against(signal(), 84.4) == "84.4 failures > 10 failures"


def test_chart_is_a_valid_small_png() -> None:
    points = [(float(i), 5 + 10 * math.sin(i / 7)) for i in range(200)] + [(200.0, math.nan), (201.0, 3.0)]
    png = line_chart(points, threshold=12.0, start=0.0, end=210.0)
    assert len(png) < 40_000
    image = Image.open(io.BytesIO(png))
    assert (image.format, image.size) == ("PNG", (WIDTH, HEIGHT))
    colours = {colour for _, colour in image.convert("RGB").getcolors(maxcolors=WIDTH * HEIGHT) or []}
    assert rgb(LINE) in colours and rgb(THRESHOLD) in colours  # the line (blue) and the threshold (red) were drawn
    assert Image.open(io.BytesIO(line_chart([], threshold=None, start=0, end=1))).size == (WIDTH, HEIGHT)


def rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def test_shipped_signals_are_complete() -> None:
    for s in RUNBOOK.signals():
        assert s.threshold is not None and s.window > timedelta(0)
        if s.source == "prometheus":
            assert s.query and "$window" not in promql(s) and s.measure is None
        else:
            assert s.measure in BOT_MEASURES and s.query is None
    bot = {s.id: s.measure for s in RUNBOOK.signals() if s.source == "bot"}
    assert bot == {
        "operator-intervention-failures": "operator-intervention-failures",
        "runtime-control-drift": "control-drift",
        "kill-switch-misfires": "kill-switch-misfires",
    }
    assert promql(RUNBOOK.signals()[0]) == "sum(increase(trading_auth_failures_total[300s]))"
    assert [s.trigger for s in RUNBOOK.signals()].count(None) == 1  # web build regressions: judged by a person


def edited(tmp_path: Path, index: int, **changes: Any) -> str:
    data = yaml.safe_load(yaml.safe_dump(SHIPPED))
    entry = data["monitoring"]["immediate"][index]
    for key, value in changes.items():
        if value is None:
            entry.pop(key, None)
        else:
            entry[key] = value
    path = tmp_path / "runbook.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(RunbookError) as caught:
        load_runbook(path)
    return str(caught.value)


def test_bad_signal_definitions_are_refused(tmp_path: Path) -> None:
    assert "source prometheus needs a query" in edited(tmp_path, 0, query=None)
    assert "source bot takes a measure, not a query" in edited(tmp_path, 0, source="bot")
    assert "source bot needs a measure" in edited(tmp_path, 7, measure="vibes")
    assert "source prometheus takes a query, not a measure" in edited(tmp_path, 0, measure="control-drift")
    assert "threshold (id 'platform-auth-failures'): Field required" in edited(tmp_path, 0, threshold=None)
    assert "window" in edited(tmp_path, 0, window=0)
    assert "comparison" in edited(tmp_path, 0, comparison="!=")
    assert "threshold" in edited(tmp_path, 0, threshold=float("nan"))


def test_a_count_of_one_reads_in_the_singular() -> None:
    from bot.monitoring.signals import figure

    assert figure(1, "failures") == "1 failure" and figure(2, "failures") == "2 failures"
    assert figure(1, "anomalies") == "1 anomaly" and figure(1, "drifted documents") == "1 drifted document"
    assert figure(1, "% of responses") == "1 % of responses" and figure(0, "misfires") == "0 misfires"
