"""End to end against a real Prometheus (Debian's `prometheus` package): it scrapes the simulated
backend's /metrics every second; the workspace's "platform auth failing" drill makes the backend's
simulated users fail to sign in and refresh tokens (and real unauthorized requests raise its 401
count); the bot's leader evaluates the runbook's PromQL and posts each breach once, with its chart.
A quiet system raises nothing."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import httpx
import pytest

from bot.clients.prometheus import PromClient, PromError
from commands.monitoring import build_monitor
from rehearsal.sim.stack import Stack
from rehearsal.workspace.drills import inject
from rehearsal.workspace.prometheus import LocalPrometheus, binary, missing_reason
from tests.support.common import wait_until
from tests.support.monitoring import alerts, degraded, monitoring_overrides, open_window, store


@pytest.fixture
def prometheus() -> Iterator[LocalPrometheus]:
    """Prometheus on loopback, started the way the local workspace starts it (1 s scrapes)."""
    executable = binary()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI requires Prometheus: {missing_reason()}")
        pytest.skip(missing_reason())
    local = LocalPrometheus(executable).start()
    yield local
    local.stop()


def scraped(client: PromClient, times: int) -> bool:
    try:
        answer = client.query('count_over_time(up{job="trading"}[1m])')
    except PromError:
        return False
    return bool(answer.samples) and answer.samples[0].value >= times


def test_a_drill_is_detected_from_promql_and_posted_once(sqlite_url: str, prometheus: LocalPrometheus) -> None:
    overrides = monitoring_overrides(
        prometheus.url, OPSBOT_MONITOR_INTERVAL_SECONDS=0.5, OPSBOT_PROMETHEUS_TIMEOUT_SECONDS=3
    )
    with Stack(database_url=sqlite_url, overrides=overrides) as stack:
        prometheus.scrape(stack.backend.url.removeprefix("http://"))
        wait_until(lambda: scraped(PromClient(prometheus.url), 3), timeout=30)
        open_window(stack)
        monitor = build_monitor(stack.deps).start()
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
