"""The gate benchmark runs end to end with small numbers and ends with its JSON figures (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "gate.py"
KEYS = {"probes", "slowest_single_s", "gate_wall_s", "ratio", "hang_wall_s", "hang_overshoot_s", "deadline_s"}


@pytest.mark.timeout(120)
def test_gate_bench_runs_and_ends_with_its_json_figures(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--runs", "1", "--deadline", "0.5", "--no-cosmos"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    figures = json.loads(lines[-1])
    assert figures.keys() >= KEYS
    assert figures["probes"] == 13 and figures["deadline_s"] == 0.5
    assert all(isinstance(figures[key], int | float) for key in KEYS)
    assert figures["ratio"] > 0 and figures["hang_wall_s"] >= 0.5
    assert "probe (alone)" in lines[1] and "hanging" in done.stdout  # the table came first
