"""The HTTP edge: signatures always verified, replays harmless, health/readiness/metrics, Slack rate limits."""

from __future__ import annotations

import time
from urllib.parse import urlencode

import httpx

from bot.storage.db import make_engine
from commands.server.web import EVENTS_PATH, MAX_BODY_BYTES
from rehearsal.sim.stack import SIGNING_SECRET, Stack
from rehearsal.slack.client import sign
from tests.support.common import CHANNEL, HALT_A, OPERATOR, click, request_halt, text_of, wait_until


def halt_body(user: str = OPERATOR) -> str:
    return urlencode(
        {
            "command": "/halt",
            "text": "global x",
            "user_id": user,
            "team_id": "T0LOCAL00",
            "channel_id": CHANNEL,
            "trigger_id": "t1",
            "response_url": "http://127.0.0.1:9/r",
        }
    )


def nothing_happened(stack: Stack) -> bool:
    return not stack.peer.calls_to("chat.postMessage") and not stack.backend.requests


def denials(stack: Stack) -> list[str]:
    return [row.action for row in stack.deps.audit.rows() if row.action == "request.signature_denied"]


def test_bad_signature_is_refused_and_causes_nothing(stack: Stack) -> None:
    body, ts = halt_body(), int(time.time())
    response = stack.sender.post_raw(body, timestamp=ts, signature=sign("not-the-secret", body, ts))
    assert response.status_code == 401
    assert nothing_happened(stack)
    wait_until(lambda: denials(stack) == ["request.signature_denied"])  # written off the request thread


def test_stale_timestamp_is_refused_even_with_a_valid_signature(stack: Stack) -> None:
    body, ts = halt_body(), int(time.time()) - 6 * 60
    response = stack.sender.post_raw(body, timestamp=ts, signature=sign(SIGNING_SECRET, body, ts))
    assert response.status_code == 401
    assert nothing_happened(stack)


def test_missing_signature_headers_are_refused(stack: Stack) -> None:
    response = httpx.post(
        stack.server.url + "/slack/events",
        content=halt_body(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 401
    assert nothing_happened(stack)


def test_an_oversized_body_is_refused_before_it_is_read(stack: Stack) -> None:
    body = b"text=" + b"x" * (MAX_BODY_BYTES + 1)
    response = httpx.post(
        stack.server.url + EVENTS_PATH,
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=30,
    )
    assert response.status_code == 413
    assert nothing_happened(stack)
    wait_until(lambda: any(r.action == "request.oversized_denied" for r in stack.deps.audit.rows()))
    rows = [r for r in stack.deps.audit.rows() if r.action == "request.oversized_denied"]
    assert len(rows) == 1 and '"why":"oversized"' in rows[0].params
    assert 'opsbot_requests_denied_total{reason="oversized"} 1.0' in httpx.get(stack.server.url + "/metrics").text


def test_a_body_that_is_not_utf8_gets_a_plain_400_not_a_crash(stack: Stack) -> None:
    response = httpx.post(
        stack.server.url + EVENTS_PATH,
        content=b"\xff\xfe\xfa",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": str(int(time.time())),
            "X-Slack-Signature": "v0=" + "0" * 64,
        },
    )
    assert response.status_code == 400 and response.text == "request body is not UTF-8\n"
    assert nothing_happened(stack)
    wait_until(lambda: [r.action for r in stack.deps.audit.rows()] == ["request.undecodable_denied"])
    # The next well-formed request is served as usual.
    assert stack.sender.command(user=OPERATOR, command="/halt", text="status", channel=CHANNEL).status_code == 200


def test_replayed_click_executes_once(stack: Stack) -> None:
    approval_id, posted = request_halt(stack)
    click(stack, user=HALT_A, approval_id=approval_id, posted=posted)
    stack.peer.wait_for_call("chat.update", where=lambda c: "Applied" in text_of(c.args))
    # The same body signed afresh (another timestamp) is a second click, not a replay: it is answered.
    again = stack.sender.post_raw(stack.sender.last_body, timestamp=int(time.time()) + 1)
    assert again.status_code == 200
    answer = stack.peer.wait_for_call("response_url")[-1]
    assert "Already handled" in text_of(answer.args)
    assert len(stack.backend.calls("POST", "/api/trading-control/halt")) == 1


def test_health_readiness_and_metrics(stack: Stack) -> None:
    base = stack.server.url
    assert httpx.get(base + "/healthz").status_code == 200
    assert httpx.get(base + "/readyz").text.strip() == "ready"
    request_halt(stack)
    metrics = httpx.get(base + "/metrics").text
    assert 'opsbot_approval_steps_total{action="halt",step="requested"} 1.0' in metrics
    assert httpx.get(base + "/nope").status_code == 404


def test_readiness_fails_when_the_store_is_unreachable(stack: Stack) -> None:
    stack.deps.engine = make_engine("postgresql+psycopg://nobody:x@127.0.0.1:1/none")
    response = httpx.get(stack.server.url + "/readyz")
    assert response.status_code == 503 and "store unreachable" in response.text


def test_slack_rate_limit_is_waited_out(stack: Stack) -> None:
    stack.peer.ratelimit("chat.postMessage", times=1, retry_after=0)
    approval_id, _ = request_halt(stack)
    assert len(stack.peer.calls_to("chat.postMessage")) == 2  # one 429, then the retry that landed
    wait_until(
        lambda: (row := stack.deps.approvals.get(approval_id=approval_id)) is not None and row.status == "pending"
    )


def test_a_rate_limited_card_is_posted_once_slack_lets_it_through(stack: Stack) -> None:
    stack.peer.ratelimit("chat.postMessage", times=3, retry_after=0)
    response = stack.sender.command(user=OPERATOR, command="/halt", text="global storm", channel=CHANNEL)
    assert response.status_code == 200
    stack.peer.wait_for(lambda _: len(stack.peer.channel_messages(CHANNEL)) == 1, timeout=15)
    assert len(stack.peer.calls_to("chat.postMessage")) == 4  # three refusals, then the card
    rows = [(r.action, r.outcome) for r in stack.deps.audit.rows()]
    assert ("halt.requested", "accepted") in rows and ("halt.cancelled", "accepted") not in rows
    assert stack.backend.calls("POST", "/api/trading-control/halt") == []
