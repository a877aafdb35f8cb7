"""The audit benchmark runs end to end with few rows and ends with its JSON figures (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "audit.py"
PHASE = {"rows", "verify_rows_per_s", "verify_peak_mb", "export_rows_per_s", "export_peak_mb"}


@pytest.mark.timeout(300)
def test_audit_bench_runs_and_ends_with_its_json_figures(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--rows", "2000", "--append-rows", "20", "--backends", "sqlite"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    figures = json.loads(lines[-1])
    sqlite = figures["sqlite"]
    assert figures["rows"] == 2000 and sqlite["all"]["rows"] == 2000 and sqlite["tenth"]["rows"] == 200
    assert sqlite["all"].keys() >= PHASE and all(sqlite["all"][k] > 0 for k in PHASE)
    assert sqlite["append_rows_per_s"] > 0 and sqlite["floor_hash_rows_per_s"] > 0
    assert sqlite["verify_vs_floor"] > 0 and sqlite["export_vs_floor"] > 0
    assert lines[0].startswith("sqlite: append") and "x the floor" in done.stdout  # the table came first
