"""`/gate` end to end: signed slash commands into the real bot; the Slack peer, simulated backend, GitHub and
platform auth on loopback, and a real Cosmos-protocol server."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from bot.gate import probes as gate_probes
from bot.gate.context import GateContext
from bot.gate.result import ProbeResult, passed
from rehearsal.sim.stack import Stack
from tests.support.common import ADMIN, CHANNEL, OPERATOR, STRANGER, text_of, wait_until
from tests.support.gate import (
    GATE_ATTESTED,
    SHA,
    SHA2,
    StackFactory,
    attest,
    attest_gate_items,
    command,
    green,
    item_text,
    run_gate,
    verdicts,
)

ALL_ITEMS = 13


def test_gate_is_go_when_every_condition_passes_and_fills_one_message(gate_stack: Stack) -> None:
    attest_gate_items(gate_stack)
    response_started = time.monotonic()
    final = run_gate(gate_stack)
    shown = text_of(final.args)
    assert final.args["text"].startswith("Release go/no-go: GO for backend " + SHA)
    assert "every go condition passes and no no-go condition holds" in shown
    assert verdicts(final) == {k: "PASS" for k in verdicts(final)} and len(verdicts(final)) == ALL_ITEMS
    # One message, posted once with every item running, then updated in place.
    posts = [c for c in gate_stack.peer.calls_to("chat.postMessage") if "go/no-go" in str(c.args.get("text"))]
    assert len(posts) == 1 and "running…" in text_of(posts[0].args)
    assert final.args["channel"] == CHANNEL
    # Evidence an operator can follow: the CI run link, x-request-ids, Cosmos timings, who attested.
    assert "https://github.com/acme/trading/runs/" in item_text(final, "go-pnpm-verify")
    request_id = gate_store(gate_stack).recent(1)[0].request_id
    assert f"x-request-id {request_id}" in item_text(final, "go-kill-switch-maintenance")
    assert "x-request-id" in item_text(final, "go-tenant-isolation")
    assert "order" in item_text(final, "go-cosmos-execution-data")
    assert f"<@{ADMIN}>" in item_text(final, "go-mobile-interventions")
    assert "does not hold" in item_text(final, "nogo-rollback-unclear")
    assert time.monotonic() - response_started < 10
    # What a later rollback review reads: the stored row says exactly what the message showed.
    row = gate_store(gate_stack).recent(1)[0]
    stored = {doc["item"]: doc for doc in json.loads(row.results)}
    assert len(stored) == ALL_ITEMS and row.verdict == "go" and row.version == SHA
    for item, doc in stored.items():
        assert doc["verdict"] == "pass" and doc["reason"] and doc["reason"] in item_text(final, item), item
    assert "https://github.com/acme/trading/runs/" in stored["go-pnpm-verify"]["evidence"]
    assert f"x-request-id {request_id}" in stored["go-kill-switch-maintenance"]["evidence"]
    assert stored["go-kill-switch-maintenance"]["probe"] == "control-contract"
    assert row.message_ts == final.args["ts"] and row.requested_by == OPERATOR


def gate_store(stack: Stack) -> Any:
    from bot.gate.store import GateStore

    return GateStore(stack.deps.engine, stack.deps.audit)


def test_each_evaluation_is_stored_audited_and_listed_in_history(gate_stack: Stack) -> None:
    run_gate(gate_stack)
    rows = gate_store(gate_stack).recent(5)
    assert len(rows) == 1 and rows[0].verdict == "no_go" and rows[0].version == SHA
    assert rows[0].requested_by == OPERATOR and rows[0].message_ts
    audited = [r for r in gate_stack.deps.audit.rows() if r.action == "gate.evaluated"]
    assert len(audited) == 1 and audited[0].outcome == "no_go" and rows[0].id in audited[0].params
    assert gate_stack.deps.audit.verify().ok
    history = command(gate_stack, "/gate", "history")
    assert rows[0].id in history and "NO-GO" in history and f"<@{OPERATOR}>" in history and SHA in history


def test_no_go_names_what_failed_and_unknown_is_never_go(gate_stack: Stack) -> None:
    gate_stack.github.set_check(SHA, "pnpm lint", "failure")
    final = run_gate(gate_stack)
    seen = verdicts(final)
    assert final.args["text"].startswith("Release go/no-go: NO-GO")
    assert seen["go-pnpm-lint"] == "FAIL" and "concluded failure" in item_text(final, "go-pnpm-lint")
    for check_id in GATE_ATTESTED:  # nobody attested: unknown, which is never GO
        assert seen[check_id] == "UNKNOWN"
        assert f"/gate attest {check_id}" in item_text(final, check_id)
    headline = text_of(final.args)
    assert "1 failed (go-pnpm-lint)" in headline and "3 unknown" in headline


def test_attestation_is_valid_for_the_current_version_only(gate_stack: Stack) -> None:
    attest_gate_items(gate_stack)
    assert verdicts(run_gate(gate_stack))["go-no-legacy-data"] == "PASS"
    green(gate_stack, SHA2)  # a new backend deploy
    final = run_gate(gate_stack)
    assert verdicts(final)["go-no-legacy-data"] == "UNKNOWN"
    assert f"not attested for version {SHA2}" in item_text(final, "go-no-legacy-data")


def test_attest_is_for_admins_and_manual_checks_only(gate_stack: Stack) -> None:
    assert "needs an admin" in attest(gate_stack, "go-no-legacy-data", user=OPERATOR)
    assert "checked automatically" in attest(gate_stack, "go-pnpm-verify")
    answer = attest(gate_stack, "no-such-check")
    assert "not a check of the runbook" in answer and "`smoke-mobile-recovers`" in answer
    assert "Evidence is required" in command(gate_stack, "/gate", "attest go-no-legacy-data", user=ADMIN)
    assert "Not allowed" in command(gate_stack, "/gate", "", user=STRANGER)
    recorded = attest(gate_stack, "smoke-mobile-recovers", "<!channel> https://example.com/run/1")
    assert "<!channel>" not in recorded and f"`{SHA}`" in recorded and "this backend version only" in recorded
    wait_until(lambda: len([r for r in gate_stack.deps.audit.rows() if r.action == "gate.refused"]) >= 5)
    time.sleep(0.3)  # a stray second answer would have landed by now
    assert not [
        c
        for c in gate_stack.peer.calls_to("response_url")
        if "Not allowed" in text_of(c.args) or "Usage" in text_of(c.args)
    ]  # refusals are answered once, by the ack


def test_attest_refuses_when_the_deployed_version_is_unknown(gate_stack: Stack) -> None:
    gate_stack.backend.faults.fail_status = 503
    assert "deployed backend version is unknown" in attest(gate_stack, "go-no-legacy-data")
    assert not [r for r in gate_stack.deps.audit.rows() if r.action == "gate.attested"]


@pytest.fixture
def hang() -> Iterator[threading.Event]:
    release = threading.Event()
    yield release
    release.set()


def test_one_hanging_probe_is_unknown_and_the_message_completes_by_the_deadline(
    make_stack: StackFactory, hang: threading.Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    def hanging(params: Mapping[str, Any], ctx: GateContext) -> ProbeResult:
        hang.wait(60)
        return passed("too late")

    monkeypatch.setitem(gate_probes.PROBES, "audit-complete", hanging)
    stack = make_stack(OPSBOT_GATE_DEADLINE_SECONDS=2)
    attest_gate_items(stack)
    started = time.monotonic()
    final = run_gate(stack)
    took = time.monotonic() - started
    seen = verdicts(final)
    assert took < 2 + 1.5, took
    assert len(seen) == ALL_ITEMS
    assert seen.pop("nogo-audit-incomplete") == "UNKNOWN"
    assert "timed out after 2 s" in item_text(final, "nogo-audit-incomplete")
    assert set(seen.values()) == {"PASS"}  # everything else answered in time
    assert final.args["text"].startswith("Release go/no-go: NO-GO")


def test_a_silent_jwks_endpoint_cannot_hang_the_gate(make_stack: StackFactory) -> None:
    with socket.socket() as blackhole:  # accepts connections, never answers
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen(16)
        url = f"http://127.0.0.1:{blackhole.getsockname()[1]}/.well-known/jwks.json"
        stack = make_stack(OPSBOT_GATE_DEADLINE_SECONDS=2, PLATFORM_JWT_JWKS_URL=url)
        started = time.monotonic()
        final = run_gate(stack)
        assert time.monotonic() - started < 2 + 1.5
    assert verdicts(final)["go-platform-auth"] == "UNKNOWN"
    assert "timed out" in item_text(final, "go-platform-auth")
    assert verdicts(final)["go-pnpm-verify"] == "PASS"


def test_backend_down_makes_ci_and_attestations_unknown_not_pass(gate_stack: Stack) -> None:
    attest_gate_items(gate_stack)
    gate_stack.backend.faults.fail_status = 503
    final = run_gate(gate_stack)
    seen = verdicts(final)
    for item in ("go-pnpm-verify", "go-pnpm-lint", "go-pnpm-smoke", "go-mobile-interventions"):
        assert seen[item] == "UNKNOWN", item
    assert "deployed version unknown" in item_text(final, "go-pnpm-verify")
    assert final.args["text"].startswith("Release go/no-go: NO-GO for backend unknown")


def test_the_message_fills_in_while_slow_probes_are_still_running(gate_stack: Stack) -> None:
    gate_stack.github.faults.latency_s = 1.5  # CI evidence arrives last
    final = run_gate(gate_stack)
    ts = final.args["ts"]
    updates = [c for c in gate_stack.peer.calls_to("chat.update") if c.args.get("ts") == ts]
    partial = [c for c in updates if c is not final and "running…" in text_of(c.args)]
    assert partial, "no intermediate update"
    first = partial[0]
    assert first.args["text"] == "Release go/no-go: evaluating…"
    assert "checks answered" in text_of(first.args) and SHA in text_of(first.args)  # the version is known by then
    assert verdicts(first)["go-platform-auth"] == "PASS" and "go-pnpm-verify" not in verdicts(first)
    assert "*running…* 1. `pnpm verify` passes" in item_text(first, "go-pnpm-verify")
    assert len(updates) <= 1 + 2 * 2  # throttled: at most about two updates a second, plus the final one
    assert verdicts(final)["go-pnpm-verify"] == "PASS"


def test_a_backend_version_with_mrkdwn_in_it_is_shown_escaped(gate_stack: Stack) -> None:
    gate_stack.backend.set_version("<!channel> v2")
    final = run_gate(gate_stack)
    assert final.args["text"].endswith("for backend &lt;!channel&gt; v2")
    mrkdwn = [
        node["text"] for block in final.args["blocks"] for node in _text_objects(block) if node.get("type") == "mrkdwn"
    ]
    assert mrkdwn and not [text for text in mrkdwn if "<!channel>" in text]  # plain_text shows it literally


def _text_objects(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if "type" in node and "text" in node and isinstance(node["text"], str):
            yield node
        for value in node.values():
            yield from _text_objects(value)
    elif isinstance(node, list):
        for item in node:
            yield from _text_objects(item)
