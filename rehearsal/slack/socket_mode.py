"""Slack's Socket Mode side for the local peer: single-use WebSocket URLs, `hello`, envelopes, acks.

Slack hands an app a WebSocket URL from `apps.connections.open` (the peer checks the app-level token
there), greets each connection with `hello`, then pushes envelopes
`{"envelope_id", "type": "slash_commands" | "interactive" | "events_api", "payload",
"accepts_response_payload"}` and expects `{"envelope_id", "payload"?}` back within 3 seconds.

The server is the `websockets` package's sync server rather than a hand-rolled RFC 6455 framer:
slack_sdk's built-in client masks frames, pings and pongs and closes like a real peer must be
answered, and a conforming server is what makes a passing test mean the bot talks WebSocket.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

from rehearsal.slack.client import SlackSender
from rehearsal.slack.state import SlackError, Workspace

if TYPE_CHECKING:
    from rehearsal.slack.peer import SlackPeer

__all__ = ["Envelope", "SocketAck", "SocketModeServer", "deliver_click", "deliver_command", "show_ack_payload"]

Json = dict[str, Any]
_logger = logging.getLogger(__name__)
ENVELOPE_TYPES = frozenset({"slash_commands", "interactive", "events_api"})
DISCONNECT_REASONS = frozenset({"warning", "refresh_requested", "link_disabled"})


@dataclass(frozen=True)
class Envelope:
    envelope_id: str
    type: str
    payload: Json
    accepts_response_payload: bool
    sent_at: float  # time.monotonic() when it went out
    retry_attempt: int = 0
    retry_of: str | None = None  # the envelope this one redelivers


@dataclass(frozen=True)
class SocketAck:
    """What the app sent back for an envelope; `payload` is None for a bare ack."""

    envelope_id: str
    payload: Json | None
    received_at: float  # time.monotonic()
    envelope: Envelope

    @property
    def seconds(self) -> float:
        return self.received_at - self.envelope.sent_at


class SocketModeServer:
    """WebSocket endpoint of the peer; envelopes go to the newest open connection, as one app gets one."""

    def __init__(self, *, app_id: str, app_token: str, on_ack: Callable[[SocketAck], None] | None = None) -> None:
        self.app_id, self.app_token = app_id, app_token
        self._on_ack = on_ack
        self._changed = threading.Condition()  # guards everything below
        self._tickets: set[str] = set()
        self._open: list[ServerConnection] = []
        self._envelopes: dict[str, Envelope] = {}
        self._acks: list[SocketAck] = []
        self._unmatched: list[str] = []  # messages from the app that answered no envelope
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._base = ""

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1") -> None:
        # compression=None: slack_sdk's built-in client never negotiates permessage-deflate anyway.
        server = serve(self._session, host, 0, process_request=self._check_ticket, compression=None, logger=_logger)
        self._server = server
        self._base = f"ws://{host}:{server.socket.getsockname()[1]}"
        self._thread = threading.Thread(target=server.serve_forever, name="slack-socket", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()  # closes open connections with 1001 "going away", as Slack does
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    # -- apps.connections.open --------------------------------------------------------------------

    def open_url(self, token: str | None) -> str:
        """apps.connections.open: only the app-level token (xapp-…) opens a socket; a bot or user token
        is the wrong type. Raises SlackError with Slack's error."""
        if not token:
            raise SlackError("not_authed")
        if not token.startswith("xapp-"):
            raise SlackError("not_allowed_token_type")
        if token != self.app_token:
            raise SlackError("invalid_auth")
        return self.issue_url()

    def issue_url(self) -> str:
        """A fresh single-use URL in Slack's shape (`…/link/?ticket=…&app_id=…`)."""
        if not self._base:
            raise RuntimeError("SocketModeServer is not started")
        ticket = secrets.token_hex(16)
        with self._changed:
            self._tickets.add(ticket)
        return f"{self._base}/link/?ticket={ticket}&app_id={self.app_id}"

    def _check_ticket(self, connection: ServerConnection, request: Request) -> Response | None:
        ticket = (parse_qs(urlsplit(request.path).query).get("ticket") or [""])[0]
        with self._changed:
            if ticket in self._tickets:
                self._tickets.discard(ticket)  # a ticket opens one connection
                return None
        return connection.respond(401, "invalid or used ticket\n")

    # -- one connection (its own thread, from the websockets server) --------------------------

    def _session(self, connection: ServerConnection) -> None:
        with self._changed:
            self._open.append(connection)
            count = len(self._open)
            self._changed.notify_all()
        try:
            connection.send(
                json.dumps(
                    {
                        "type": "hello",
                        "num_connections": count,
                        "debug_info": {
                            "host": "applink-local",
                            "build_number": 1,
                            "approximate_connection_time": 18060,
                        },
                        "connection_info": {"app_id": self.app_id},
                    }
                )
            )
            for message in connection:
                self._receive(message if isinstance(message, str) else message.decode("utf-8", "replace"))
        except ConnectionClosed:
            pass
        finally:
            with self._changed:
                self._open.remove(connection)
                self._changed.notify_all()

    def _receive(self, raw: str) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            message = None
        envelope_id = message.get("envelope_id") if isinstance(message, dict) else None
        with self._changed:
            envelope = self._envelopes.get(envelope_id) if isinstance(envelope_id, str) else None
            if envelope is None or not isinstance(message, dict):
                self._unmatched.append(raw)
                return
            payload = message.get("payload")
            ack = SocketAck(
                envelope.envelope_id, payload if isinstance(payload, dict) else None, time.monotonic(), envelope
            )
            self._acks.append(ack)
            self._changed.notify_all()
        if self._on_ack is not None:
            self._on_ack(ack)

    # -- what tests and rehearsals use --------------------------------------------------------

    @property
    def connections(self) -> int:
        with self._changed:
            return len(self._open)

    @property
    def acks(self) -> list[SocketAck]:
        with self._changed:
            return list(self._acks)

    @property
    def unmatched(self) -> list[str]:
        with self._changed:
            return list(self._unmatched)

    def wait_connected(self, timeout: float = 10.0) -> None:
        """Until an app holds an open connection; AssertionError after `timeout` s."""
        with self._changed:
            if not self._changed.wait_for(lambda: bool(self._open), timeout):
                raise AssertionError(f"no Socket Mode connection within {timeout}s")

    def deliver(
        self, type_: str, payload: Json, *, accepts_response_payload: bool = False, retry_of: Envelope | None = None
    ) -> Envelope:
        """Push one envelope to the newest open connection, as Slack does with a fresh payload."""
        if type_ not in ENVELOPE_TYPES:
            raise ValueError(f"unknown envelope type {type_!r}")
        envelope_id = f"{secrets.token_hex(4)}-{secrets.token_hex(2)}-{secrets.token_hex(2)}-{secrets.token_hex(6)}"
        with self._changed:
            if not self._open:
                raise AssertionError("no Socket Mode connection to deliver to")
            connection = self._open[-1]
            attempt = retry_of.retry_attempt + 1 if retry_of else 0
            envelope = Envelope(
                envelope_id,
                type_,
                payload,
                accepts_response_payload,
                time.monotonic(),
                attempt,
                retry_of.envelope_id if retry_of else None,
            )
            self._envelopes[envelope_id] = envelope
        body: Json = {
            "envelope_id": envelope_id,
            "type": type_,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        if type_ == "events_api":
            body.update(retry_attempt=envelope.retry_attempt, retry_reason="timeout" if retry_of else "")
        connection.send(json.dumps(body))
        return envelope

    def wait_ack(self, envelope: Envelope, timeout: float = 3.0) -> SocketAck:
        """The app's ack of `envelope`; AssertionError after `timeout` s (Slack gives an app 3 s)."""

        def found() -> SocketAck | None:
            return next((a for a in self._acks if a.envelope_id == envelope.envelope_id), None)

        with self._changed:
            if not self._changed.wait_for(lambda: found() is not None, timeout):
                raise AssertionError(
                    f"no ack of {envelope.type} envelope within {timeout}s; unmatched messages: {self._unmatched[-5:]}"
                )
            ack = found()
        assert ack is not None
        return ack

    def request_refresh(self) -> None:
        """Slack's `disconnect` (refresh_requested): the app should open a new URL and reconnect."""
        self.disconnect("refresh_requested")

    def disconnect(self, reason: str, *, close: bool = False) -> None:
        """Slack's `disconnect` message: `warning` comes about 10 s before Slack drops a connection,
        `refresh_requested` asks for a new one, `link_disabled` means Socket Mode was turned off for
        the app. With `close`, the connections are then closed, as Slack does after a warning."""
        if reason not in DISCONNECT_REASONS:
            raise ValueError(f"unknown disconnect reason {reason!r}")
        with self._changed:
            targets = list(self._open)
        for connection in targets:
            with contextlib.suppress(ConnectionClosed):
                connection.send(
                    json.dumps({"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-local"}})
                )
                if close:
                    connection.close(1001, reason)

    def unacked(self) -> list[Envelope]:
        with self._changed:
            acked = {a.envelope_id for a in self._acks}
            redone = {e.retry_of for e in self._envelopes.values() if e.retry_of}
            return [e for e in self._envelopes.values() if e.envelope_id not in acked | redone]

    def redeliver_unacked(self) -> list[Envelope]:
        """Like Slack after an unacked event: each unacked events_api envelope again, with a fresh
        envelope id, `retry_attempt` one up and `retry_reason` "timeout", to the newest connection.
        Slash commands and interactions are not redelivered (the user sees an error instead)."""
        again = []
        for envelope in self.unacked():
            if envelope.type == "events_api":
                again.append(self.deliver(envelope.type, envelope.payload, retry_of=envelope))
        return again


