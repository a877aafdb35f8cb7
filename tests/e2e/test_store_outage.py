"""The store down or hung, on a PostgreSQL cluster the test starts: a break-glass halt still halts, its
audit rows wait in the local journal and are merged in order when the store is back; resume fails
closed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.bootstrap import Sweeper
from rehearsal.sim.stack import Stack
from tests.integration.test_audit import cli
from tests.support.common import CHANNEL, HALT_A, HALT_B, OPERATOR, ROLES, message_text, text_of, wait_until
from tests.support.pg_cluster import Cluster, cluster


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[Cluster]:
    with cluster() as running:
        yield running


@pytest.fixture
def pg(pg_cluster: Cluster) -> Iterator[Cluster]:
    """The module's cluster, running, with a fresh database for this test."""
    yield pg_cluster.fresh_database()
    pg_cluster.thaw()
    pg_cluster.start_if_stopped()


@pytest.fixture
def pg_stack(pg: Cluster, tmp_path: Path) -> Iterator[Stack]:
    overrides = {**ROLES, "OPSBOT_AUDIT_JOURNAL": str(tmp_path / "journal.jsonl")}
    with Stack(database_url=pg.url, overrides=overrides) as running:
        yield running


def halts(stack: Stack) -> int:
    return len(stack.backend.calls("POST", "/api/trading-control/halt"))


def steps(stack: Stack) -> list[tuple[str, str]]:
    return [(r.action, r.approval_id) for r in stack.deps.audit.rows() if r.action.startswith("halt.")]


def break_glass_without_store(stack: Stack, text: str) -> float:
    started = time.monotonic()
    response = stack.sender.command(user=HALT_A, command="/halt", text=text, channel=CHANNEL)
    assert response.status_code == 200
    wait_until(lambda: halts(stack) == 1, timeout=10)
    took = time.monotonic() - started
    pending = stack.peer.wait_for_call("chat.postMessage", where=lambda c: "Audit pending" in text_of(c.args))
    assert "BREAK-GLASS" in text_of(pending[-1].args) and "Applied" in text_of(pending[-1].args)
    return took


def merged_when_back(stack: Stack, tmp_path: Path, pg: Cluster) -> None:
    Sweeper(stack.deps).catch_up()
    stack.peer.wait_for_call("chat.postMessage", where=lambda c: "Audit merged" in text_of(c.args))
    approval_id = stack.deps.journal.records()[0]["approval_id"]
    assert [a for a, i in steps(stack) if i == approval_id] == ["halt.break_glass", "halt.executed"]
    Sweeper(stack.deps).catch_up()  # a second merge adds nothing
    assert [a for a, i in steps(stack) if i == approval_id] == ["halt.break_glass", "halt.executed"]
    row = stack.deps.approvals.get(approval_id=approval_id)
    assert row is not None and row.status == "awaiting_confirmation" and row.break_glass
    # Its card shows once the store is back, and a second halt authority confirms from it as usual.
    wait_until(lambda: bool((r := stack.deps.approvals.get(approval_id=approval_id)) and r.message_ts), timeout=10)
    ts = str(stack.deps.approvals.get(approval_id=approval_id).message_ts)  # type: ignore[union-attr]
    wait_until(
        lambda: (
            "Audit merged" in message_text(stack, ts)
            and "approve" in str(stack.peer.workspace.find_message(CHANNEL, ts))
        ),
        timeout=10,
    )
    response = stack.sender.click(user=HALT_B, action_id="approve", value=approval_id, channel=CHANNEL, message_ts=ts)
    assert response.status_code == 200
    wait_until(lambda: (r := stack.deps.approvals.get(approval_id=approval_id)) is not None and r.status == "confirmed")
    verified = cli(pg.url, "audit", "verify", cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert halts(stack) == 1
    keys = {c.headers.get("idempotency-key") for c in stack.backend.calls("POST", "/api/trading-control/halt")}
    assert keys == {f"{approval_id}:halt"}


def test_break_glass_halts_with_the_store_stopped_and_the_audit_merges_later(
    pg_stack: Stack, pg: Cluster, tmp_path: Path
) -> None:
    stack = pg_stack
    stack.sender.command(user=OPERATOR, command="/halt", text="status", channel=CHANNEL)  # warm the pool
    pg.stop()
    break_glass_without_store(stack, "global runaway algo --now")
    assert [r["action"] for r in stack.deps.journal.records()] == ["halt.break_glass", "halt.executed"]
    # Resume needs the store: refused, clearly, and nothing sent.
    stack.sender.command(user=OPERATOR, command="/halt", text="resume global all clear", channel=CHANNEL)
    refusal = stack.peer.wait_for_call("response_url", where=lambda c: "store is unavailable" in text_of(c.args))
    assert "break-glass" in text_of(refusal[-1].args)
    assert stack.backend.calls("POST", "/api/trading-control/resume") == []
    Sweeper(stack.deps).catch_up()  # still down: nothing merged, nothing lost
    assert len(stack.deps.journal.pending()) == 2
    pg.start()
    merged_when_back(stack, tmp_path, pg)


def test_break_glass_halts_with_the_store_hung(pg_stack: Stack, pg: Cluster, tmp_path: Path) -> None:
    stack = pg_stack
    stack.sender.command(user=OPERATOR, command="/halt", text="status", channel=CHANNEL)
    pg.freeze()
    try:
        took = break_glass_without_store(stack, "symbol:ACME runaway algo --now")
    finally:
        pg.thaw()
    assert took < 2.5  # the store's claim is given 1 s, then the journal takes over
    time.sleep(1.0)  # a claim that was waiting on the frozen store may land now: it must not count twice
    merged_when_back(stack, tmp_path, pg)
