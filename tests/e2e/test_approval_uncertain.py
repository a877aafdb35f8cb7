"""Approvals whose outcome is uncertain: a store that will not record the result after the backend was
called, a bot that died between its claim and the result (resumed with the same Idempotency-Key), a
request closed after an attempt whose write may still land, and a break-glass halt against a backend
that is down.

Everything runs through the real bot (signed requests, the local Slack peer, the simulated backend). The
store fault is real: another connection holds SQLite's write lock past the bot's busy timeout.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest

from bot.approvals.machine import EXECUTION_LEASE, MAX_RESUMES, Status, Transition
from bot.approvals.store import ApprovalStore
from bot.approvals.sweep import sweep
from bot.audit.log import SYSTEM, Actor, AuditLog
from bot.storage.db import make_engine
from bot.storage.migrate import upgrade
from rehearsal.sim.stack import Stack
from rehearsal.slack.calls import ApiCall
from tests.support.common import (
    CHANNEL,
    HALT_A,
    HALT_B,
    OPERATOR,
    Clock,
    click,
    message_text,
    request_halt,
    short_timeouts,
    text_of,
    wait_until,
)

HALT_PATH = "/api/trading-control/halt"
LEASE_S = EXECUTION_LEASE.total_seconds()


def halt_posts(stack: Stack) -> int:
    return len(stack.backend.calls("POST", HALT_PATH))


def one_halt_applied(stack: Stack) -> bool:
    """However often the write was sent, it applied once: one key, one control revision."""
    keys = {r.headers.get("idempotency-key") for r in stack.backend.calls("POST", HALT_PATH)}
    return len(keys) == 1 and stack.backend.control()["revision"] == 2 and stack.backend.control()["global"]["halted"]


def thread_replies(stack: Stack, phrase: str) -> list[ApiCall]:
    return [c for c in stack.peer.calls_to("chat.postMessage") if c.args.get("thread_ts") and phrase in c.args["text"]]


def steps(stack: Stack, approval_id: str) -> list[str]:
    return [f"{e.action}:{e.outcome}" for e in stack.deps.audit.for_approval(approval_id)]


def detail_of(stack: Stack, approval_id: str, step: str) -> str:
    rows = [e for e in stack.deps.audit.for_approval(approval_id) if f"{e.action}:{e.outcome}" == step]
    assert len(rows) == 1, steps(stack, approval_id)
    return rows[0].detail


def message_ts(stack: Stack, approval_id: str) -> str:
    row = stack.deps.approvals.get(approval_id=approval_id)
    assert row is not None and row.message_ts
    return row.message_ts


def status_of(stack: Stack, approval_id: str) -> str:
    row = stack.deps.approvals.get(approval_id=approval_id)
    assert row is not None
    return row.status


def has_buttons(stack: Stack, ts: str) -> bool:
    found = stack.peer.workspace.find_message(CHANNEL, ts)
    assert found is not None
    return any(b.get("type") == "actions" for b in found.get("blocks") or [])


def updates_saying(stack: Stack, phrase: str, timeout: float = 5.0) -> ApiCall:
    return stack.peer.wait_for_call("chat.update", where=lambda c: phrase in text_of(c.args), timeout=timeout)[-1]


def told_nothing_was_done(stack: Stack) -> bool:
    said = [text_of(c.args) for c in stack.peer.calls_to("response_url") + stack.peer.calls_to("chat.update")]
    return any("nothing was done" in s.lower() for s in said)


@contextmanager
def write_lock(stack: Stack) -> Iterator[None]:
    """Hold SQLite's write lock from another connection, as a long writer elsewhere would."""
    holder = sqlite3.connect(str(stack.deps.engine.url.database), isolation_level=None, timeout=10)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


# -- 1. the outcome cannot be recorded after the backend was called --------------------------------


