"""The "runtime control drift" signal the bot measures itself, against a real Cosmos-protocol server: the
backend's trading-control read now against the Cosmos `trading-control` documents. A halt state that
differs is one alert with the controls trigger; bookkeeping that differs (the revision) is not drift;
an unreachable Cosmos is no data, never zero: no alert, and it counts toward the degraded notice."""

from __future__ import annotations

import socket
from typing import Any

from rehearsal.sim.cosmos import CosmosServer
from rehearsal.sim.stack import Stack
from tests.support.common import text_of
from tests.support.gate import StackFactory, seed
from tests.support.monitoring import FakePrometheus, alerts, degraded, monitoring_overrides, open_window, store, watcher

DRIFT = "runtime control drift between backend memory and Cosmos control state"


def drift_stack(make_stack: StackFactory, fake_prom: FakePrometheus, **overrides: Any) -> Stack:
    stack = make_stack(**monitoring_overrides(fake_prom.url), **overrides)
    open_window(stack)
    return stack


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_halt_state_cosmos_does_not_share_is_one_drift_alert(
    make_stack: StackFactory, cosmos_server: CosmosServer, fake_prom: FakePrometheus
) -> None:
    halted_in_cosmos = [{"id": "global", "halted": True, "reason": "written by another writer", "revision": 1}]
    stack = drift_stack(make_stack, fake_prom, database=seed(cosmos_server, control=halted_in_cosmos))
    assert stack.backend.control()["global"]["halted"] is False
    w = watcher(stack)
    for _ in range(3):  # the breach lasts: still one alert
        w.tick()
    (sent,) = alerts(stack)
    shown = text_of(sent.args)
    assert f"Monitoring alert: {DRIFT}: 1 drifted document > 0 drifted documents" in sent.args["text"]
    assert "*Hard rollback trigger 3 of 5:* Trading controls not applied" in shown
    (row,) = store(stack).open_alerts("breach")
    assert row.signal_id == "runtime-control-drift" and row.trigger == "controls" and row.value == 1
    assert degraded(stack) == []


def test_a_revision_that_differs_alone_is_not_drift(
    make_stack: StackFactory, cosmos_server: CosmosServer, fake_prom: FakePrometheus
) -> None:
    # Same halt state, another revision: what /halt status shows as a note, not drift to roll back for.
    same_state = [{"id": "global", "halted": False, "reason": None, "revision": 7}]
    stack = drift_stack(make_stack, fake_prom, database=seed(cosmos_server, control=same_state))
    w = watcher(stack)
    for _ in range(3):
        w.tick()
    assert alerts(stack) == [] and degraded(stack) == []


def test_unreachable_cosmos_is_no_data_and_counts_toward_degraded(
    make_stack: StackFactory, fake_prom: FakePrometheus
) -> None:
    stack = drift_stack(make_stack, fake_prom, COSMOS_ENDPOINT=f"http://127.0.0.1:{closed_port()}/")
    w = watcher(stack)
    w.tick()
    assert degraded(stack) == []  # one blind pass is not yet a notice
    w.tick()
    w.tick()
    assert alerts(stack) == [] and store(stack).open_alerts("breach") == []
    (notice,) = degraded(stack)
    shown = text_of(notice.args)
    assert "1 of 13 watched signals cannot be evaluated" in shown and "`runtime-control-drift`" in shown
    assert "Cosmos" in shown and "Missing data never raises or clears an alert" in shown
