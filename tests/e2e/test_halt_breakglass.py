"""Break-glass halts, their confirmation and escalation, and resumes (which never have break-glass)."""

from __future__ import annotations

import pytest

from bot.approvals.sweep import sweep
from rehearsal.sim.stack import Stack
from tests.support.common import (
    CHANNEL,
    HALT_A,
    HALT_B,
    HALT_C,
    OPERATOR,
    Clock,
    approval_id_of,
    click,
    message_text,
    text_of,
    wait_until,
)


def break_glass(stack: Stack, *, user: str = HALT_A, text: str = "global runaway algo --now") -> str:
    response = stack.sender.command(user=user, command="/halt", text=text, channel=CHANNEL)
    assert response.status_code == 200 and not response.text
    update = stack.peer.wait_for_call("chat.update", where=lambda c: "Applied" in text_of(c.args))[-1]
    assert "must confirm" in text_of(update.args)
    return approval_id_of(update)


def steps(stack: Stack, approval_id: str) -> list[str]:
    return [row.action for row in stack.deps.audit.for_approval(approval_id)]


def test_break_glass_halts_at_once_and_asks_for_confirmation(stack: Stack) -> None:
    approval_id = break_glass(stack)
    assert len(stack.backend.calls("POST", "/api/trading-control/halt")) == 1
    assert stack.backend.control()["global"]["halted"] is True
    posted = stack.peer.calls_to("chat.postMessage")[0]
    assert "approve" not in str(posted.args.get("blocks"))  # no buttons until it has run
    click(stack, user=HALT_B, approval_id=approval_id, posted=posted)
    stack.peer.wait_for_call("chat.update", where=lambda c: "confirmed by" in text_of(c.args))
    assert steps(stack, approval_id) == ["halt.break_glass", "halt.executed", "halt.confirmed"]


@pytest.mark.parametrize(("verb", "said"), [("approve", "confirmed by"), ("reject", "The halt is still in force")])
def test_break_glass_card_keeps_what_applied_through_confirm_and_dispute(stack: Stack, verb: str, said: str) -> None:
    approval_id = break_glass(stack)
    row = stack.deps.approvals.get(approval_id=approval_id)
    assert row is not None and row.message_ts
    posted = stack.peer.calls_to("chat.postMessage")[0]
    click(stack, user=HALT_B, approval_id=approval_id, posted=posted, action=verb)
    wait_until(lambda: said in message_text(stack, row.message_ts or ""))
    shown = message_text(stack, row.message_ts)
    assert "BREAK-GLASS" in shown and "*Applied:*" in shown and "(revision 2)" in shown and "request id" in shown
    assert "What was asked" in shown and "What will happen" not in shown


def test_break_glass_requester_cannot_confirm_their_own_halt(stack: Stack) -> None:
    approval_id = break_glass(stack)
    posted = stack.peer.calls_to("chat.postMessage")[0]
    click(stack, user=HALT_A, approval_id=approval_id, posted=posted)
    refusal = stack.peer.wait_for_call("response_url")[-1]
    assert "second person" in text_of(refusal.args)
    row = stack.deps.approvals.get(approval_id=approval_id)
    assert row is not None and row.status == "awaiting_confirmation"


def test_unconfirmed_break_glass_is_escalated_and_never_resumed(stack: Stack, clock: Clock) -> None:
    approval_id = break_glass(stack)
    clock.advance(stack.deps.settings.approval_ttl_seconds + 1)
    assert sweep(stack.deps.flow) == 1
    escalation = stack.peer.wait_for_call("chat.postMessage", where=lambda c: "Escalation" in text_of(c.args))[-1]
    shown = text_of(escalation.args)
    assert all(f"<@{u}>" in shown for u in (HALT_A, HALT_B, HALT_C))
    assert escalation.args["channel"] == CHANNEL
    wait_until(lambda: steps(stack, approval_id)[-2:] == ["halt.escalated", "halt.escalation_posted"])
    # A second sweep (another replica, say) does not escalate twice, and nothing resumes trading.
    assert sweep(stack.deps.flow) == 0
    assert stack.backend.calls("POST", "/api/trading-control/resume") == []
    assert stack.backend.control()["global"]["halted"] is True


def test_disputed_break_glass_is_escalated_at_once(stack: Stack) -> None:
    approval_id = break_glass(stack)
    posted = stack.peer.calls_to("chat.postMessage")[0]
    click(stack, user=HALT_C, approval_id=approval_id, posted=posted, action="reject")
    stack.peer.wait_for_call("chat.postMessage", where=lambda c: "Escalation" in text_of(c.args))
    wait_until(lambda: steps(stack, approval_id)[-2:] == ["halt.disputed", "halt.escalation_posted"])
    assert stack.backend.control()["global"]["halted"] is True


def test_resume_always_needs_a_second_halt_authority(stack: Stack) -> None:
    break_glass(stack)
    response = stack.sender.command(user=HALT_A, command="/halt", text="resume global all clear", channel=CHANNEL)
    assert response.status_code == 200
    posted = stack.peer.wait_for_call("chat.postMessage", where=lambda c: "approve" in str(c.args.get("blocks")))[-1]
    approval_id = approval_id_of(posted)
    assert "Resume trading" in text_of(posted.args)
    wait_until(lambda: bool((stack.deps.approvals.get(approval_id=approval_id) or posted).message_ts))
    assert stack.backend.calls("POST", "/api/trading-control/resume") == []
    click(stack, user=HALT_B, approval_id=approval_id, posted=posted)
    stack.peer.wait_for_call("chat.update", where=lambda c: "trading again" in text_of(c.args))
    assert stack.backend.control()["global"]["halted"] is False
    assert len(stack.backend.calls("POST", "/api/trading-control/resume")) == 1


def test_scoped_halt_is_read_back_for_its_scope(stack: Stack) -> None:
    response = stack.sender.command(user=OPERATOR, command="/halt", text="symbol:aapl bad prints", channel=CHANNEL)
    assert response.status_code == 200
    posted = stack.peer.wait_for_call("chat.postMessage")[-1]
    approval_id = approval_id_of(posted)
    wait_until(lambda: bool((stack.deps.approvals.get(approval_id=approval_id) or posted).message_ts))
    click(stack, user=HALT_A, approval_id=approval_id, posted=posted)
    stack.peer.wait_for_call("chat.update", where=lambda c: "Applied" in text_of(c.args))
    scopes = {s["scope"]: s["disabled"] for s in stack.backend.control()["scopes"]}
    assert scopes == {"symbol:AAPL": True}
    assert stack.backend.control()["global"]["halted"] is False


def test_break_glass_halts_even_when_slack_will_not_post(stack: Stack) -> None:
    stack.peer.ratelimit("chat.postMessage", times=10, retry_after=0)
    response = stack.sender.command(user=HALT_A, command="/halt", text="global runaway --now", channel=CHANNEL)
    assert response.status_code == 200
    wait_until(lambda: stack.backend.control()["global"]["halted"] is True)
    # Slack is told afterwards: the card, its final state and the outcome in its thread, each once.
    update = stack.peer.wait_for_call("chat.update", where=lambda c: "Applied" in text_of(c.args))[-1]
    assert "must confirm" in text_of(update.args)
    outcome = stack.peer.wait_for_call("chat.postMessage", where=lambda c: bool(c.args.get("thread_ts")))
    assert len(outcome) == 1 and "Applied" in outcome[0].args["text"] and outcome[0].args["reply_broadcast"]
    assert len(stack.backend.calls("POST", "/api/trading-control/halt")) == 1
