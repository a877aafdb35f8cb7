"""Slack misbehaving never holds up a decided halt: the backend is called at once, and the channel is told
afterwards through the outbox, once, in order, with the card showing the final state.

Through the real bot (signed requests, the Slack stand-in, the simulated backend). The outbox's clock is
a settable one where a test needs Slack to stay away for a minute without the test taking a minute.
"""

from __future__ import annotations

import time
from typing import Any

from bot.approvals.outbox import DELIVERED, GIVEN_UP, SUPERSEDED
from rehearsal.sim.stack import Stack
from rehearsal.slack.calls import ApiCall
from tests.support.common import CHANNEL, HALT_A, HALT_B, OPERATOR, Clock, click, request_halt, text_of, wait_until

HALT_PATH = "/api/trading-control/halt"
# Far below what a Slack fault costs (2 s slow, 30 s Retry-After), far above the ~30 ms it takes.
PROMPT_S = 1.0


def halt_posted_at(stack: Stack, count: int) -> float:
    """When the backend received halt POST number `count` (1-based)."""
    wait_until(lambda: len(stack.backend.calls("POST", HALT_PATH)) >= count, timeout=10)
    return stack.backend.calls("POST", HALT_PATH)[count - 1].at


def break_glass(stack: Stack, text: str = "global runaway algo --now") -> float:
    """Send a break-glass halt; how long until the backend had its POST."""
    before, started = len(stack.backend.calls("POST", HALT_PATH)), time.time()
    response = stack.sender.command(user=HALT_A, command="/halt", text=text, channel=CHANNEL)
    assert response.status_code == 200
    return halt_posted_at(stack, before + 1) - started


def approve(stack: Stack, approval_id: str, posted: ApiCall) -> float:
    before, started = len(stack.backend.calls("POST", HALT_PATH)), time.time()
    click(stack, user=HALT_B, approval_id=approval_id, posted=posted)
    return halt_posted_at(stack, before + 1) - started


def channel(stack: Stack) -> list[dict[str, Any]]:
    return stack.peer.channel_messages(CHANNEL)


def cards(stack: Stack) -> list[dict[str, Any]]:
    return [
        m
        for m in channel(stack)
        if not m.get("thread_ts") and any(b.get("type") == "header" for b in m.get("blocks") or [])
    ]


def replies(stack: Stack) -> list[dict[str, Any]]:
    return [m for m in channel(stack) if m.get("thread_ts")]


def outbox_settled(stack: Stack) -> bool:
    return all(r.status in (DELIVERED, SUPERSEDED) for r in stack.deps.approvals.outbox.rows())


def fake_outbox_clock(stack: Stack) -> Clock:
    clock = Clock()
    stack.deps.approvals.outbox.clock = clock
    return clock


def test_slow_slack_does_not_delay_the_halt(stack: Stack) -> None:
    approval_id, posted = request_halt(stack)
    stack.peer.latency_s = 2.0
    assert approve(stack, approval_id, posted) < PROMPT_S
    wait_until(lambda: any("Applied" in text_of(m) for m in cards(stack)) and len(replies(stack)) == 1, 15)


def warm(stack: Stack) -> None:
    """One command first, so first-call costs (connections, the backend token) are not what is measured."""
    stack.sender.command(user=OPERATOR, command="/halt", text="status", channel=CHANNEL)
    stack.peer.wait_for_call("response_url")


def test_slow_slack_does_not_delay_a_break_glass_halt(stack: Stack) -> None:
    warm(stack)
    stack.peer.latency_s = 2.0
    assert break_glass(stack) < PROMPT_S
    wait_until(lambda: any("must confirm" in text_of(m) for m in cards(stack)) and len(replies(stack)) == 1, 20)


def test_retry_after_30_delays_only_the_messages(stack: Stack) -> None:
    clock = fake_outbox_clock(stack)
    approval_id, posted = request_halt(stack)
    stack.peer.ratelimit("chat.update", times=1, retry_after=30)
    assert approve(stack, approval_id, posted) < PROMPT_S
    # chat.update waits out its Retry-After; chat.postMessage is not held up by it: the outcome is told.
    stack.peer.wait_for_call("chat.postMessage", where=lambda c: "Applied" in str(c.args.get("text")))
    time.sleep(0.3)
    assert not any("Applied" in text_of(m) for m in cards(stack))
    updates = len(stack.peer.calls_to("chat.update"))
    clock.advance(29)
    time.sleep(0.3)
    assert len(stack.peer.calls_to("chat.update")) == updates  # Retry-After honoured
    clock.advance(2)
    wait_until(lambda: any("Applied" in text_of(m) for m in cards(stack)))
    wait_until(lambda: outbox_settled(stack))


