"""Cosmos gate probes and drift against a real Cosmos-protocol server (@vercel/cosmosdb-server): success
that touches no other document, a missing container, unreachable and unconfigured Cosmos, and the drift
line of /halt status and /cutover status."""

from __future__ import annotations

import socket
import time
from typing import Any

from bot.gate.probes import PROBES
from bot.gate.result import Verdict
from rehearsal.sim.cosmos import CosmosServer
from rehearsal.sim.stack import Stack
from tests.support.gate import CONTAINERS, StackFactory, command, cosmos_settings, seed
from tests.support.probes import World


def snapshot(server: CosmosServer, database: str) -> dict[str, list[dict[str, Any]]]:
    db = server.client().get_database_client(database)
    return {
        c["id"]: sorted(db.get_container_client(c["id"]).read_all_items(), key=lambda d: d["id"])
        for c in db.list_containers()
    }


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_cosmos_probes_pass_and_touch_no_other_document(world: World, cosmos_server: CosmosServer) -> None:
    database = seed(cosmos_server)
    before = snapshot(cosmos_server, database)
    ctx = world.context(**cosmos_settings(cosmos_server, database))
    control = PROBES["cosmos-control-plane"]({}, ctx)
    execution = PROBES["cosmos-execution-data"]({}, ctx)
    assert control.verdict is Verdict.PASS and "dynamic_config, trading-control" in control.reason
    assert execution.verdict is Verdict.PASS and "order, trade-history, manual-entry" in execution.reason
    assert execution.evidence.startswith(f"{database}: order ") and " ms" in execution.evidence
    assert snapshot(cosmos_server, database) == before  # probe documents were deleted; nothing else changed


def test_a_missing_container_fails_naming_it(world: World, cosmos_server: CosmosServer) -> None:
    partial = {k: v for k, v in CONTAINERS.items() if k != "trade-history"}
    ctx = world.context(**cosmos_settings(cosmos_server, seed(cosmos_server, partial)))
    result = PROBES["cosmos-execution-data"]({}, ctx)
    assert result.verdict is Verdict.FAIL and "container 'trade-history' not found" in result.reason
    assert result.evidence.startswith("order ")  # what did pass before it is kept as evidence
    assert PROBES["cosmos-control-plane"]({}, ctx).verdict is Verdict.PASS


def test_unreachable_cosmos_is_unknown_quickly(world: World, cosmos_server: CosmosServer) -> None:
    ctx = world.context(
        COSMOS_ENDPOINT=f"http://127.0.0.1:{closed_port()}/", COSMOS_KEY=cosmos_server.key, COSMOS_DATABASE="db"
    )
    started = time.monotonic()
    result = PROBES["cosmos-control-plane"]({}, ctx)
    assert time.monotonic() - started < 3
    assert result.verdict is Verdict.UNKNOWN and "unreachable" in result.reason


def test_unconfigured_cosmos_is_unknown(world: World) -> None:
    result = PROBES["cosmos-execution-data"]({}, world.context(COSMOS_KEY=""))
    assert result.verdict is Verdict.UNKNOWN
    assert result.reason == "Cosmos is not configured (COSMOS_ENDPOINT, COSMOS_KEY, COSMOS_DATABASE not set)"


def test_halt_and_cutover_status_report_drift(make_stack: StackFactory, cosmos_server: CosmosServer) -> None:
    halted_in_cosmos = [
        {"id": "global", "halted": True, "reason": "stale", "revision": 9},
        {"id": "scope:tenant:acme", "disabled": True, "reason": "leak", "revision": 8},
    ]
    stack = make_stack(database=seed(cosmos_server, control=halted_in_cosmos))
    for name, text in (("/halt", "status"), ("/cutover", "status")):
        shown = command(stack, name, text)
        assert "Runtime control drift between backend memory and Cosmos control state" in shown, name
        assert "global: backend not halted, Cosmos halted" in shown
        assert "tenant:acme: backend enabled (no entry), Cosmos disabled" in shown


def test_status_answers_with_drift_unknown_when_cosmos_is_unreachable(
    make_stack: StackFactory, cosmos_server: CosmosServer
) -> None:
    stack: Stack = make_stack(COSMOS_ENDPOINT=f"http://127.0.0.1:{closed_port()}/")
    started = time.monotonic()
    shown = command(stack, "/halt", "status")
    assert time.monotonic() - started < 4
    assert "Global: trading" in shown and "Drift unknown:" in shown and "unreachable" in shown
    assert "Drift unknown:" in command(stack, "/cutover", "status")


def test_status_says_drift_unknown_without_cosmos(make_stack: StackFactory) -> None:
    stack = make_stack(COSMOS_ENDPOINT="")
    assert "Drift unknown:* Cosmos is not configured (COSMOS_ENDPOINT not set)" in command(stack, "/halt", "status")


def test_silent_cosmos_cannot_hold_up_halt_status(make_stack: StackFactory) -> None:
    with socket.socket() as blackhole:  # accepts connections, never answers
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen(16)
        stack = make_stack(COSMOS_ENDPOINT=f"http://127.0.0.1:{blackhole.getsockname()[1]}/")
        started = time.monotonic()
        shown = command(stack, "/halt", "status")
        assert time.monotonic() - started < 2 + 1.5
    assert "Global: trading" in shown and "Drift unknown:" in shown
