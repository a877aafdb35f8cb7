"""A local server that answers like the Slack Web API, for rehearsals and tests without Slack.

Point `slack_sdk.WebClient(base_url=peer.api_url)` (or `SLACK_API_URL`) at it. It keeps a small
workspace (see `slack_state`), records every call, and can be told to rate-limit or fail the
next calls of a method so retry and error paths run against real HTTP answers. With an app-level
token it also plays Socket Mode (`apps.connections.open` and the WebSocket of `slack_socket`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Self
from urllib.parse import parse_qsl, urlsplit

from rehearsal.loopback import LoopbackHandler, LoopbackServer, wait_for_interrupt
from rehearsal.slack.calls import ApiCall, CallLog, Fault
from rehearsal.slack.files import FileStore
from rehearsal.slack.rules import check_message, check_scope, check_view, manifest_scopes
from rehearsal.slack.socket_mode import SocketAck, SocketModeServer, deliver_click, deliver_command, show_ack_payload
from rehearsal.slack.state import Json, SlackError, Workspace

__all__ = ["ApiCall", "SlackPeer", "SocketAck", "main"]

_logger = logging.getLogger(__name__)

_METHODS: dict[str, Callable[[Workspace, Json], Json]] = {
    "auth.test": Workspace.auth_test,
    "chat.postMessage": Workspace.post_message,
    "chat.update": Workspace.update,
    "chat.postEphemeral": Workspace.post_ephemeral,
    "chat.getPermalink": Workspace.get_permalink,
    "views.publish": Workspace.publish_view,
    "users.info": Workspace.users_info,
    "conversations.info": Workspace.conversations_info,
    "conversations.join": Workspace.conversations_join,
}
# The rehearsal workspace's channels: (id, name, private, bot is a member). The announce channel is
# public and the bot not in it: it posts there with chat:write.public, and joins to share files.
DEFAULT_CHANNELS = (
    ("C0INCIDENT", "incident", False, True),
    ("C0ANNOUNCE", "announce", False, False),
    ("C0RANDOM", "random", False, False),
)
# The files API (slack_sdk's files_upload_v2), answered by the peer's FileStore.
_FILE_METHODS: dict[str, Callable[[FileStore, Json], Json]] = {
    "files.getUploadURLExternal": FileStore.get_upload_url,
    "files.completeUploadExternal": FileStore.complete,
}
# Form-encoded calls carry structured arguments as JSON strings; Slack decodes these.
_JSON_ARGS = ("blocks", "attachments", "view")


@dataclass(frozen=True)
class _Answer:
    status: int
    body: Json
    headers: dict[str, str]


class SlackPeer(LoopbackServer):
    """The Slack side of the Web API on loopback; `start()` it, or use it as a context manager."""

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-local-test",  # noqa: S107 - a rehearsal token, not a credential
        app_token: str = "xapp-local-test",  # noqa: S107 - likewise; Socket Mode's app-level token
        team_id: str = "T0LOCAL00",
        bot_user_id: str = "UBOT",
        host: str = "127.0.0.1",
        port: int = 0,
        scopes: frozenset[str] | None = None,
        channels: tuple[tuple[str, str, bool, bool], ...] = DEFAULT_CHANNELS,
    ) -> None:
        """`scopes`: the bot token's (default: what manifest.yaml asks for); `channels` as DEFAULT_CHANNELS."""
        super().__init__(_Handler, host=host, port=port, thread_name="slack-peer")
        self.bot_token, self.app_token, self.team_id, self.bot_user_id = bot_token, app_token, team_id, bot_user_id
        self.workspace = Workspace(team_id=team_id, bot_user_id=bot_user_id)
        self.workspace.scopes = manifest_scopes() if scopes is None else frozenset(scopes)
        for channel_id, name, private, member in channels:
            self.workspace.add_channel(channel_id, name=name, is_private=private, is_member=member)
        self.files = FileStore(self.workspace, lambda: self.base_url)
        self.socket = SocketModeServer(
            app_id=self.workspace.app_id, app_token=app_token, on_ack=lambda ack: show_ack_payload(self.workspace, ack)
        )
        self._log = CallLog()
        # Outage rehearsal: every Web API call waits `latency_s` first; while `down`, the peer hangs
        # up on every Web API call without answering (as an unreachable Slack looks to a client).
        self.latency_s = 0.0
        self.down = False
        self.outage: Fault | None = None  # while set, every Web API call and response_url gets this answer

    # -- lifecycle: the context manager comes from LoopbackServer -------------------------------

    def start(self) -> Self:
        super().start()
        self.socket.start(self._address[0])
        return self

    def stop(self) -> None:
        self.socket.stop()
        super().stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("SlackPeer is not started")
        return self.url

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    def response_url(
        self, *, channel: str | None = None, user: str | None = None, message_ts: str | None = None
    ) -> str:
        """A fresh response_url; give the context Slack would know so posts to it land somewhere."""
        return f"{self.base_url}/response/{self.workspace.new_response_url(channel, user, message_ts)}"

    # -- what happened ------------------------------------------------------------------------

    @property
    def calls(self) -> list[ApiCall]:
        return self._log.snapshot()

    def calls_to(self, method: str) -> list[ApiCall]:
        return [call for call in self.calls if call.method == method]

    def wait_for(self, predicate: Callable[[list[ApiCall]], bool], timeout: float = 5.0) -> list[ApiCall]:
        """The calls so far once `predicate` holds; AssertionError listing them after `timeout` s."""
        return self._log.wait_for(predicate, timeout)

    def wait_for_call(
        self,
        method: str,
        *,
        count: int = 1,
        timeout: float = 5.0,
        where: Callable[[ApiCall], bool] | None = None,
    ) -> list[ApiCall]:
        def matching(calls: list[ApiCall]) -> list[ApiCall]:
            return [c for c in calls if c.method == method and (where is None or where(c))]

        return matching(self.wait_for(lambda calls: len(matching(calls)) >= count, timeout))

    @property
    def messages(self) -> dict[str, list[Json]]:
        return self.workspace.messages()

    def channel_messages(self, channel: str) -> list[Json]:
        return self.workspace.channel_messages(channel)

    def ephemerals(self, user: str | None = None) -> list[Json]:
        return self.workspace.ephemerals(user)

    # -- Socket Mode: Slack's side of the app's WebSocket (rehearsal.slack.socket_mode) ---------------

    def socket_command(
        self, *, user: str, command: str, text: str, channel: str = "C0INCIDENT", timeout: float = 3.0
    ) -> SocketAck:
        """Deliver a slash command over the socket; the app's ack, or AssertionError after `timeout` s."""
        return deliver_command(self, user=user, command=command, text=text, channel=channel, timeout=timeout)

    def socket_click(
        self,
        *,
        user: str,
        action_id: str,
        value: str,
        channel: str,
        message_ts: str,
        block_id: str = "approval",
        timeout: float = 3.0,
    ) -> SocketAck:
        """A button click (block_actions) over the socket, carrying the message the peer holds."""
        return deliver_click(
            self,
            user=user,
            action_id=action_id,
            value=value,
            channel=channel,
            message_ts=message_ts,
            block_id=block_id,
            timeout=timeout,
        )

    # -- fault injection ----------------------------------------------------------------------

    def ratelimit(self, method: str, *, times: int = 1, retry_after: int = 1) -> None:
        self._log.add_faults(method, Fault(429, "ratelimited", retry_after), times)

    def fail(self, method: str, *, error: str, times: int = 1) -> None:
        self._log.add_faults(method, Fault(200, error), times)

    def drop(self, method: str, *, times: int = 1) -> None:
        """Hang up on the next `times` calls of `method` before doing anything (recorded as "dropped:<method>")."""
        self._log.add_faults(method, Fault(0, "dropped"), times)

    def _hangs_up(self, method: str, args: Json, token: str | None) -> bool:
        if self.latency_s > 0:
            time.sleep(self.latency_s)
        dropping = self.down or self._log.next_fault(method, only_status=0) is not None
        if dropping:
            self._log.record(ApiCall(f"dropped:{method}", _decode_json_args(args), token, time.time()))
        return dropping

    # -- request handling (called from server threads) ----------------------------------------

    def _api(self, method: str, args: Json, token: str | None) -> _Answer:
        args = _decode_json_args(args)
        answer = self._answer_api(method, args, token)
        # Recorded after the workspace changed, so a waiter never sees a call before its effect.
        self._log.record(ApiCall(method, args, token, time.time(), answer.body, answer.status))
        return answer

    def _answer_api(self, method: str, args: Json, token: str | None) -> _Answer:
        fault = self.outage or self._log.next_fault(method)
        if fault is not None:
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            return _Answer(fault.status, {"ok": False, "error": fault.error}, headers)
        handler = self._handler(method)
        try:
            if method == "apps.connections.open":
                return _Answer(200, {"ok": True, "url": self.socket.open_url(token)}, {})
            if handler is None:
                raise SlackError("unknown_method")
            if not token:
                raise SlackError("not_authed")
            if token.startswith("xapp-"):  # app-level tokens open sockets and call nothing else
                raise SlackError("not_allowed_token_type")
            if token != self.bot_token:
                raise SlackError("invalid_auth")
            check_scope(method, self.workspace.scopes)
            _check_content(method, args)
            return _Answer(200, {"ok": True, **handler(args)}, {})
        except SlackError as e:
            return _Answer(e.status, {"ok": False, "error": e.error, **e.extra}, {})

    def _handler(self, method: str) -> Callable[[Json], Json] | None:
        if method in _FILE_METHODS:
            return lambda args: _FILE_METHODS[method](self.files, args)
        found = _METHODS.get(method)
        return (lambda args: found(self.workspace, args)) if found is not None else None

    def _upload(self, file_id: str, data: bytes) -> None:
        status, body = self.files.receive(file_id, data)
        self._log.record(
            ApiCall("upload", {"file_id": file_id, "bytes": len(data), "status": status}, None, time.time())
        )
        if status != 200:
            raise SlackError(body, status)

    def _respond(self, url_id: str, payload: Json) -> _Answer:
        outage = self.outage
        if outage is not None:
            headers = {"Retry-After": str(outage.retry_after)} if outage.retry_after is not None else {}
            return _Answer(outage.status, {"ok": False, "error": outage.error}, headers)
        try:
            self.workspace.respond(url_id, payload)
            answer = _Answer(200, {"ok": True}, {})
        except SlackError as e:
            answer = _Answer(e.status, {"ok": False, "error": e.error}, {})
        self._log.record(ApiCall("response_url", {**payload, "_url_id": url_id}, None, time.time()))
        return answer


