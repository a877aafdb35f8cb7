"""Drills change what a person meets in the channel, not just a switch: the bot's own answers under each fault."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.support.workspace import HALT_A, OPERATOR, OWNER, Running, eventually, everything, running_workspace

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
    assert (
        "*HALT NOT APPLIED:* the backend accepted it but the read-back shows `tenant:drill-one` still trading" in shown
    )
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


# -- the kill switch's drills: the halt happens, and the channel catches up -----------------------------


def scope_halted(ws: Running, scope: str) -> bool:
    control = ws.session.world.stack.backend.control()
    return any(s["scope"] == scope and s["disabled"] for s in control["scopes"])


def test_slack_slow_still_halts_and_the_card_arrives(ws: Running) -> None:
    ws.drill("slack-slow", True)
    ws.command(HALT_A, "/halt symbol:SLOWSLACK drill slack slow --now")
    eventually(lambda: scope_halted(ws, "symbol:SLOWSLACK") or None, timeout=15, what="the halt")
    card = ws.find(HALT_A, "SLOWSLACK", ephemeral=False, timeout=20)
    eventually(
        lambda: "Applied" in everything(ws.find(HALT_A, "SLOWSLACK", ephemeral=False)) or None,
        timeout=20,
        what="the card showing the outcome",
    )
    assert card["ts"]


def test_slack_down_still_halts(ws: Running) -> None:
    ws.drill("slack-down", True)
    ws.command(HALT_A, "/halt symbol:SLACKDOWN drill slack down --now")
    eventually(lambda: scope_halted(ws, "symbol:SLACKDOWN") or None, timeout=15, what="the halt")
    ws.drill("slack-down", False)
    ws.command(OPERATOR, "/halt status")
    assert "symbol:SLACKDOWN" in everything(ws.find(OPERATOR, "SLACKDOWN", ephemeral=True))


def test_slack_rate_limiting_answers_429_with_retry_after(ws: Running) -> None:
    ws.drill("slack-rate-limiting", True)
    peer = ws.session.world.stack.peer
    answer = httpx.post(
        peer.api_url + "chat.postMessage",
        data={"channel": "C0INCIDENT", "text": "x"},
        headers={"Authorization": f"Bearer {peer.bot_token}"},
        timeout=5,
    )
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "30"
    assert answer.json() == {"ok": False, "error": "ratelimited"}
    ws.drill("slack-rate-limiting", False)
    assert ws.session.drills.active() == []


def test_store_down_break_glass_halts_resume_is_refused_and_the_audit_merges_after(ws: Running) -> None:
    ws.drill("store-down", True)
    ws.command(HALT_A, "/halt symbol:STOREDOWN drill store down --now")
    pending = ws.find(HALT_A, "Audit pending", ephemeral=False)
    assert "BREAK-GLASS" in everything(pending) and scope_halted(ws, "symbol:STOREDOWN")
    ws.command(OPERATOR, "/halt resume symbol:STOREDOWN drill store down")
    refusal = everything(ws.find(OPERATOR, "store is unavailable", ephemeral=True))
    assert "nothing was done" in refusal
    ws.drill("store-down", False)
    merged = everything(ws.find(HALT_A, "audit row(s) journaled", ephemeral=False, timeout=20))
    assert "*Audit merged:* 2 audit row(s)" in merged

    def confirmable_again() -> str | None:  # the card itself, once the merge has been told on it
        cards = [everything(m) for m in ws.messages(HALT_A) if not m["ephemeral"] and not m.get("thread_ts")]
        done = [c for c in cards if "STOREDOWN" in c and "Confirm halt" in c and "Audit merged" in c]
        return done[-1] if done else None

    eventually(confirmable_again, timeout=20, what="the STOREDOWN card, confirmable again")
    assert ws.session.world.stack.deps.audit.verify().ok


def test_bot_crash_refuses_while_down_and_the_restarted_bot_halts(ws: Running) -> None:
    ws.drill("bot-crash", True)
    ws.command(HALT_A, "/halt symbol:CRASHED drill bot crash --now")
    assert "did not answer" in everything(ws.find(HALT_A, "did not answer", ephemeral=True))
    assert not scope_halted(ws, "symbol:CRASHED")
    ws.drill("bot-crash", False)
    ws.command(HALT_A, "/halt symbol:RESTARTED drill bot crash --now")
    eventually(lambda: scope_halted(ws, "symbol:RESTARTED") or None, timeout=15, what="the halt after the restart")


def audit_shown(ws: Running) -> list[str]:
    return list(ws.state()["world"]["audit"])


def cli_verify(ws: Running) -> subprocess.CompletedProcess[str]:
    """`opsbot audit verify` as an operator runs it against the workspace's database file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSBOT_", "SLACK_", "JWT_"))}
    env.update(OPSBOT_DATABASE_URL=ws.session.world.stack.deps.settings.database_url, OPSBOT_ENV="development")
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "audit", "verify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("drill", "named"), [("audit-truncate", "TRUNCATED: checkpoint #"), ("audit-rehash", "REWRITTEN: at seq ")]
)
def test_tampering_with_the_audit_is_named_by_verify_in_the_page_and_the_cli(
    ws: Running, drill: str, named: str
) -> None:
    ws.command(OPERATOR, f"/halt tenant:{drill} rehearsing an audit tamper")
    request = ws.find(HALT_A, f"tenant:{drill}", ephemeral=False)
    assert ws.click(HALT_A, request).status_code == 200
    outcome = eventually(
        lambda: next((m for m in ws.messages(HALT_A) if m["ts"] == request["ts"] and "audit #" in everything(m)), None),
        timeout=30,
        what="the card with its signed checkpoint line",
    )
    line = re.search(r"audit #(\d+) · ([0-9a-f]{16})…, signed", everything(outcome))
    assert line is not None
    intact = audit_shown(ws)
    assert intact[0] == "$ opsbot audit verify" and "audit chain intact:" in intact[1], intact
    ws.drill(drill, True)
    shown = "\n".join(audit_shown(ws))
    assert named in shown and "intact" not in shown
    assert f"checkpoint #{line[1]} · {line[2]}…" in shown and "the channel line " in shown  # the channel witnessed
    cli = cli_verify(ws)
    assert cli.returncode == 1 and named in cli.stderr, cli.stderr
    ws.drill(drill, False)
    assert "audit chain intact:" in audit_shown(ws)[1]
    assert cli_verify(ws).returncode == 0
