"""The acknowledgement benchmark runs end to end and reports its figures (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "ack.py"
KEYS = {
    "bare_rps",
    "opsbot_rps",
    "ratio",
    "p99_ms_c8",
    "bare_rps_c1",
    "opsbot_rps_c1",
    "ratio_c1",
    "p50_ms_c8",
    "p99_ms_c1",
}


@pytest.mark.timeout(180)
def test_bench_runs_and_ends_with_its_json_figures(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--requests", "20"], cwd=tmp_path, capture_output=True, text=True, timeout=170
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr[-3000:]
    figures = json.loads(lines[-1])
    assert figures.keys() >= KEYS
    assert all(isinstance(figures[key], int | float) for key in KEYS)
    assert figures["ratio"] > 0 and figures["ratio_c1"] > 0
    assert figures["posted"] == figures["opsbot_requests"] > 0  # every acked request was also worked on
    assert "opsbot" in done.stdout and "bare" in done.stdout  # the table came first
