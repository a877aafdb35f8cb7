"""Replays of signed requests (same timestamp and signature, within Slack's window): acknowledged,
ignored on every replica, audited once; and `--now` counts only as the last word."""

from __future__ import annotations

import time

from commands.common import Invocation
from commands.server.web import Router
from commands.views.home import HOME_APPROVE
from rehearsal.sim.stack import HttpServer, Stack
from tests.e2e.test_home import open_home
from tests.support.common import CHANNEL, HALT_A, HALT_B, OPERATOR, approval_id_of, request_halt, text_of, wait_until


def freeze_clock(stack: Stack) -> None:
    """Sign every request with one timestamp, so re-sending the last body re-sends its exact signature."""
    fixed = time.time()
    stack.sender._clock = lambda: fixed  # type: ignore[attr-defined]


def replays(stack: Stack) -> list[str]:
    return [r.action for r in stack.deps.audit.rows() if r.action == "request.replayed"]


def halts_posted(stack: Stack) -> int:
    return len(stack.backend.calls("POST", "/api/trading-control/halt"))


def test_a_replayed_break_glass_halts_once_and_is_audited_once(stack: Stack) -> None:
    freeze_clock(stack)
    first = stack.sender.command(user=HALT_A, command="/halt", text="symbol:ACME runaway algo --now", channel=CHANNEL)
    assert first.status_code == 200
    wait_until(lambda: halts_posted(stack) == 1)
    for _ in range(3):
        again = stack.sender.post_raw(stack.sender.last_body)
        assert again.status_code == 200 and again.text == ""  # acknowledged, nothing said
    wait_until(lambda: replays(stack) == ["request.replayed"])
    time.sleep(0.3)  # give a wrongly accepted replay the time to reach the backend
    assert halts_posted(stack) == 1
    assert [r.action for r in stack.deps.audit.rows()].count("halt.break_glass") == 1
    assert 'opsbot_requests_denied_total{reason="replay"} 3.0' in stack.deps.metrics.render().decode()


def test_a_replay_sent_to_another_replica_is_ignored_there_too(stack: Stack) -> None:
    """The other replica has never seen the request in memory: the store's row is what stops it."""
    from commands.server.app import build_app

    freeze_clock(stack)
    stack.sender.command(user=HALT_A, command="/halt", text="global runaway algo --now", channel=CHANNEL)
    wait_until(lambda: halts_posted(stack) == 1)
    other = HttpServer(Router(build_app(stack.deps), stack.deps)).start()
    try:
        stack.sender.events_url = other.url + "/slack/events"
        assert stack.sender.post_raw(stack.sender.last_body).status_code == 200
        wait_until(lambda: replays(stack) == ["request.replayed"])
    finally:
        other.stop()
    assert halts_posted(stack) == 1


def test_a_replayed_resume_request_opens_one_request(stack: Stack) -> None:
    freeze_clock(stack)
    stack.sender.command(user=OPERATOR, command="/halt", text="resume global all clear", channel=CHANNEL)
    stack.peer.wait_for_call("chat.postMessage")
    for _ in range(3):
        assert stack.sender.post_raw(stack.sender.last_body).status_code == 200
    wait_until(lambda: replays(stack) == ["request.replayed"])
    time.sleep(0.3)
    assert len(stack.peer.calls_to("chat.postMessage")) == 1
    assert [r.action for r in stack.deps.audit.rows()].count("resume.requested") == 1


def test_replayed_clicks_run_nothing(stack: Stack) -> None:
    stack.sender.command(user=OPERATOR, command="/halt", text="global fat-finger storm", channel=CHANNEL)
    posted = stack.peer.wait_for_call("chat.postMessage")[-1]
    approval_id = approval_id_of(posted)
    wait_until(lambda: (row := stack.deps.approvals.get(approval_id=approval_id)) is not None and bool(row.message_ts))
    freeze_clock(stack)
    stack.sender.click(
        user=HALT_B,
        action_id="approve",
        value=approval_id,
        channel=CHANNEL,
        message_ts=str(posted.args.get("ts") or "0"),
    )
    stack.peer.wait_for_call("chat.update", where=lambda c: "Applied" in text_of(c.args))
    answers = len(stack.peer.calls_to("response_url"))
    for _ in range(3):
        assert stack.sender.post_raw(stack.sender.last_body).status_code == 200
    wait_until(lambda: replays(stack) == ["request.replayed"])
    time.sleep(0.3)
    assert halts_posted(stack) == 1
    assert len(stack.peer.calls_to("response_url")) == answers  # not even an "already handled"


def test_now_in_the_middle_of_the_reason_is_refused_not_break_glass(stack: Stack) -> None:
    response = stack.sender.command(user=HALT_A, command="/halt", text="symbol:ACME stop --now spread", channel=CHANNEL)
    assert response.status_code == 200 and "goes at the very end" in response.text
    time.sleep(0.2)
    assert halts_posted(stack) == 0 and not stack.peer.calls_to("chat.postMessage")


def test_socket_mode_requests_have_no_replay_key() -> None:
    assert Invocation.from_command({"user_id": "U1", "text": "status"}).replay_key is None


def test_a_replayed_click_on_the_app_home_decides_nothing(stack: Stack) -> None:
    approval_id, _ = request_halt(stack, user=HALT_A)
    view = open_home(stack, HALT_B)
    block = next(b for b in view["blocks"] if b.get("block_id") == f"home_{approval_id}")
    freeze_clock(stack)
    stack.sender.view_click(
        user=HALT_B, action_id=HOME_APPROVE, value=approval_id, block_id=block["block_id"], view=view
    )
    wait_until(lambda: halts_posted(stack) == 1, timeout=10)
    for _ in range(3):
        assert stack.sender.post_raw(stack.sender.last_body).status_code == 200
    wait_until(lambda: replays(stack) == ["request.replayed"])
    time.sleep(0.5)
    assert halts_posted(stack) == 1
    decided = [r.action for r in stack.deps.audit.rows() if r.action in ("halt.executed", "halt.approved")]
    assert decided.count("halt.executed") == 1
    # A replay that got through would be decided again and refused as already handled, on the home.
    homes = [text_of({"blocks": c.args["view"]["blocks"]}) for c in stack.peer.calls_to("views.publish")]
    assert not [h for h in homes if "Already handled" in h]