class _Handler(LoopbackHandler[SlackPeer]):
    server_version = "SlackPeer/1"
    sim_logger = _logger
    log_format = "slack peer: %s"

    def serve(self, method: str) -> None:
        peer = self.owner
        url = urlsplit(self.path)
        if url.path.startswith("/upload/") and self.command == "POST":
            self._send_upload(peer, url.path.removeprefix("/upload/"))
            return
        try:
            args = self._read_args(url.query)
        except ValueError:
            self._send(
                _Answer(400 if url.path.startswith("/response/") else 200, {"ok": False, "error": "invalid_json"}, {})
            )
            return
        if url.path.startswith("/api/"):
            token = self._bearer() or args.pop("token", None)
            if peer._hangs_up(url.path.removeprefix("/api/"), args, token):
                self.close_connection = True
                return
            self._send(peer._api(url.path.removeprefix("/api/"), args, token))
        elif url.path.startswith("/response/") and self.command == "POST":
            self._send(peer._respond(url.path.removeprefix("/response/"), args))
        else:
            self._send(_Answer(404, {"ok": False, "error": "not_found"}, {}))

    def _send_upload(self, peer: SlackPeer, file_id: str) -> None:
        """The upload URL answers in plain text, like files.slack.com."""
        data = self.read_body(strict=True)
        try:
            peer._upload(file_id, data)
            status, body = 200, f"OK - {len(data)}"
        except SlackError as e:
            status, body = e.status, e.error
        payload = body.encode("utf-8")
        self.send_payload(
            status, {"Content-Type": "text/plain; charset=utf-8", "Content-Length": str(len(payload))}, payload
        )

    def _read_args(self, query: str) -> Json:
        args: Json = dict(parse_qsl(query, keep_blank_values=True))
        raw = self.read_body(strict=True).decode("utf-8")
        if not raw:
            return args
        if "json" in (self.headers.get("Content-Type") or ""):
            body = json.loads(raw)  # JSONDecodeError is a ValueError
            if not isinstance(body, dict):
                raise ValueError("JSON body must be an object")
            return {**args, **body}
        return {**args, **dict(parse_qsl(raw, keep_blank_values=True))}

    def _bearer(self) -> str | None:
        auth = self.headers.get("Authorization") or ""
        if not auth.startswith("Bearer "):
            return None
        return auth.removeprefix("Bearer ").strip() or None

    def _send(self, answer: _Answer) -> None:
        payload = json.dumps(answer.body).encode("utf-8")
        self.send_payload(
            answer.status,
            {"Content-Type": "application/json; charset=utf-8", "Content-Length": str(len(payload)), **answer.headers},
            payload,
        )