def test_unrecordable_outcome_is_told_honestly_then_resumed_with_the_same_key(stack: Stack, clock: Clock) -> None:
    approval_id, posted = request_halt(stack)
    ts = message_ts(stack, approval_id)
    stack.backend.faults.latency_s = 1.0  # room to take the lock between the claim and the result
    click(stack, user=HALT_A, approval_id=approval_id, posted=posted)
    updates_saying(stack, "executing…")
    with write_lock(stack):
        update = updates_saying(stack, "Outcome NOT recorded", timeout=30)
    text = text_of(update.args)
    assert "Applied" in text and "`/halt status`" in text and f"<@{HALT_A}>" in text
    assert "same idempotency key" in text
    assert not told_nothing_was_done(stack)
    assert stack.backend.control()["global"]["halted"] is True and halt_posts(stack) == 1
    assert status_of(stack, approval_id) == "executing"
    assert steps(stack, approval_id) == ["halt.requested:accepted", "halt.approved:accepted"]

    clock.advance(LEASE_S - 1)
    assert sweep(stack.deps.flow) == 0  # its claimant's lease still holds
    clock.advance(2)
    assert sweep(stack.deps.flow) == 1
    wait_until(lambda: status_of(stack, approval_id) == "executed")
    assert halt_posts(stack) == 2 and one_halt_applied(stack)  # re-sent, replayed by the backend
    assert steps(stack, approval_id) == [
        "halt.requested:accepted",
        "halt.approved:accepted",
        "halt.resumed:accepted",
        "halt.executed:applied",
    ]
    stack.peer.wait_for(lambda _: bool(thread_replies(stack, "Resumed")) and bool(thread_replies(stack, "Applied")))
    wait_until(lambda: "Applied" in message_text(stack, ts) and "NOT recorded" not in message_text(stack, ts))
    assert not has_buttons(stack, ts)
    assert sweep(stack.deps.flow) == 0
    assert stack.deps.audit.verify().ok


def test_store_lock_that_clears_within_the_retries_records_the_outcome_once(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="opsbot.flow")
    approval_id, posted = request_halt(stack)
    stack.backend.faults.latency_s = 1.0
    click(stack, user=HALT_A, approval_id=approval_id, posted=posted)
    updates_saying(stack, "executing…")
    with write_lock(stack):
        wait_until(lambda: any("could not record the outcome" in r.getMessage() for r in caplog.records), 15)
    updates_saying(stack, "Applied", timeout=15)
    wait_until(lambda: status_of(stack, approval_id) == "executed")
    assert steps(stack, approval_id) == ["halt.requested:accepted", "halt.approved:accepted", "halt.executed:applied"]
    assert not any("NOT recorded" in text_of(c.args) for c in stack.peer.calls_to("chat.update"))