class _Captured(SlackSender):
    """The HTTP sender's payloads, kept instead of posted: Socket Mode carries the very same payloads
    (a slash command's form fields as a JSON object, an interaction's `payload` JSON)."""

    body = ""

    def post_raw(self, body: str, **_: Any) -> httpx.Response:
        self.body = body
        return httpx.Response(200)


def _capture(peer: SlackPeer, send: Callable[[_Captured], object]) -> dict[str, str]:
    sender = _Captured(
        bot_url="http://socket-mode.invalid",
        signing_secret="unused",  # noqa: S106
        peer=peer,
        team_id=peer.team_id,
    )
    try:
        send(sender)
    finally:
        sender.close()
    return dict(parse_qsl(sender.body, keep_blank_values=True))


def slash_command_payload(peer: SlackPeer, *, user: str, command: str, text: str, channel: str) -> Json:
    return dict(_capture(peer, lambda s: s.command(user=user, command=command, text=text, channel=channel)))


def block_actions_payload(
    peer: SlackPeer, *, user: str, action_id: str, value: str, channel: str, message_ts: str, block_id: str
) -> Json:
    fields = _capture(
        peer,
        lambda s: s.click(
            user=user, action_id=action_id, value=value, channel=channel, message_ts=message_ts, block_id=block_id
        ),
    )
    payload = json.loads(fields["payload"])
    assert isinstance(payload, dict)
    return payload


