"""Bad input and refused users: an ephemeral answer, an audit row, and nothing executed or posted."""

from __future__ import annotations

import time

import pytest

from rehearsal.sim.stack import Stack
from tests.support.common import CHANNEL, HALT_A, OPERATOR, STRANGER, text_of


def ack_text(stack: Stack, *, text: str, user: str = OPERATOR, channel: str = CHANNEL) -> str:
    response = stack.sender.command(user=user, command="/halt", text=text, channel=channel)
    assert response.status_code == 200
    body = response.json()
    assert body.get("response_type") == "ephemeral"
    return str(body["text"])


def assert_nothing_happened(stack: Stack) -> None:
    assert stack.backend.calls("POST", "/api/trading-control/halt") == []
    assert stack.peer.calls_to("chat.postMessage") == []


def refusals(stack: Stack) -> list[tuple[str, str, str]]:
    rows = list(stack.deps.audit.rows())
    return [(r.action, r.outcome, r.user_id) for r in rows if r.action.endswith(".refused")]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "Here is how"),
        ("help", "Here is how"),
        ("galaxy x", "is not a scope"),
        ("global", "A reason is required"),
        ("tenant: oops", "is not a scope"),
        ("global r --force", "Unknown option"),
        ("resume global r --now", "`--now` is not available for resume"),
        ("status please", "takes nothing after it"),
    ],
)
def test_bad_input_gets_usage_and_nothing_runs(stack: Stack, text: str, problem: str) -> None:
    answer = ack_text(stack, text=text)
    assert problem in answer
    assert "/halt status" in answer and "/halt resume" in answer  # the usage is part of the answer
    stack.peer.wait_for(lambda calls: len(refusals(stack)) == 1)
    assert refusals(stack) == [("halt.refused", "invalid", OPERATOR)]
    assert_nothing_happened(stack)
    time.sleep(0.3)  # the lazy half has finished (its audit row is there); give a stray answer time to land
    assert stack.peer.calls_to("response_url") == []  # the ack answered; the person is not told twice


def test_five_thousand_characters_are_refused_with_a_bounded_echo(stack: Stack) -> None:
    text = "global " + "x" * 5000
    answer = ack_text(stack, text=text)
    assert "at most 500" in answer
    assert len(answer) < 1500  # the echo is bounded, not 5,000 characters back into the channel
    assert "You typed:" in answer
    assert_nothing_happened(stack)


def test_mentions_in_the_reason_are_escaped_not_broadcast(stack: Stack) -> None:
    response = stack.sender.command(
        user=OPERATOR, command="/halt", text="global <!channel> <@U123> & co", channel=CHANNEL
    )
    assert response.status_code == 200
    posted = stack.peer.wait_for_call("chat.postMessage")[-1]
    shown = text_of(posted.args)
    assert "<!channel>" not in shown and "<@U123>" not in shown
    assert "&lt;!channel&gt; &lt;@U123&gt; &amp; co" in shown


def test_mention_in_a_bad_scope_is_escaped_in_the_echo(stack: Stack) -> None:
    answer = ack_text(stack, text="<!here> now")
    assert "<!here>" not in answer and "&lt;!here&gt;" in answer


def test_non_operator_is_refused_and_audited(stack: Stack) -> None:
    answer = ack_text(stack, text="global market on fire", user=STRANGER)
    assert "Not allowed" in answer and "operator" in answer
    stack.peer.wait_for(lambda calls: len(refusals(stack)) == 1)
    assert refusals(stack) == [("halt.refused", "denied", STRANGER)]
    assert_nothing_happened(stack)
    assert stack.peer.calls_to("response_url") == []


def test_non_operator_cannot_even_read_status(stack: Stack) -> None:
    answer = ack_text(stack, text="status", user=STRANGER)
    assert "Not allowed" in answer
    assert stack.backend.calls("GET", "/api/trading-control") == []


def test_break_glass_needs_a_halt_authority(stack: Stack) -> None:
    answer = ack_text(stack, text="global runaway algo --now", user=OPERATOR)
    assert "break-glass needs a halt authority" in answer
    assert_nothing_happened(stack)


def test_commands_outside_the_incident_channel_are_refused(sqlite_url: str) -> None:
    from tests.support.common import ROLES

    with Stack(database_url=sqlite_url, overrides={**ROLES, "OPSBOT_INCIDENT_CHANNEL": CHANNEL}) as stack:
        answer = ack_text(stack, text="global wrong room", user=HALT_A, channel="C0RANDOM")
        assert "only accepted in" in answer and CHANNEL in answer
        assert_nothing_happened(stack)


def test_nobody_is_allowed_when_no_roles_are_configured(sqlite_url: str) -> None:
    with Stack(database_url=sqlite_url) as stack:
        answer = ack_text(stack, text="status", user=OPERATOR)
        assert "Not allowed" in answer
