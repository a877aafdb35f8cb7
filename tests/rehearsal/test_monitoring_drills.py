"""The workspace's drills move the simulated backend's `/metrics` the way the faults would in production,
so Prometheus (tests/e2e/test_monitoring_e2e.py) sees them: the backend's simulated users fail to sign in
while platform auth fails, get 503s while the backend fails, and a halt acknowledged but not applied is
a trading-control update failure. Read over HTTP with prometheus_client's own parser, as a scrape."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from rehearsal.sim.backend import Faults
from rehearsal.sim.backend_metrics import REFRESHES_PER_S, REQUESTS_PER_S, SIGNINS_PER_S, ClientTraffic, SimMetrics
from rehearsal.sim.stack import Stack
from rehearsal.workspace.drills import inject
from tests.support.common import HALT_A, HALT_B, click, request_halt, wait_until

AUTH = "trading_auth_failures_total"
REFRESH = "trading_token_refresh_failures_total"
HTTP = "trading_http_responses_total"
SOCKETS = "trading_websocket_connections_total"


def scrape(stack: Stack) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """What Prometheus would read from the backend now: (sample name, labels) -> value."""
    text = httpx.get(f"{stack.backend.url}/metrics", timeout=5).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def fake_clock(stack: Stack) -> list[float]:
    """Drive the backend's simulated users with a clock the test moves."""
    now = [0.0]
    stack.backend.traffic = ClientTraffic(stack.backend.metrics, clock=lambda: now[0])
    return now


def test_only_whole_seconds_are_counted_and_the_rest_carries_over() -> None:
    now = [0.0]
    metrics = SimMetrics()
    traffic = ClientTraffic(metrics, clock=lambda: now[0])
    faults = Faults(signins_failing=True)
    now[0] = 1.6
    assert traffic.advance(faults) == 1
    now[0] = 2.1  # 1.5 s since the last count: one more second, 0.5 s left over
    assert traffic.advance(faults) == 1 and traffic.advance(faults) == 0
    assert metrics.value(AUTH) == 2 * SIGNINS_PER_S and metrics.value(REFRESH) == 2 * REFRESHES_PER_S


def test_the_auth_drill_makes_sign_ins_fail_only_while_it_is_on(stack: Stack) -> None:
    now = fake_clock(stack)
    quiet = scrape(stack)
    assert quiet[(AUTH, ())] == 0 and quiet[(REFRESH, ())] == 0
    inject(stack, "auth-failing", True)
    now[0] = 3.0
    inject(stack, "auth-failing", False)  # switched off before any scrape: the 3 s still count
    now[0] = 8.0
    seen = scrape(stack)
    assert seen[(AUTH, ())] == 3 * SIGNINS_PER_S and seen[(REFRESH, ())] == 3 * REFRESHES_PER_S
    assert seen[(HTTP, (("status", "200"),))] >= 8 * REQUESTS_PER_S  # the API kept answering its users
    assert stack.auth.faults.fail_status is None  # the JWKS answers again


def test_the_backend_failing_drill_answers_its_users_503(stack: Stack) -> None:
    now = fake_clock(stack)
    inject(stack, "backend-failing", True)
    now[0] = 2.0
    seen = scrape(stack)
    inject(stack, "backend-failing", False)
    assert seen[(HTTP, (("status", "503"),))] == 2 * REQUESTS_PER_S
    assert seen[(SOCKETS, (("outcome", "failed"),))] == 2 and seen[(SOCKETS, (("outcome", "ok"),))] == 0
    assert seen[(AUTH, ())] == 0


def test_a_halt_not_applied_is_a_trading_control_update_failure(stack: Stack) -> None:
    assert scrape(stack)[("trading_control_update_failures_total", ())] == 0
    inject(stack, "halt-not-applied", True)
    approval_id, posted = request_halt(stack, user=HALT_A)
    click(stack, user=HALT_B, approval_id=approval_id, posted=posted)
    wait_until(lambda: any(r.action == "halt.failed" for r in stack.deps.audit.for_approval(approval_id)), timeout=10)
    assert stack.backend.control()["global"]["halted"] is False
    assert scrape(stack)[("trading_control_update_failures_total", ())] == 1