def deliver_command(peer: SlackPeer, *, user: str, command: str, text: str, channel: str, timeout: float) -> SocketAck:
    payload = slash_command_payload(peer, user=user, command=command, text=text, channel=channel)
    return peer.socket.wait_ack(peer.socket.deliver("slash_commands", payload, accepts_response_payload=True), timeout)


def deliver_click(
    peer: SlackPeer,
    *,
    user: str,
    action_id: str,
    value: str,
    channel: str,
    message_ts: str,
    block_id: str,
    timeout: float,
) -> SocketAck:
    # Slack takes no response payload in the ack of a block_actions click.
    payload = block_actions_payload(
        peer, user=user, action_id=action_id, value=value, channel=channel, message_ts=message_ts, block_id=block_id
    )
    return peer.socket.wait_ack(peer.socket.deliver("interactive", payload), timeout)


def show_ack_payload(workspace: Workspace, ack: SocketAck) -> None:
    """Like an HTTP command's response body: a slash command's ack payload is shown to the user at once."""
    envelope = ack.envelope
    if envelope.type != "slash_commands" or not envelope.accepts_response_payload or not ack.payload:
        return
    url_id = str(envelope.payload.get("response_url", "")).rpartition("/response/")[2]
    with contextlib.suppress(SlackError):  # a refused payload shows nothing, as in Slack
        workspace.respond(url_id, ack.payload)