def test_retry_after_30_on_every_post_still_halts_at_once(stack: Stack) -> None:
    clock = fake_outbox_clock(stack)
    warm(stack)
    stack.peer.ratelimit("chat.postMessage", times=1, retry_after=30)
    assert break_glass(stack) < PROMPT_S
    time.sleep(0.3)
    assert cards(stack) == []
    clock.advance(31)
    wait_until(lambda: any("must confirm" in text_of(m) for m in cards(stack)) and len(replies(stack)) == 1)


def test_connection_dropped_during_chat_update_still_halts_and_tells_later(stack: Stack) -> None:
    approval_id, posted = request_halt(stack)
    stack.peer.drop("chat.update", times=2)
    assert approve(stack, approval_id, posted) < PROMPT_S
    wait_until(lambda: any("Applied" in text_of(m) for m in cards(stack)), 10)
    assert len(stack.peer.calls_to("dropped:chat.update")) == 2
    row = stack.deps.approvals.get(approval_id=approval_id)
    assert row is not None and row.status == "executed"
    actions = [e.action for e in stack.deps.audit.for_approval(approval_id)]
    assert actions == ["halt.requested", "halt.approved", "halt.executed"]
    assert len(stack.backend.calls("POST", HALT_PATH)) == 1


def test_slack_down_for_a_minute_then_back_delivers_everything_once_in_order(stack: Stack) -> None:
    clock = fake_outbox_clock(stack)
    approval_id, posted = request_halt(stack)
    stack.peer.down = True
    assert approve(stack, approval_id, posted) < PROMPT_S  # its card update and outcome wait in the outbox
    assert break_glass(stack, "symbol:ACME runaway --now") < PROMPT_S
    response = stack.sender.command(user=OPERATOR, command="/halt", text="resume global all clear", channel=CHANNEL)
    assert response.status_code == 200
    for _ in range(60):  # a minute of Slack being away, retried all along
        clock.advance(1)
        time.sleep(0.02)
    assert len(stack.peer.calls_to("dropped:chat.postMessage")) >= 2
    stack.peer.down = False

    def caught_up() -> bool:  # time goes on after Slack is back, as it does
        clock.advance(0.5)
        return outbox_settled(stack)

    wait_until(caught_up, 15)
    shown = cards(stack)
    titles = sorted(next(b["text"]["text"] for b in m["blocks"] if b["type"] == "header") for m in shown)
    assert titles == ["BREAK-GLASS · Halt trading: symbol:ACME", "Halt trading: global", "Resume trading: global"]
    by_title = {next(b["text"]["text"] for b in m["blocks"] if b["type"] == "header"): m for m in shown}
    assert "Applied" in text_of(by_title["Halt trading: global"])
    assert "must confirm" in text_of(by_title["BREAK-GLASS · Halt trading: symbol:ACME"])
    # One outcome per halt, each in its own card's thread, after its card.
    threads = {m["thread_ts"]: m for m in replies(stack)}
    assert len(replies(stack)) == 2 and len(threads) == 2
    halts = ("Halt trading: global", "BREAK-GLASS · Halt trading: symbol:ACME")
    assert set(threads) == {by_title[t]["ts"] for t in halts}
    assert all(m["ts"] > m["thread_ts"] for m in replies(stack))


def test_a_message_slack_never_takes_is_given_up_audited_and_counted(stack: Stack) -> None:
    clock = fake_outbox_clock(stack)
    warm(stack)
    stack.peer.down = True
    assert break_glass(stack) < PROMPT_S
    # The card, its update, the outcome, and the update that adds the signed audit line.
    wait_until(lambda: len(stack.deps.approvals.outbox.rows()) == 4)
    clock.advance(stack.notifier.config.give_up_after.total_seconds() + 60)
    wait_until(lambda: any(r.status == GIVEN_UP for r in stack.deps.approvals.outbox.rows()))
    wait_until(lambda: all(r.status != "pending" for r in stack.deps.approvals.outbox.rows()))
    undelivered = [e for e in stack.deps.audit.rows() if e.action == "slack.undelivered"]
    assert undelivered and all(e.outcome == "failed" for e in undelivered)
    assert stack.backend.control()["global"]["halted"] is True
    shown = stack.deps.home.facts().slack or ""
    assert "never delivered" in shown and "`chat.postMessage` in <#C0INCIDENT>" in shown
