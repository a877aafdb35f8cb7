"""`/halt` end to end: signed requests over HTTP into the real Bolt app, the local Slack peer and the
simulated backend on loopback."""

from __future__ import annotations

from rehearsal.sim.stack import Stack
from tests.support.common import (
    CHANNEL,
    HALT_A,
    HALT_B,
    OPERATOR,
    STRANGER,
    Clock,
    click,
    request_halt,
    text_of,
)


def halt_posts(stack: Stack) -> int:
    return len(stack.backend.calls("POST", "/api/trading-control/halt"))


def actions_of(stack: Stack, approval_id: str) -> list[str]:
    return [f"{row.action}:{row.outcome}" for row in stack.deps.audit.for_approval(approval_id)]


def test_status_shows_global_scopes_maintenance_revision_and_request_id(stack: Stack) -> None:
    stack.backend.control()  # starts trading; put a scoped disable in place through the backend itself
    response = stack.sender.command(user=OPERATOR, command="/halt", text="status", channel=CHANNEL)
    assert response.status_code == 200
    answer = stack.peer.wait_for_call("response_url")[-1]
    shown = text_of(answer.args)
    assert "Global: trading" in shown
    assert "Control revision" in shown
    assert "Maintenance" in shown
    sent_id = stack.backend.calls("GET", "/api/trading-control")[-1].headers["x-request-id"]
    assert f"`{sent_id}`" in shown and "echoed" in shown
    assert answer.args.get("response_type") == "ephemeral"


def test_halt_request_approved_by_halt_authority_calls_backend_once(stack: Stack) -> None:
    approval_id, posted = request_halt(stack)
    shown = text_of(posted.args)
    assert f"<@{OPERATOR}>" in shown and "fat-finger storm" in shown and "Expires" in shown
    assert "halt authority" in shown
    assert halt_posts(stack) == 0  # nothing happens before a second person approves

    click(stack, user=HALT_A, approval_id=approval_id, posted=posted)
    update = stack.peer.wait_for_call("chat.update", where=lambda c: "Applied" in text_of(c.args))[-1]
    assert f"<@{HALT_A}>" in text_of(update.args)
    assert halt_posts(stack) == 1
    assert stack.backend.control()["global"]["halted"] is True
    post = stack.backend.calls("POST", "/api/trading-control/halt")[0]
    assert post.headers["idempotency-key"] == f"{approval_id}:halt"
    assert post.body == {
        "scope": "global",
        "reason": "fat-finger storm",
        "actor": f"slack:{OPERATOR} approval:{approval_id}",
    }
    assert actions_of(stack, approval_id) == [
        "halt.requested:accepted",
        "halt.approved:accepted",
        "halt.executed:applied",
    ]
    # /halt status names who asked and the approval to look up, in the bot's own time format.
    stack.sender.command(user=OPERATOR, command="/halt", text="status", channel=CHANNEL)
    status = text_of(stack.peer.wait_for_call("response_url", where=lambda c: "HALTED" in text_of(c.args))[-1].args)
    who = f"requested by <@{OPERATOR}>, approved by <@{HALT_A}>, approval `{approval_id}`"
    assert f"fat-finger storm ({who} at 20" in status
    assert " UTC)" in status and "slack:" not in status


def test_requester_cannot_approve_their_own_halt(stack: Stack) -> None:
    approval_id, posted = request_halt(stack, user=HALT_A, text="tenant:acme leaking orders")
    click(stack, user=HALT_A, approval_id=approval_id, posted=posted)
    refusal = stack.peer.wait_for_call("response_url")[-1]
    assert "second person" in text_of(refusal.args)
    assert refusal.args.get("response_type") == "ephemeral"
    assert halt_posts(stack) == 0
    assert "halt.approval_refused:denied" in actions_of(stack, approval_id)


def test_approver_without_the_role_is_refused(stack: Stack) -> None:
    approval_id, posted = request_halt(stack)
    click(stack, user=STRANGER, approval_id=approval_id, posted=posted)
    refusal = stack.peer.wait_for_call("response_url")[-1]
    assert "halt authority" in text_of(refusal.args)
    assert halt_posts(stack) == 0
    # The request is still open: a real halt authority can approve it.
    click(stack, user=HALT_B, approval_id=approval_id, posted=posted)
    stack.peer.wait_for_call("chat.update", where=lambda c: "Applied" in text_of(c.args))
    assert halt_posts(stack) == 1


def test_rejected_request_never_executes(stack: Stack) -> None:
    approval_id, posted = request_halt(stack)
    click(stack, user=HALT_A, approval_id=approval_id, posted=posted, action="reject")
    stack.peer.wait_for_call("chat.update", where=lambda c: "Rejected" in text_of(c.args))
    click(stack, user=HALT_B, approval_id=approval_id, posted=posted)
    late = stack.peer.wait_for_call("response_url")[-1]
    assert "Already handled (rejected)" in text_of(late.args) and f"<@{HALT_A}>" in text_of(late.args)
    assert halt_posts(stack) == 0


def test_expired_request_is_marked_and_cannot_be_approved(stack: Stack, clock: Clock) -> None:
    approval_id, posted = request_halt(stack)
    clock.advance(stack.deps.settings.approval_ttl_seconds + 1)
    click(stack, user=HALT_A, approval_id=approval_id, posted=posted)
    answer = stack.peer.wait_for_call("response_url")[-1]
    assert "expired" in text_of(answer.args)
    stack.peer.wait_for_call("chat.update", where=lambda c: "Expired" in text_of(c.args))
    assert halt_posts(stack) == 0
    assert "halt.expired:accepted" in actions_of(stack, approval_id)


def test_sweeper_expires_requests_nobody_clicked(stack: Stack, clock: Clock) -> None:
    from bot.approvals.sweep import sweep

    approval_id, _ = request_halt(stack)
    assert sweep(stack.deps.flow) == 0
    clock.advance(stack.deps.settings.approval_ttl_seconds + 1)
    assert sweep(stack.deps.flow) == 1
    stack.peer.wait_for_call("chat.update", where=lambda c: "Expired" in text_of(c.args))
    row = stack.deps.approvals.get(approval_id=approval_id)
    assert row is not None and row.status == "expired"
