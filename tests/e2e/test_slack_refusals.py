"""Slack refusing the bot's calls for good: it is not retried, the refusal is audited and shown with
how to fix it, and nothing is left half done."""

from __future__ import annotations

import pytest

from commands.webapi.refusals import classify
from rehearsal.sim.stack import Stack
from tests.support.common import CHANNEL, OPERATOR, text_of, wait_until


def test_a_card_slack_refuses_for_good_is_not_retried_and_the_requester_is_told_how_to_fix_it(stack: Stack) -> None:
    stack.peer.workspace.channels.set_member(CHANNEL, False)  # removed from the channel, and no
    stack.peer.workspace.scopes -= {"chat:write.public"}  # chat:write.public to post there anyway
    response = stack.sender.command(user=OPERATOR, command="/halt", text="global fat-finger storm", channel=CHANNEL)
    assert response.status_code == 200
    wait_until(lambda: any("did not accept" in text_of(m) for m in stack.peer.ephemerals(OPERATOR)), timeout=10)
    (told,) = [text_of(m) for m in stack.peer.ephemerals(OPERATOR) if "did not accept" in text_of(m)]
    assert "not a member of" in told and "`/invite @opsbot`" in told and "nothing was done" in told
    assert len(stack.peer.calls_to("chat.postMessage")) == 1  # permanent: not retried
    refused = [r for r in stack.deps.audit.rows() if r.action == "halt.slack_refused"]
    assert len(refused) == 1 and "not_in_channel" in refused[0].params and "/invite @opsbot" in refused[0].detail
    assert any(r.action == "halt.cancelled" for r in stack.deps.audit.rows())
    shown = stack.deps.home.facts().slack or ""
    assert "never delivered" in shown and "not_in_channel" in shown
    assert stack.peer.channel_messages(CHANNEL) == []
    assert [r.path for r in stack.backend.requests if r.method != "GET"] == []  # nothing halted
    # The requester hears it where they typed the command: why, how to fix it, and that nothing was done.
    wait_until(lambda: any("did not accept" in text_of(m) for m in stack.peer.ephemerals(OPERATOR)), timeout=10)
    (told,) = [text_of(m) for m in stack.peer.ephemerals(OPERATOR) if "did not accept" in text_of(m)]
    assert "not a member of" in told and "`/invite @opsbot`" in told and "nothing was done" in told


@pytest.mark.parametrize(
    ("error", "permanent", "said"),
    [
        ("channel_not_found", True, "invite the bot"),
        ("not_in_channel", True, "`/invite @opsbot`"),
        ("method_not_supported_for_channel_type", True, "private"),
        ("invalid_blocks", True, "layout"),
        ("msg_too_long", True, "too long"),
        ("is_archived", True, "archived"),
        ("invalid_auth", True, "SLACK_BOT_TOKEN"),
        ("ratelimited", False, "`ratelimited`"),
        ("internal_error", False, "passing fault"),
        ("hash_conflict", False, "App Home changed"),
        ("some_new_error", True, "`some_new_error`"),
    ],
)
def test_each_refusal_is_classed_and_explained(error: str, permanent: bool, said: str) -> None:
    refusal = classify(error, channel="C0INCIDENT")
    assert refusal.permanent is permanent and refusal.retryable is not permanent and said in refusal.text


def test_missing_scope_names_the_scope_to_add() -> None:
    assert "`channels:join`" in classify("missing_scope", needed="channels:join").text


def test_a_retried_event_is_acked_and_acted_on_like_the_first(stack: Stack) -> None:
    event = {"type": "app_home_opened", "user": OPERATOR, "channel": "D0HOME", "tab": "home"}
    for retry_num in (None, 1, 2):  # Slack's retries carry the same event id and X-Slack-Retry-Num
        response = stack.sender.event(event, event_id="Ev0RETRIED", retry_num=retry_num)
        assert response.status_code == 200, response.text
    headers = stack.sender.last_headers
    assert headers["X-Slack-Retry-Num"] == "2" and headers["X-Slack-Retry-Reason"] == "http_timeout"
    published = stack.peer.wait_for_call(
        "views.publish", count=1, timeout=10, where=lambda c: c.args.get("user_id") == OPERATOR
    )
    assert published and stack.peer.workspace.home_view(OPERATOR) is not None


def test_a_home_slack_refuses_for_good_is_audited_once_not_in_a_loop(stack: Stack) -> None:
    stack.peer.fail("views.publish", error="invalid_arguments", times=50)
    event = {"type": "app_home_opened", "user": OPERATOR, "channel": "D0HOME", "tab": "home"}
    for _ in range(3):
        assert stack.sender.event(event).status_code == 200
    stack.peer.wait_for_call("views.publish", count=3, timeout=10)
    wait_until(lambda: any(r.action == "home.publish_refused" for r in stack.deps.audit.rows()), timeout=10)
    refused = [r for r in stack.deps.audit.rows() if r.action == "home.publish_refused"]
    assert len(refused) == 1 and "invalid_arguments" in refused[0].params and "view" in refused[0].detail
