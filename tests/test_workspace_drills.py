"""Drills change what a person meets in the channel, not just a switch: the bot's own answers under each fault."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.workspace_support import HALT_A, OPERATOR, OWNER, Running, eventually, everything, running_workspace

GATE_S = 30
ROLLBACK_S = 60


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with running_workspace(tmp_path_factory.mktemp("workspace"), use_cosmos=False) as running:
        yield running


@pytest.fixture(autouse=True)
def drills_off(ws: Running) -> Iterator[None]:
    yield
    ws.session.drills.all_off()


def gate_line(ws: Running, item: str) -> tuple[str, str]:
    """Run `/gate` as the operator; the finished card's text and its line for `item`."""
    before = {m["ts"] for m in ws.messages(OPERATOR)}
    ws.command(OPERATOR, "/gate")

    def card() -> dict[str, object] | None:
        found = ws.find(OPERATOR, "Release go/no-go: ", ephemeral=False, timeout=GATE_S)
        return found if found["ts"] not in before and "· took " in everything(found) else None  # finished

    shown = everything(eventually(card, timeout=GATE_S, what="a new, finished gate card"))
    return shown, next(line for line in shown.splitlines() if item in line)


def test_halt_not_applied_is_reported_loudly_as_hard_trigger_3(ws: Running) -> None:
    ws.drill("halt-not-applied", True)
    ws.command(OPERATOR, "/halt tenant:drill-one acknowledged but not applied")
    request = ws.find(HALT_A, "acknowledged but not applied", ephemeral=False)
    assert ws.click(HALT_A, request).status_code == 200
    outcome = ws.find(HALT_A, "NOT APPLIED", ephemeral=False, top_level=True)
    shown = everything(outcome)
    assert outcome["ts"] == request["ts"]
    assert ("*HALT NOT APPLIED:* the backend accepted it but the read-back shows `tenant:drill-one` still trading"
            in shown)
    assert "hard rollback trigger 3 of the runbook" in shown and "/rollback --trigger controls" in shown
    told = ws.find(HALT_A, "HALT NOT APPLIED", ephemeral=False)  # and a new message in its thread, to all
    assert told.get("thread_ts") == request["ts"] and f"approved by <@{HALT_A}>" in everything(told)
    scopes = ws.session.world.stack.backend.control()["scopes"]
    assert not any(s["scope"] == "tenant:drill-one" and s["disabled"] for s in scopes)


def test_a_failing_rollback_workflow_fails_the_rollback_and_status_says_so(ws: Running) -> None:
    ws.drill("rollback-workflow-failing", True)
    ws.command(OPERATOR, "/rollback revert run will fail in this drill --trigger recovery")
    request = ws.find(OWNER, "revert run will fail in this drill", ephemeral=False, timeout=30)
    assert ws.click(OWNER, request).status_code == 200
    stopped = ws.find(OPERATOR, "stopped at revert-deployment:", ephemeral=False, timeout=ROLLBACK_S)
    assert "the revert run concluded `failure`" in everything(stopped)
    assert "The cutover stays frozen" in everything(stopped)
    ws.command(OPERATOR, "/rollback status")
    status = everything(ws.find(OPERATOR, "failed at revert-deployment", ephemeral=True))
    assert "2. :x: revert the most recent monorepo deployment" in status and "Cutover frozen" in status
    assert not ws.session.drills.is_on("rollback-workflow-failing")  # used up by the run it failed
    assert ws.state()["world"]["backend"]["version"] == "abc1234e5f6a"  # nothing was reverted


def test_platform_auth_failing_makes_the_gate_item_unknown_and_the_gate_no_go(ws: Running) -> None:
    _, healthy = gate_line(ws, "`go-platform-auth`")
    assert "*PASS*" in healthy, healthy  # without the drill the same probe passes
    ws.drill("auth-failing", True)
    shown, failing = gate_line(ws, "`go-platform-auth`")
    assert "*UNKNOWN*" in failing, failing  # README: JWKS 5xx is UNKNOWN, never GO
    assert "Release go/no-go: NO-GO" in shown
    verdict = next(line for line in shown.splitlines() if "*NO-GO*" in line)
    assert "go-platform-auth" in verdict
    reason = shown.splitlines()[shown.splitlines().index(failing) + 1]
    assert "503" in reason, reason
