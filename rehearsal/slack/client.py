"""Slack's other direction: signed slash commands and button clicks sent to a Bolt app over HTTP.

The bodies follow what Slack sends (and what Bolt's own scenario tests replay): slash commands are
form fields, interactivity is one form field `payload` holding JSON. With a `SlackPeer`, the
response_url points at the peer and a click carries the message the peer holds, as Slack would.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier

from rehearsal.slack.state import SlackError

if TYPE_CHECKING:
    from rehearsal.slack.peer import SlackPeer

EVENTS_PATH = "/slack/events"
# Slack still sends the deprecated verification token; Bolt ignores it in favour of the signature.
VERIFICATION_TOKEN = "local-verification-token"  # noqa: S105 - not a secret


def sign(signing_secret: str, body: str, timestamp: int) -> str:
    """The `X-Slack-Signature` of `body` (v0, HMAC-SHA256 over "v0:<timestamp>:<body>"), computed by
    slack_sdk's own `SignatureVerifier`, the same code that checks it on the bot's side."""
    signature = SignatureVerifier(signing_secret).generate_signature(timestamp=str(timestamp), body=body)
    assert signature is not None  # None only for a missing timestamp or body
    return signature


class SlackSender:
    """Acts as Slack towards the bot at `bot_url` (its base URL, or the full /slack/events URL)."""

    def __init__(
        self,
        *,
        bot_url: str,
        signing_secret: str,
        peer: SlackPeer | None = None,
        team_id: str = "T0LOCAL00",
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        base = bot_url.rstrip("/")
        self.events_url = base if base.endswith(EVENTS_PATH) else base + EVENTS_PATH
        self.team_id, self.team_domain, self.api_app_id = team_id, "local", "A0LOCAL00"
        self._secret, self._peer, self._clock = signing_secret, peer, clock
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(timeout=10.0)
        self.last_body = ""
        self.last_headers: dict[str, str] = {}

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> SlackSender:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def command(
        self,
        *,
        user: str,
        command: str,
        text: str,
        channel: str = "C0INCIDENT",
        user_name: str | None = None,
        trigger_id: str | None = None,
    ) -> httpx.Response:
        fields = {
            "token": VERIFICATION_TOKEN,
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": channel,
            "channel_name": self._channel_name(channel),
            "user_id": user,
            "user_name": user_name or self._user_name(user),
            "command": command,
            "text": text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": self._response_url("commands", channel, user, None),
            "trigger_id": trigger_id or self._trigger_id(),
        }
        return self.post_raw(urlencode(fields))

    def click(
        self,
        *,
        user: str,
        action_id: str,
        value: str,
        channel: str,
        message_ts: str,
        block_id: str = "approval",
        response_url: str | None = None,
    ) -> httpx.Response:
        message = self._message(channel, message_ts)
        name = self._user_name(user)
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": user, "username": name, "name": name, "team_id": self.team_id},
            "api_app_id": self.api_app_id,
            "token": VERIFICATION_TOKEN,
            "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": False},
            "trigger_id": self._trigger_id(),
            "team": {"id": self.team_id, "domain": self.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": self._channel_name(channel)},
            "message": message,
            "state": {"values": {}},
            "response_url": response_url or self._response_url("actions", channel, user, message_ts),
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": block_id,
                    "text": _button_text(message, action_id),
                    "value": value,
                    "type": "button",
                    "action_ts": f"{self._clock():.6f}",
                }
            ],
        }
        return self.post_raw(urlencode({"payload": json.dumps(payload)}))

    def event(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
    ) -> httpx.Response:
        """An Events API delivery, e.g. `{"type": "app_home_opened", "user": "U…", "tab": "home"}`.

        With `retry_num`, it is Slack's retry of an earlier delivery (same `event_id`): Slack retries up
        to 3 times when the app did not answer 2xx within 3 s, marking each with these headers."""
        body = {
            "token": VERIFICATION_TOKEN,
            "team_id": self.team_id,
            "api_app_id": self.api_app_id,
            "event": {"event_ts": f"{self._clock():.6f}", **event},
            "type": "event_callback",
            "event_id": event_id or f"Ev{secrets.token_hex(6).upper()}",
            "event_time": int(self._clock()),
            "authorizations": [{"team_id": self.team_id, "user_id": "UBOT", "is_bot": True}],
        }
        retry = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason} if retry_num else None
        return self.post_raw(json.dumps(body), content_type="application/json", extra_headers=retry)

    def view_click(
        self, *, user: str, action_id: str, value: str, block_id: str = "", view: dict[str, Any] | None = None
    ) -> httpx.Response:
        """A button in a view (the App Home): a `view` container and, as in Slack, no response_url."""
        name = self._user_name(user)
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": user, "username": name, "name": name, "team_id": self.team_id},
            "api_app_id": self.api_app_id,
            "token": VERIFICATION_TOKEN,
            "container": {"type": "view", "view_id": (view or {}).get("id", "V0LOCAL")},
            "trigger_id": self._trigger_id(),
            "team": {"id": self.team_id, "domain": self.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "view": view or {"type": "home"},
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": block_id,
                    "value": value,
                    "type": "button",
                    "text": {"type": "plain_text", "text": action_id},
                    "action_ts": f"{self._clock():.6f}",
                }
            ],
        }
        return self.post_raw(urlencode({"payload": json.dumps(payload)}))

    def post_raw(
        self,
        body: str,
        *,
        content_type: str = "application/x-www-form-urlencoded",
        timestamp: int | None = None,
        signature: str | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Send `body` signed like Slack; override the timestamp or signature to test refusals."""
        ts = int(self._clock()) if timestamp is None else timestamp
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": sign(self._secret, body, ts) if signature is None else signature,
            **(extra_headers or {}),
        }
        self.last_body, self.last_headers = body, headers
        return self._http.post(self.events_url, content=body.encode("utf-8"), headers=headers)

    # -- what Slack would know about the workspace --------------------------------------------

    def _user_name(self, user: str) -> str:
        if self._peer is not None:
            with contextlib.suppress(SlackError):  # not an ID the peer accepts: derive a name
                return str(self._peer.workspace.user(user)["name"])
        return user.lower()

    def _channel_name(self, channel: str) -> str:
        if self._peer is not None:
            with contextlib.suppress(SlackError):
                return str(self._peer.workspace.channel(channel)["name"])
        return channel.lower()

    def _message(self, channel: str, message_ts: str) -> dict[str, Any]:
        found = self._peer.workspace.find_message(channel, message_ts) if self._peer else None
        if found is None:
            return {"type": "message", "ts": message_ts, "text": ""}
        found.pop("channel", None)  # Slack's payload names the channel beside the message
        return found

    def _response_url(self, kind: str, channel: str, user: str, message_ts: str | None) -> str:
        if self._peer is not None:
            return self._peer.response_url(channel=channel, user=user, message_ts=message_ts)
        # Slack's shape; without a peer nothing listens there, as with any expired URL.
        hook = f"{self.team_id}/{secrets.randbelow(10**13)}/{secrets.token_hex(12)}"
        return f"https://hooks.slack.com/{kind}/{hook}"

    def _trigger_id(self) -> str:
        return f"{int(self._clock())}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"


def _button_text(message: dict[str, Any], action_id: str) -> dict[str, Any]:
    """The clicked button's label, as Slack copies it into the action; a plain one if unknown."""
    for block in message.get("blocks") or []:
        for element in block.get("elements") or [block.get("accessory") or {}]:
            if isinstance(element, dict) and element.get("action_id") == action_id and "text" in element:
                return dict(element["text"])
    return {"type": "plain_text", "text": action_id, "emoji": True}
