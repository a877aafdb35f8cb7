"""Entering a stage checks that stage's entry conditions (runbook `entry`), through signed requests: open
hard-trigger alerts, the soak of the stage being left and the manual mobile smoke refuse the move, at the
request and again at the approval, and the refusal names every one of them."""

from __future__ import annotations

from bot.monitoring.models import MonitoringAlert
from bot.monitoring.store import BREACH, MonitoringStore, new_alert_id, system_entry
from rehearsal.sim.stack import Stack
from tests.e2e.test_cutover_flow import advance, announcements, current_stage, prepare, refused, request_advance
from tests.support.common import ADMIN2, Clock, click, text_of
from tests.support.gate import GATE_ATTESTED, SHA2, StackFactory, attest, green, run_gate


def open_alert(stack: Stack, clock: Clock, signal_id: str = "platform-auth-failures", value: float = 785) -> str:
    """An open breach as the watcher records it (the monitoring tests drive the watcher itself)."""
    now = clock()
    alert = MonitoringAlert(
        id=new_alert_id(),
        kind=BREACH,
        signal_id=signal_id,
        status="open",
        trigger="auth",
        threshold=10,
        value=value,
        peak=value,
        since=now,
        raised_at=now,
        last_seen_at=now,
    )
    assert MonitoringStore(stack.deps.engine, stack.deps.audit).claim_alert(
        alert, system_entry("monitoring.alert_raised", "open", {"signal": signal_id})
    )
    return alert.id


def clear_alert(stack: Stack, alert_id: str, clock: Clock) -> None:
    MonitoringStore(stack.deps.engine, stack.deps.audit).finish_alert(
        alert_id, status="cleared", at=clock(), entry=system_entry("monitoring.alert_cleared", "cleared", {})
    )


def test_open_hard_trigger_alerts_refuse_the_move_at_request_and_at_approval(make_stack: StackFactory) -> None:
    stack = make_stack()
    clock = Clock()
    stack.deps.clock = clock
    prepare(stack)
    first = open_alert(stack, clock)
    open_alert(stack, clock, "kill-switch-misfires", 1)
    answer = refused(stack)
    assert "2 hard-trigger alerts open" in answer and "platform auth failures" in answer and first in answer
    assert "kill-switch misfires" in answer and current_stage(stack) == "backend-internal-validation"

    for alert in MonitoringStore(stack.deps.engine, stack.deps.audit).open_alerts(BREACH):
        clear_alert(stack, alert.id, clock)
    approval_id, posted = request_advance(stack)
    assert "Entry conditions hold now: a GO for the deployed version" in text_of(posted.args)
    open_alert(stack, clock, "token-refresh-failures", 40)  # opened while the request waits
    click(stack, user=ADMIN2, approval_id=approval_id, posted=posted)
    update = stack.peer.wait_for_call("chat.update", where=lambda c: "Not advanced" in text_of(c.args), timeout=15)
    assert "1 hard-trigger alert open" in text_of(update[-1].args) and "token refresh failures" in text_of(
        update[-1].args
    )
    assert current_stage(stack) == "backend-internal-validation" and not announcements(stack)


def test_the_stage_left_must_be_clean_for_its_soak(make_stack: StackFactory) -> None:
    stack = make_stack(OPSBOT_SOAK_SECONDS=120)
    clock = Clock()
    stack.deps.clock = clock
    prepare(stack)
    clock.advance(121)  # stage 1 is counted from when the bot first saw the backend
    prepare(stack)
    advance(stack)
    assert current_stage(stack) == "web-internal-adoption"
    prepare(stack)
    answer = refused(stack)
    assert "Web internal adoption has been clean for 0 s" in answer and "needs 2 min: wait until" in answer

    clock.advance(90)
    alert = open_alert(stack, clock)
    clock.advance(20)
    clear_alert(stack, alert, clock)  # cleared at 110 s: the soak starts again from here
    clock.advance(60)
    answer = refused(stack)
    assert "clean for 60 s" in answer and f"when alert {alert} (platform-auth-failures) was last seen" in answer
    clock.advance(61)
    prepare(stack)
    advance(stack)
    assert current_stage(stack) == "mobile-internal-beta"


def test_broader_production_needs_the_manual_mobile_smoke_for_this_version(make_stack: StackFactory) -> None:
    stack = make_stack()
    for _ in range(3):
        prepare(stack)
        advance(stack)
    assert current_stage(stack) == "controlled-operator-rollout"
    green(stack, SHA2)  # the backend deploy cycle, so only the smoke is missing
    for item in stack.deps.runbook.stage("controlled-operator-rollout").checks:
        if item.kind == "attested":
            attest(stack, item.id)
    for check_id in GATE_ATTESTED:
        attest(stack, check_id)
    for item in stack.deps.runbook.smoke.manual[:4]:
        attest(stack, item.id)
    run_gate(stack)
    answer = refused(stack)
    assert answer.count("•") == 1, answer
    assert "manual mobile smoke not attested for def5678: 1 of 5 steps missing (`smoke-mobile-recovers`)" in answer
    attest(stack, "smoke-mobile-recovers")
    advance(stack)
    assert current_stage(stack) == "broader-production-cutover"
