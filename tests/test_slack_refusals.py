"""Slack refusing the bot's calls for good: the person is told why and how to fix it, the refusal
is audited, and nothing is left half done."""

from __future__ import annotations

import pytest

from bot.sim.stack import Stack
from bot.slack_refusals import classify
from tests.conftest import CHANNEL, OPERATOR, text_of, wait_until


def test_a_request_slack_will_not_post_is_cancelled_and_the_requester_told_how_to_fix_it(stack: Stack) -> None:
    stack.peer.workspace.channels.set_member(CHANNEL, False)  # removed from the channel, and no
    stack.peer.workspace.scopes -= {"chat:write.public"}     # chat:write.public to post there anyway
    response = stack.sender.command(user=OPERATOR, command="/halt", text="global fat-finger storm", channel=CHANNEL)
    assert response.status_code == 200
    wait_until(lambda: any("did not accept" in text_of(m) for m in stack.peer.ephemerals(OPERATOR)), timeout=10)
    (told,) = [text_of(m) for m in stack.peer.ephemerals(OPERATOR) if "did not accept" in text_of(m)]
    assert "not a member of" in told and "`/invite @opsbot`" in told and "nothing was done" in told
    assert "Fix that, then try again" in told
    refused = [r for r in stack.deps.audit.rows() if r.action.endswith(".slack_refused")]
    assert len(refused) == 1 and refused[0].outcome == "failed" and "not_in_channel" in refused[0].params
    assert stack.peer.channel_messages(CHANNEL) == []
    assert [r.path for r in stack.backend.requests if r.method != "GET"] == []  # nothing halted
    assert stack.backend.control()["global"]["halted"] is False


@pytest.mark.parametrize(("error", "permanent", "said"), [
    ("channel_not_found", True, "invite the bot"),
    ("not_in_channel", True, "`/invite @opsbot`"),
    ("method_not_supported_for_channel_type", True, "private"),
    ("invalid_blocks", True, "layout"),
    ("msg_too_long", True, "too long"),
    ("is_archived", True, "archived"),
    ("invalid_auth", True, "SLACK_BOT_TOKEN"),
    ("ratelimited", False, "tries again"),
    ("internal_error", False, "tries again"),
    ("hash_conflict", False, "published again"),
    ("some_new_error", True, "`some_new_error`"),
])
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
    published = stack.peer.wait_for_call("views.publish", count=1, timeout=10,
                                         where=lambda c: c.args.get("user_id") == OPERATOR)
    assert published and stack.peer.workspace.home_view(OPERATOR) is not None
