"""Prometheus down, slow, answering errors, empty vectors, NaN or not Prometheus at all: no alert is raised
or cleared on missing data, and one clear "monitoring degraded" notice says which signals are blind and
why, until every signal is evaluated again ("monitoring restored")."""

from __future__ import annotations

import time

import pytest

from rehearsal.sim.stack import Stack
from tests.support.common import text_of
from tests.support.monitoring import (
    FakePrometheus,
    alerts,
    degraded,
    monitoring_overrides,
    open_window,
    posts,
    restored,
    store,
    watcher,
)

CAUSES = {
    "slow": "Prometheus did not answer within 0.5 s",
    "error": "Prometheus refused the query (execution, HTTP 422): query timed out in expr",
    "http500": "Prometheus answered HTTP 500 without JSON",
    "bad_json": "Prometheus answered HTTP 200 without JSON",
    "empty": "Prometheus returned no data (empty vector)",
    "nan": "the value is NaN",
    "string": "an instant query answered resultType 'string'",
}
PROMETHEUS_SIGNALS = 10


@pytest.mark.parametrize("mode", sorted(CAUSES))
def test_a_fault_raises_nothing_but_one_degraded_notice(mon_stack: Stack, fake_prom: FakePrometheus, mode: str) -> None:
    open_window(mon_stack)
    w = watcher(mon_stack)
    fake_prom.mode, fake_prom.delay = mode, 1.0
    started = time.monotonic()
    for _ in range(4):
        w.tick()
    assert time.monotonic() - started < 4 * 2.5  # queries run at once: a slow Prometheus costs one timeout
    assert alerts(mon_stack) == []
    (notice,) = degraded(mon_stack)
    shown = text_of(notice.args)
    assert f"{PROMETHEUS_SIGNALS} of 12 watched signals cannot be evaluated" in shown
    assert CAUSES[mode] in shown and "`platform-auth-failures`" in shown
    assert "Missing data never raises or clears an alert" in shown
    fake_prom.mode = "ok"
    for _ in range(3):
        w.tick()
    assert len(restored(mon_stack)) == 1 and len(degraded(mon_stack)) == 1 and alerts(mon_stack) == []


def test_prometheus_down(sqlite_url: str) -> None:
    fake = FakePrometheus().start()
    fake.stop()  # its port now refuses connections
    with Stack(database_url=sqlite_url, overrides=monitoring_overrides(fake.url)) as stack:
        open_window(stack)
        w = watcher(stack)
        for _ in range(5):
            w.tick()
        assert alerts(stack) == []
        (notice,) = degraded(stack)
        assert "Prometheus is unreachable (ConnectError" in text_of(notice.args)


def test_an_open_alert_is_neither_cleared_nor_repeated_across_an_outage(
    mon_stack: Stack, fake_prom: FakePrometheus
) -> None:
    open_window(mon_stack)
    w = watcher(mon_stack)
    fake_prom.values = {"trading_auth_failures_total": 25.0}
    w.tick()
    for mode in ("error", "empty", "slow", "http500"):
        fake_prom.mode, fake_prom.delay = mode, 1.0
        w.tick()
        w.tick()
    assert [a.signal_id for a in store(mon_stack).open_alerts("breach")] == ["platform-auth-failures"]
    assert not posts(mon_stack, ":white_check_mark: *Cleared:*")
    fake_prom.mode = "ok"
    w.tick()
    w.tick()
    assert len(alerts(mon_stack)) == 1 and len(degraded(mon_stack)) == 1


def test_the_notice_is_updated_not_reposted_when_the_cause_changes(mon_stack: Stack, fake_prom: FakePrometheus) -> None:
    open_window(mon_stack)
    w = watcher(mon_stack)
    fake_prom.mode = "error"
    w.tick()
    w.tick()
    fake_prom.mode = "empty"
    w.tick()
    assert len(degraded(mon_stack)) == 1
    updates = [c for c in mon_stack.peer.calls_to("chat.update") if "Monitoring degraded" in text_of(c.args)]
    assert updates and CAUSES["empty"] in text_of(updates[-1].args)


def test_not_configured_is_announced_not_degraded(sqlite_url: str) -> None:
    with Stack(database_url=sqlite_url, overrides=monitoring_overrides(None)) as stack:
        open_window(stack)
        w = watcher(stack)
        for _ in range(3):
            w.tick()
        (announced,) = posts(stack, ":eyes: *Post-cutover monitoring opened*")
        shown = text_of(announced.args)
        assert "OPSBOT_PROMETHEUS_URL is not set" in shown and "Cosmos is not configured" in shown
        assert degraded(stack) == [] and alerts(stack) == []
