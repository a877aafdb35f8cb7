"""`/rollback` under concurrency, over signed requests on loopback: exactly one dispatch under 20
concurrent approvals (SQLite and PostgreSQL), a halt requested, approved and executed while the
revert runs, the cutover freeze while a rollback is open, and a second /rollback refused."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from sqlmodel import Session, func, select

from bot.approvals.actions import ExecutionContext
from bot.audit.log import Actor
from bot.rollback.models import Rollback, RollbackStatus
from bot.rollback.steps import initial_steps
from rehearsal.sim.stack import Stack
from tests.support.common import ADMIN, CHANNEL, HALT_A, OPERATOR, OWNER, click, request_halt, text_of, wait_until
from tests.support.rollback import (
    OWNER2,
    audit_actions,
    command,
    dispatches,
    finished,
    request,
    running_stack,
    spec,
    steps_of,
    store,
)

pytest_plugins = ["tests.support.rollback_fixture"]  # the `rb` fixture

CLICKS = 20


def test_exactly_one_dispatch_under_20_concurrent_approvals(tmp_path: Path, db_url: str) -> None:
    with running_stack(db_url, tmp_path / "inc") as stack:
        approval_id, posted = request(stack)
        owners = [OWNER, OWNER2] * (CLICKS // 2)
        with ThreadPoolExecutor(max_workers=CLICKS) as pool:
            responses = list(
                pool.map(lambda user: click(stack, user=user, approval_id=approval_id, posted=posted), owners)
            )
        assert all(r.status_code == 200 for r in responses)
        row = finished(stack)
        assert row.status == RollbackStatus.COMPLETED.value
        stack.peer.wait_for_call("response_url", count=CLICKS - 1)
        handled = [c for c in stack.peer.calls_to("response_url") if "Already handled" in text_of(c.args)]
        assert len(handled) == CLICKS - 1
        assert len(dispatches(stack)) == 1 and len(stack.github.runs()) == 1
        with Session(stack.deps.engine) as session:
            assert session.exec(select(func.count()).select_from(Rollback)).one() == 1
        actions = audit_actions(stack)
        assert actions.count("rollback.approved:accepted") == 1
        assert actions.count("rollback.started:accepted") == 1
        assert actions.count("rollback.dispatch:accepted") == 1


def test_a_halt_is_requested_approved_and_executed_in_the_middle_of_a_rollback(rb: Stack) -> None:
    rb.github.faults.hang_runs = True  # the revert run stays in progress until released
    approval_id, posted = request(rb)
    click(rb, user=OWNER, approval_id=approval_id, posted=posted)
    wait_until(lambda: (r := store(rb).latest()) is not None and r.run_id is not None)

    halt_id, halt_posted = request_halt(rb, text="global runaway orders during the rollback")
    click(rb, user=HALT_A, approval_id=halt_id, posted=halt_posted)
    rb.peer.wait_for_call("chat.update", where=lambda c: "Applied" in text_of(c.args))
    assert rb.backend.control()["global"]["halted"] is True
    assert len(rb.backend.calls("POST", "/api/trading-control/halt")) == 1
    running = store(rb).latest()
    assert running is not None and running.status == RollbackStatus.RUNNING.value
    assert steps_of(running)["revert-deployment"] == "running"  # the halt did not wait for the rollback

    rb.github.faults.hang_runs = False
    row = finished(rb)
    assert row.status == RollbackStatus.COMPLETED.value
    halt_step = next(s for s in json.loads(row.steps) if s["id"] == "keep-halt-authority")
    assert "global HALTED" in halt_step["detail"]  # the later checks saw the halt in place


def test_the_cutover_is_frozen_while_a_rollback_is_open(rb: Stack) -> None:
    rb.github.faults.hang_runs = True
    approval_id, posted = request(rb)
    click(rb, user=OWNER, approval_id=approval_id, posted=posted)
    wait_until(lambda: (r := store(rb).latest()) is not None and r.run_id is not None)
    freeze = rb.deps.freeze.active()
    row = store(rb).latest()
    assert row is not None and freeze is not None and freeze.owner == f"rollback:{row.id}"

    before = len(rb.peer.calls_to("response_url"))
    rb.sender.command(user=ADMIN, command="/cutover", text="advance operators are ready", channel=CHANNEL)
    answer = text_of(rb.peer.wait_for_call("response_url", count=before + 1)[-1].args)
    assert "rollback in progress" in answer and row.id in answer

    # A second rollback while this one runs is refused with a pointer to it, at request and at approval.
    refused = command(rb, "again please --trigger config")
    assert "already running" in refused and row.id in refused
    ctx = ExecutionContext("apr_other", {"to": ""}, OPERATOR, OWNER2, "ops-other")
    outcome = spec(rb).execute(ctx)
    assert not outcome.applied and f"rollback `{row.id}` is running" in outcome.summary

    rb.github.faults.hang_runs = False
    assert finished(rb).status == RollbackStatus.COMPLETED.value
    wait_until(lambda: rb.deps.freeze.active() is None)


def test_a_rollback_left_running_by_a_stopped_bot_is_reaped(rb: Stack) -> None:
    old = rb.deps.now() - timedelta(hours=6)
    ghost = Rollback(
        id="rb-ghost",
        approval_id="apr_ghost",
        status="running",
        request_id="ops-1",
        run_request_id="ops-2",
        requester=OPERATOR,
        approver=OWNER,
        channel=CHANNEL,
        reason="r",
        deployed="abc1234",
        target="9f8e7d6",
        created_at=old,
        updated_at=old,
        steps=initial_steps([("stop-rollout", "stop")]),
    )
    assert store(rb).start(ghost, Actor("", OWNER))
    status = command(rb, "status")
    assert "rb-ghost" in status and "interrupted" in status
    assert store(rb).running() is None