def _check_content(method: str, args: Json) -> None:
    if method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
        check_message(args)
    elif method == "views.publish" and isinstance(args.get("view"), dict):
        check_view(args["view"])


def _decode_json_args(args: Json) -> Json:
    # Leniently: a value that is not JSON stays a string, and the method refuses it like Slack.
    decoded = dict(args)
    for key in _JSON_ARGS:
        value = decoded.get(key)
        if isinstance(value, str) and value:
            with contextlib.suppress(ValueError):
                decoded[key] = json.loads(value)
    return decoded


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a local stand-in for the Slack Web API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3001)
    parser.add_argument("--bot-token", default="xoxb-local-test")
    parser.add_argument("--app-token", default="xapp-local-test", help="app-level token for Socket Mode")
    parser.add_argument("--team-id", default="T0LOCAL00")
    parser.add_argument("--bot-user-id", default="UBOT")
    opts = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    peer = SlackPeer(
        bot_token=opts.bot_token,
        app_token=opts.app_token,
        team_id=opts.team_id,
        bot_user_id=opts.bot_user_id,
        host=opts.host,
        port=opts.port,
    )
    with peer:
        print(
            f"Slack peer serving; set SLACK_API_URL={peer.api_url} (Socket Mode: SLACK_APP_TOKEN={opts.app_token})",
            flush=True,
        )
        wait_for_interrupt()


if __name__ == "__main__":
    main()
