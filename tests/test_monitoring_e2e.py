"""End to end against a real Prometheus (Debian's `prometheus` package): it scrapes the simulated
backend's /metrics every second; the workspace's "platform auth failing" drill makes the backend's
simulated users fail to sign in and refresh tokens (and real unauthorized requests raise its 401
count); the bot's leader evaluates the runbook's PromQL and posts each breach once, with its chart.
A quiet system raises nothing."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from bot.monitoring.prom import PromClient, PromError
from bot.monitoring.service import Monitor
from bot.sim.stack import Stack
from bot.workspace.drills import inject
from tests.conftest import wait_until
from tests.monitoring_support import alerts, degraded, monitoring_overrides, open_window, store

CONFIG = """\
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: trading
    scrape_interval: 1s
    scrape_timeout: 900ms
    static_configs:
      - targets: ["{target}"]
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        why = "the `prometheus` binary is not installed (apt-get install -y prometheus; `make test` does it as root)"
        if os.environ.get("CI"):
            pytest.fail(f"CI requires Prometheus: {why}")
        pytest.skip(why)
    return found


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[str, int], str]]:
    """Start Prometheus on loopback scraping `target` (host:port); returns its base URL."""
    binary = prometheus_binary()
    started: list[subprocess.Popen[bytes]] = []

    def start(target: str, port: int) -> str:
        config = tmp_path / "prometheus.yml"
        config.write_text(CONFIG.format(target=target), encoding="utf-8")
        log = (tmp_path / "prometheus.log").open("wb")
        process = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
                                    f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                                   stdout=log, stderr=subprocess.STDOUT)
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _ready(url), timeout=30)
        return url

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def scraped(client: PromClient, times: int) -> bool:
    try:
        answer = client.query('count_over_time(up{job="trading"}[1m])')
    except PromError:
        return False
    return bool(answer.samples) and answer.samples[0].value >= times


def test_a_drill_is_detected_from_promql_and_posted_once(sqlite_url: str,
                                                          prometheus: Callable[[str, int], str]) -> None:
    port = free_port()
    overrides = monitoring_overrides(f"http://127.0.0.1:{port}", OPSBOT_MONITOR_INTERVAL_SECONDS=0.5,
                                     OPSBOT_PROMETHEUS_TIMEOUT_SECONDS=3)
    with Stack(database_url=sqlite_url, overrides=overrides) as stack:
        url = prometheus(stack.backend.url.removeprefix("http://"), port)
        wait_until(lambda: scraped(PromClient(url), 3), timeout=30)
        open_window(stack)
        monitor = Monitor(stack.deps).start()
        try:
            time.sleep(3)  # a quiet system: every signal evaluated, nothing raised
            assert alerts(stack) == [] and degraded(stack) == []
            inject(stack, "auth-failing", True)  # what the workspace's drill switch does
            wait_until(lambda: bool(alerts(stack, "platform auth failures")), timeout=30)
            wait_until(lambda: bool(alerts(stack, "token refresh failures")), timeout=30)
            for _ in range(40):  # real traffic the backend refuses: its own 401 counter rises
                httpx.get(f"{stack.backend.url}/api/health", timeout=2)
            wait_until(lambda: bool(alerts(stack, "backend 401 and 403 spikes")), timeout=30)
            time.sleep(3)  # more passes while both breaches last: nothing is posted again
        finally:
            monitor.stop()
        assert len(alerts(stack, "platform auth failures")) == 1
        assert len(alerts(stack, "token refresh failures")) == 1
        assert len(alerts(stack, "backend 401 and 403 spikes")) == 1 and len(alerts(stack)) == 3
        open_ = {a.signal_id: a for a in store(stack).open_alerts("breach")}
        auth = open_["platform-auth-failures"]
        assert auth.value is not None and auth.value > 10 and auth.trigger == "auth"
        assert open_["token-refresh-failures"].trigger == "auth"
        png = stack.peer.files.get(str(auth.chart_file_id))
        assert png is not None and png.data is not None and png.data[:4] == b"\x89PNG"
        runs = store(stack).runs()
        assert len(runs) >= 10 and {r.outcome for r in runs} == {"ok"}