def test_bot_that_died_after_its_claim_is_resumed_once_by_racing_replicas(stack: Stack, clock: Clock) -> None:
    approval_id, posted = request_halt(stack)
    row = stack.deps.approvals.get(approval_id=approval_id)
    assert row is not None
    # What a bot that crashed right after winning the click leaves behind: a claim and nothing more.
    claim = Transition(Status.PENDING, Status.EXECUTING, "approved", executes=True)
    assert stack.deps.approvals.apply(
        row=row, transition=claim, actor=Actor("T1", HALT_A), now=clock.now, request_id="crashed"
    )
    clock.advance(LEASE_S + 1)
    barrier = threading.Barrier(4)
    counts: list[int] = []

    def replica() -> None:
        barrier.wait(timeout=10)
        counts.append(sweep(stack.deps.flow))

    threads = [threading.Thread(target=replica) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(counts) == 4
    assert steps(stack, approval_id).count("halt.resumed:accepted") == 1
    assert status_of(stack, approval_id) == "executed" and halt_posts(stack) == 1 and one_halt_applied(stack)
    stack.peer.wait_for(lambda _: len(thread_replies(stack, "Resumed")) == 1)
    outcome = stack.peer.wait_for(lambda _: bool(thread_replies(stack, "Applied")))
    assert outcome and f"approved by <@{HALT_A}>" in thread_replies(stack, "Applied")[0].args["text"]
    click(stack, user=HALT_B, approval_id=approval_id, posted=posted)
    late = stack.peer.wait_for_call("response_url")[-1]
    assert "Already handled (executed)" in text_of(late.args)
    assert halt_posts(stack) == 1


def test_execution_resumed_too_often_is_interrupted_saying_what_is_known(stack: Stack, clock: Clock) -> None:
    approval_id, _posted = request_halt(stack)
    row = stack.deps.approvals.get(approval_id=approval_id)
    assert row is not None
    claim = Transition(Status.PENDING, Status.EXECUTING, "approved", executes=True)
    assert stack.deps.approvals.apply(
        row=row, transition=claim, actor=Actor("T1", HALT_A), now=clock.now, request_id="crashed"
    )
    for _ in range(MAX_RESUMES):  # each resume's process died too
        clock.advance(LEASE_S + 1)
        lapsed = stack.deps.approvals.lapsed(now=clock.now)
        assert [r.id for r in lapsed] == [approval_id]
        assert stack.deps.approvals.take_over(row=lapsed[0], actor=SYSTEM, now=clock.now)
    clock.advance(LEASE_S + 1)
    assert sweep(stack.deps.flow) == 1
    assert status_of(stack, approval_id) == "failed" and halt_posts(stack) == 0
    text = text_of(updates_saying(stack, "Interrupted, outcome unknown").args)
    assert f"sent it {MAX_RESUMES + 1} times" in text and f"`{approval_id}:halt`" in text
    assert "At most one" in text and "`/halt status`" in text
    assert steps(stack, approval_id)[-1] == "halt.failed:interrupted"


def test_break_glass_whose_outcome_cannot_be_recorded_is_resumed_and_still_halts_once(
    stack: Stack, clock: Clock
) -> None:
    stack.backend.faults.latency_s = 1.0
    response = stack.sender.command(user=HALT_A, command="/halt", text="global runaway algo --now", channel=CHANNEL)
    assert response.status_code == 200
    wait_until(lambda: halt_posts(stack) == 1)
    with write_lock(stack):  # the outbox is in the store too: the bot tells Slack directly, once
        said = stack.peer.wait_for(lambda calls: any("NOT recorded" in text_of(c.args) for c in calls), timeout=30)
    text = next(text_of(c.args) for c in said if "NOT recorded" in text_of(c.args))
    assert "Applied" in text and "Outcome NOT recorded" in text and "`/halt status`" in text
    assert "nothing was done" not in text.lower()
    rows = stack.deps.approvals.recent(action_prefix="halt")
    assert len(rows) == 1 and rows[0].status == "executing"
    approval_id = rows[0].id

    clock.advance(LEASE_S + 1)
    assert sweep(stack.deps.flow) == 1
    wait_until(lambda: status_of(stack, approval_id) == "awaiting_confirmation")
    assert steps(stack, approval_id) == ["halt.break_glass:accepted", "halt.resumed:accepted", "halt.executed:applied"]
    assert halt_posts(stack) == 2 and one_halt_applied(stack)
    stack.peer.wait_for(lambda _: bool(thread_replies(stack, "Resumed")) and bool(thread_replies(stack, "Applied")))
    updates_saying(stack, "must confirm")


# -- 2. a request closed after an attempt whose result was unknown ---------------------------------


def test_reject_after_a_timed_out_write_says_it_may_have_reached_the_backend(stack: Stack) -> None:
    approval_id, posted = request_halt(stack)
    short_timeouts(stack)
    stack.backend.faults.latency_s = 1.0
    click(stack, user=HALT_A, approval_id=approval_id, posted=posted)
    updates_saying(stack, "Still pending", timeout=10)
    wait_until(lambda: status_of(stack, approval_id) == "pending")
    wait_until(lambda: stack.backend.control()["global"]["halted"] is True)  # the late write landed

    click(stack, user=HALT_B, approval_id=approval_id, posted=posted, action="reject")
    text = text_of(updates_saying(stack, "Rejected by").args)
    assert "earlier attempt (1) may have reached the backend" in text and "`/halt status`" in text
    assert "Nothing was done" not in text
    assert "may have reached the backend; check /halt status" in detail_of(stack, approval_id, "halt.rejected:accepted")


def test_expiry_after_a_failed_attempt_says_it_may_have_reached_the_backend(stack: Stack, clock: Clock) -> None:
    approval_id, posted = request_halt(stack)
    stack.backend.faults.fail_status = 500
    click(stack, user=HALT_A, approval_id=approval_id, posted=posted)
    updates_saying(stack, "Still pending")
    wait_until(lambda: status_of(stack, approval_id) == "pending")
    clock.advance(stack.deps.settings.approval_ttl_seconds + 1)
    assert sweep(stack.deps.flow) == 1
    text = text_of(updates_saying(stack, "Expired").args)
    assert "earlier attempt (1) may have reached the backend" in text and "Nothing was done" not in text
    assert "check /halt status" in detail_of(stack, approval_id, "halt.expired:accepted")


def test_withdrawal_of_a_request_that_never_ran_still_says_nothing_was_done(stack: Stack) -> None:
    approval_id, posted = request_halt(stack)
    click(stack, user=OPERATOR, approval_id=approval_id, posted=posted, action="reject")
    text = text_of(updates_saying(stack, "Withdrawn").args)
    assert "Nothing was done." in text and "earlier attempt" not in text
    assert detail_of(stack, approval_id, "halt.withdrawn:accepted") == ""


def test_withdrawal_after_an_attempt_refused_at_connect_still_says_nothing_was_done(stack: Stack) -> None:
    approval_id, posted = request_halt(stack)
    stack.backend.stop()  # refused at connect: the write surely never reached the backend
    click(stack, user=HALT_A, approval_id=approval_id, posted=posted)
    assert "*Halt NOT applied.*" in text_of(updates_saying(stack, "Still pending", timeout=10).args)
    wait_until(lambda: status_of(stack, approval_id) == "pending")
    click(stack, user=OPERATOR, approval_id=approval_id, posted=posted, action="reject")
    text = text_of(updates_saying(stack, "Withdrawn").args)
    assert "Nothing was done." in text and "earlier attempt" not in text


# -- 3. break-glass against a backend that is down or failing --------------------------------------


@pytest.mark.parametrize(
    ("fault", "shown_as", "escalated"),
    [
        ("down", ("Break-glass. *Halt NOT applied.*", "no answer"), False),  # refused at connect: surely not applied
        # A 5xx may follow a commit: the halt may be in force with nobody confirming it, so the halt
        # authorities are called in.
        ("http_503", ("Break-glass.", "Halt NOT confirmed", "HTTP 503", "`/halt status`"), True),
    ],
)
def test_break_glass_against_a_failing_backend_is_marked_failed_and_escalated_when_unsure(
    stack: Stack, fault: str, shown_as: tuple[str, ...], escalated: bool
) -> None:
    if fault == "down":
        stack.backend.stop()
    else:
        stack.backend.faults.fail_status = 503
    response = stack.sender.command(user=HALT_A, command="/halt", text="global runaway algo --now", channel=CHANNEL)
    assert response.status_code == 200 and not response.text
    update = updates_saying(stack, "Break-glass.", timeout=10)
    text = text_of(update.args)
    assert all(part in text for part in shown_as), text
    assert "Applied" not in text and "must confirm" not in text
    rows = stack.deps.approvals.recent(action_prefix="halt")
    assert len(rows) == 1 and rows[0].status == "failed"
    approval_id = rows[0].id
    assert f"Request id `{rows[0].request_id}`" in text
    assert not has_buttons(stack, message_ts(stack, approval_id))
    assert detail_of(stack, approval_id, "halt.failed:failed")
    if escalated:
        posted = stack.peer.wait_for_call("chat.postMessage", where=lambda c: "Escalation" in text_of(c.args))
        assert "may have applied with nobody confirming it" in text_of(posted[-1].args)
        assert f"<@{HALT_B}>" in text_of(posted[-1].args)
        wait_until(lambda: steps(stack, approval_id)[-1] == "halt.escalation_posted:accepted")
        assert steps(stack, approval_id) == [
            "halt.break_glass:accepted",
            "halt.failed:failed",
            "halt.escalation_posted:accepted",
        ]
    else:
        assert steps(stack, approval_id) == ["halt.break_glass:accepted", "halt.failed:failed"]
        assert not any("Escalation" in text_of(c.args) for c in stack.peer.calls_to("chat.postMessage"))
    if fault == "http_503":  # the gateway answered: it was retried once, and nothing applied
        assert halt_posts(stack) == 2 and stack.backend.control()["global"]["halted"] is False


def test_racing_takeovers_of_one_lapsed_claim_have_one_winner(db_url: str) -> None:
    """Resuming is a conditional UPDATE on the lapsed lease: replicas on one store cannot both resume."""
    engine = make_engine(db_url)
    upgrade(engine)
    audit = AuditLog(engine, replica="test")
    store, now = ApprovalStore(engine, audit, replica="a"), datetime.now(UTC)
    row = store.create(
        action="halt",
        params={"scope": "global", "reason": "r"},
        actor=Actor("T1", OPERATOR),
        approve_role="halt_authority",
        channel=CHANNEL,
        request_id="r",
        ttl_seconds=900,
        now=now,
    )
    claim = Transition(Status.PENDING, Status.EXECUTING, "approved", executes=True)
    assert store.apply(row=row, transition=claim, actor=Actor("T1", HALT_A), now=now, request_id="c")
    assert not store.take_over(row=row, actor=SYSTEM, now=now + EXECUTION_LEASE / 2)
    assert not store.interrupt(row=row, actor=SYSTEM, now=now + EXECUTION_LEASE / 2, outcome="x", detail="x")
    later, barrier, won = now + EXECUTION_LEASE * 2, threading.Barrier(10), []

    def replica() -> None:
        barrier.wait(timeout=10)
        won.append(store.take_over(row=row, actor=SYSTEM, now=later))

    threads = [threading.Thread(target=replica) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(won) == [False] * 9 + [True]
    assert [e.action for e in audit.for_approval(row.id)] == ["halt.requested", "halt.approved", "halt.resumed"]
    engine.dispose()
