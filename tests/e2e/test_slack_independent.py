"""A restart during a Slack outage still takes commands: who the bot is comes from its settings, and
no request waits on `auth.test`."""

from __future__ import annotations

from commands.server.app import build_app
from commands.server.web import Router
from rehearsal.sim.stack import HttpServer, Stack
from tests.support.common import CHANNEL, HALT_A, wait_until


def test_a_bot_started_while_auth_test_fails_still_halts(stack: Stack) -> None:
    stack.peer.fail("auth.test", error="service_unavailable", times=1000)
    # The restart: a new app and server over the same settings and store, Slack's auth.test failing.
    restarted = HttpServer(Router(build_app(stack.deps), stack.deps)).start()
    try:
        stack.sender.events_url = restarted.url + "/slack/events"
        response = stack.sender.command(user=HALT_A, command="/halt", text="global runaway algo --now", channel=CHANNEL)
        assert response.status_code == 200 and "no longer available" not in response.text
        wait_until(lambda: len(stack.backend.calls("POST", "/api/trading-control/halt")) == 1)
    finally:
        restarted.stop()
    assert stack.backend.control()["global"]["halted"] is True
    assert stack.peer.calls_to("auth.test") == []
    assert "halt.break_glass" in [r.action for r in stack.deps.audit.rows()]
