"""Drills of the kill switch's faults: Slack slow, rate-limiting or down, the store down, the bot crashing.

The workspace runs the bot in its own process, so *Bot crash* cannot kill a process: switched on it
stops the bot's HTTP server (Slack's requests then meet a closed port, as with a dead process) and
abandons the app; switched off it builds a new app and server over the same settings and store on the
same port, as a restart would. *Store down* makes every statement on the bot's store fail as a refused
connection would, so the break-glass journal and the fail-closed refusals can be watched.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from commands.server.app import build_app
from commands.server.web import Router
from rehearsal.sim.stack import HttpServer, Stack
from rehearsal.slack.calls import Fault

SLACK_SLOW_S = 2.0
RETRY_AFTER_S = 30

KILL_SWITCH_DRILLS: tuple[tuple[str, str, str], ...] = (
    ("slack-slow", "Slack slow", f"every Slack Web API call and response_url answers after {SLACK_SLOW_S:g} s"),
    (
        "slack-rate-limiting",
        "Slack rate-limiting",
        f"every Slack Web API call answers 429 ratelimited with Retry-After: {RETRY_AFTER_S}",
    ),
    (
        "slack-down",
        "Slack down",
        "Slack hangs up on every Web API call without answering, as an unreachable Slack looks to the bot",
    ),
    (
        "store-down",
        "Store down",
        "every statement on the bot's store fails as a refused connection: break-glass halts go to the local "
        "journal, everything else is refused; switched off, the journal is merged",
    ),
    (
        "bot-crash",
        "Bot crash",
        "the bot's server stops answering (in-process here: its app and server are dropped, not a process "
        "killed); switched off, a new app and server start over the same store",
    ),
)


class KillSwitchFaults:
    def __init__(self, stack: Stack) -> None:
        self._stack = stack
        self._store_down = False
        self._port: int | None = None  # set while the bot is "crashed"
        event.listen(stack.deps.engine, "before_cursor_execute", self._refuse)

    def switch(self, name: str, on: bool) -> None:
        peer = self._stack.peer
        if name == "slack-slow":
            peer.latency_s = SLACK_SLOW_S if on else 0.0
        elif name == "slack-rate-limiting":
            peer.outage = Fault(429, "ratelimited", RETRY_AFTER_S) if on else None
        elif name == "slack-down":
            peer.down = on
        elif name == "store-down":
            self._store_down = on
        elif name == "bot-crash":
            self._crash() if on else self._restart()

    def _refuse(self, *_: Any) -> None:
        if self._store_down:
            raise OperationalError("(store-down drill)", None, ConnectionRefusedError("connection refused"))

    def _crash(self) -> None:
        self._port = int(self._stack.server.url.rsplit(":", 1)[1])
        self._stack.server.stop()

    def _restart(self) -> None:
        if self._port is None:
            return
        stack = self._stack
        stack.server = HttpServer(Router(build_app(stack.deps), stack.deps), port=self._port).start()
        self._port = None
