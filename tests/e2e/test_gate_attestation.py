"""Go 7 needs the contract probe AND a person's word for web and mobile; the gate leads with open hard-trigger
alerts and kill-switch misfires; evidence with underscores renders as it is. End to end over signed requests."""

from __future__ import annotations

import json

from bot.gate.store import GateStore
from bot.monitoring.models import MonitoringAlert
from bot.monitoring.store import BREACH, OPEN, MonitoringStore, new_alert_id, system_entry
from rehearsal.sim.stack import Stack
from rehearsal.slack.calls import ApiCall
from tests.support.common import ADMIN, CHANNEL, HALT_A, HALT_B, click, request_halt, wait_until
from tests.support.gate import SHA, attest, command, item_text, run_gate, verdicts

KILL_SWITCH = "go-kill-switch-maintenance"


def open_breach(stack: Stack, signal_id: str, value: float) -> None:
    """An open monitoring alert, as the watcher records one for a breached signal."""
    signal = next(s for s in stack.deps.runbook.signals() if s.id == signal_id)
    now = stack.deps.now()
    row = MonitoringAlert(
        id=new_alert_id(),
        kind=BREACH,
        signal_id=signal.id,
        status=OPEN,
        trigger=signal.trigger or "",
        threshold=signal.threshold,
        comparison=signal.comparison,
        value=value,
        peak=value,
        since=now,
        raised_at=now,
        last_seen_at=now,
        channel=CHANNEL,
    )
    store = MonitoringStore(stack.deps.engine, stack.deps.audit)
    assert store.claim_alert(row, system_entry("monitoring.alert", "accepted", {"alert_id": row.id}))


def halt_not_applied(stack: Stack) -> None:
    """The "Halt not applied" drill: a halt acknowledged by the backend whose read-back shows it not applied."""
    stack.backend.faults.halt_not_applied = True
    approval_id, posted = request_halt(stack, user=HALT_A)
    click(stack, user=HALT_B, approval_id=approval_id, posted=posted)
    wait_until(
        lambda: any(
            r.action == "halt.failed" and r.outcome == "not_applied" for r in stack.deps.audit.for_approval(approval_id)
        ),
        timeout=10,
    )


def headline(call: ApiCall) -> str:
    return str(call.args["blocks"][1]["text"]["text"])


def test_drill_halt_not_applied_with_open_alerts_is_not_go_on_the_contract_alone(gate_stack: Stack) -> None:
    """The operator's rehearsal: every other go item green, the contract readable, web/mobile not attested."""
    for check_id in ("go-mobile-interventions", "go-no-legacy-data"):
        assert "attested" in attest(gate_stack, check_id)
    halt_not_applied(gate_stack)
    open_breach(gate_stack, "trading-control-update-failures", 1)
    open_breach(gate_stack, "kill-switch-misfires", 1)

    final = run_gate(gate_stack)
    assert final.args["text"].startswith("Release go/no-go: NO-GO")
    assert verdicts(final)[KILL_SWITCH] == "UNKNOWN"
    shown = item_text(final, KILL_SWITCH)
    assert "match the contract" in shown  # the automatic part passed…
    assert f"web and mobile validation NOT attested for version {SHA}" in shown  # …the person's part is missing
    assert f"`/gate attest {KILL_SWITCH} &lt;evidence&gt;`" in shown and "Evidence: x-request-id " in shown
    top = headline(final)
    assert top.startswith(":rotating_light: 2 monitoring alerts with hard rollback triggers are open: ")
    assert "trading-control update failures: 1 failure &gt; 0 failures" in top and "(trigger controls" in top
    assert ":rotating_light: 1 kill-switch misfire in the last 60 min" in top
    assert "1 unknown (go-kill-switch-maintenance)" in top

    answer = attest(gate_stack, KILL_SWITCH, "halt and maintenance banners on web 3.1 and iOS 2.4")
    assert f"attested `{KILL_SWITCH}` (web and mobile validation; `/gate` still runs its probe)" in answer
    final = run_gate(gate_stack)
    # Decision: the warnings stand above the verdict; the runbook's go/no-go rules alone decide it.
    assert final.args["text"].startswith("Release go/no-go: GO")
    assert ":rotating_light: 2 monitoring alerts" in headline(final) and "*GO*" in headline(final)
    shown = item_text(final, KILL_SWITCH)
    assert verdicts(final)[KILL_SWITCH] == "PASS" and f"web and mobile validation attested by <@{ADMIN}>" in shown
    assert "attested: halt and maintenance banners on web 3.1 and iOS 2.4" in shown

    # The stored evaluation keeps both parts, and its audit row the warnings the operator saw.
    row = GateStore(gate_stack.deps.engine, gate_stack.deps.audit).recent(1)[0]
    doc = next(d for d in json.loads(row.results) if d["item"] == KILL_SWITCH)
    assert doc["verdict"] == "pass" and doc["probe_result"]["verdict"] == "pass"
    assert "x-request-id" in doc["probe_result"]["evidence"] and "attested by" not in doc["probe_result"]["reason"]
    audited = [r for r in gate_stack.deps.audit.rows() if r.action == "gate.evaluated"][-1]
    warned = json.loads(audited.params)["warnings"]
    assert len(warned) == 2 and "kill-switch misfire" in warned[1]


def test_a_contract_failure_is_fail_even_when_web_and_mobile_were_attested(gate_stack: Stack) -> None:
    assert "attested" in attest(gate_stack, KILL_SWITCH)
    gate_stack.backend.faults.fail_status = 401  # the backend refuses the bot: the contract cannot be read
    final = run_gate(gate_stack)
    assert verdicts(final)[KILL_SWITCH] == "FAIL"
    assert "the backend refused the bot (HTTP 401" in item_text(final, KILL_SWITCH)


def test_a_quiet_gate_has_no_warning_lines(gate_stack: Stack) -> None:
    top = headline(run_gate(gate_stack))
    assert top.startswith(":red_circle: *NO-GO*") and ":rotating_light:" not in top


def test_stage_one_contract_check_does_not_wait_for_go_7s_attestation_and_evidence_renders_plainly(
    gate_stack: Stack,
) -> None:
    run_gate(gate_stack)  # go 7 not attested: its item is UNKNOWN, but its probe passed
    status = command(gate_stack, "/cutover", "status")
    line = next(x for x in status.splitlines() if "`backend-runtime-control-api`" in x)
    assert line.strip().startswith(":white_check_mark: *passed*"), status
    # Cosmos evidence names `dynamic_config`: shown as a labelled plain line, never inside `_…_`.
    evidence = next(x for x in status.split("`backend-control-containers`", 1)[1].splitlines() if "Evidence:" in x)
    assert "dynamic_config" in evidence and " — _" not in status
    assert evidence.count("_") == evidence.split("Evidence: ", 1)[1].count("_")
