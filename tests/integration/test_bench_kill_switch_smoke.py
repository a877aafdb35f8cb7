"""The kill-switch benchmark runs end to end and reports its figures (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "kill_switch.py"
CONDITIONS = ("slack_ok", "reads_in_flight", "slack_slow_2s", "slack_429_retry_after_30")


@pytest.mark.timeout(180)
def test_kill_switch_bench_runs_and_ends_with_its_json_figures(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--samples", "2", "--cap", "0.5"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    figures = json.loads(lines[-1])
    assert figures["floor_p50_ms"] > 0 and figures["floor_p99_ms"] >= figures["floor_p50_ms"]
    for name in CONDITIONS:
        for kind in ("break_glass", "approved"):
            key = f"{kind}_{name}"
            assert figures[f"{key}_n"] == 2
            assert 0 < figures[f"{key}_p50_ms"] <= figures[f"{key}_p99_ms"] <= 500.0  # censored at the cap
            assert isinstance(figures[f"{key}_meets_target"], bool)
    assert figures["break_glass_slack_ok_censored"] == 0  # with Slack answering at once every halt arrived
    assert "floor" in done.stdout and "break_glass" in done.stdout  # the table came first
