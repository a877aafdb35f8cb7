"""The page's side of the channel: what a person types and clicks goes to the bot as Slack sends it.

A slash command or a click becomes a signed request to the bot's /slack/events (SlackSender); the
bot answers through the Web API and response_url of the local Slack peer, which keeps the channel.
What Slack shows from the HTTP answer itself (the ack's ephemeral text) is put in the peer as an
ephemeral for that person, as Slack's client would show it.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

from rehearsal.sim.stack import Stack
from rehearsal.workspace import people

# Each command's usage hint, as manifest.yaml gives it to Slack (a test keeps the two equal).
COMMANDS: dict[str, tuple[str, str]] = {
    "/halt": (
        "status | <global|tenant:ID|strategy:ID|symbol:SYM> <reason> [--now] | resume <scope> <reason>",
        "Halt or resume trading for a scope (needs a second halt authority)",
    ),
    "/rollback": (
        "<reason> [--trigger auth|tenant|controls|config|recovery] [--to <sha>] | status",
        "Roll back the latest monorepo deployment (needs a rollback owner's approval)",
    ),
    "/gate": (
        "[attest <check-id> <evidence> | history]",
        "Evaluate the release go/no-go gate, attest a manual check, or show history",
    ),
    "/cutover": (
        "status | advance <reason>",
        "Show the staged cutover or advance it to the next stage (needs an admin's approval)",
    ),
}
MAX_TEXT = 4000
SHOWN = 300  # the newest messages the page gets; older ones stay in the peer


class Refused(ValueError):
    """The page asked for something Slack would not send (unknown person, command or button)."""


@dataclass(frozen=True)
class Echo:
    """A person's own slash command, shown back to them only (Slack shows it in the composer)."""

    ts: str
    user: str
    text: str
    answer_ts: str | None = None  # the ack's ephemeral: shown right after the command, as Slack does


class Channel:
    def __init__(self, stack: Stack, channel: str = people.CHANNEL_ID) -> None:
        self._stack, self.channel = stack, channel
        self._lock = threading.Lock()
        self._echoes: list[Echo] = []

    # -- what a person does -----------------------------------------------------------------------

    def command(self, user: str, text: str) -> None:
        _person(user)
        text = text.strip()
        name, _, rest = text.partition(" ")
        if name not in COMMANDS:
            raise Refused(f"{name or text!r} is not a command here; the commands are {', '.join(COMMANDS)}")
        if len(text) > MAX_TEXT:
            raise Refused(f"a command is at most {MAX_TEXT} characters")
        sent = f"{time.time():.6f}"
        answer_ts = self._answered(
            user, lambda: self._stack.sender.command(user=user, command=name, text=rest.strip(), channel=self.channel)
        )
        with self._lock:
            self._echoes.append(Echo(sent, user, text, answer_ts))

    def click(self, user: str, *, action_id: str, value: str, message_ts: str) -> None:
        _person(user)
        message = self._stack.peer.workspace.find_message(self.channel, message_ts)
        block_id = _button_block(message, action_id, value) if message else None
        if block_id is None:
            raise Refused("no such button on that message")
        self._answered(
            user,
            lambda: self._stack.sender.click(
                user=user,
                action_id=action_id,
                value=value,
                channel=self.channel,
                message_ts=message_ts,
                block_id=block_id,
            ),
        )

    def _answered(self, user: str, send: Any) -> str | None:
        """Send, then show the HTTP answer's message (if any) the way Slack's client does; its ts."""
        try:
            response: httpx.Response = send()
        except httpx.HTTPError as exc:
            return self._ephemeral(user, {"text": f":x: The bot did not answer: {type(exc).__name__}"})
        if response.status_code != 200:
            return self._ephemeral(user, {"text": f":x: The bot answered HTTP {response.status_code}."})
        body = _ack_body(response.text)
        if body is None:
            return None
        if body.get("response_type") == "in_channel":
            return str(self._stack.peer.workspace.post_message({**body, "channel": self.channel})["ts"])
        return self._ephemeral(user, body)

    def _ephemeral(self, user: str, body: dict[str, Any]) -> str:
        args = {
            "text": body.get("text") or "",
            "blocks": body.get("blocks") or [],
            "channel": self.channel,
            "user": user,
        }
        return str(self._stack.peer.workspace.post_ephemeral(args)["message_ts"])

    # -- what the page shows ----------------------------------------------------------------------

    def messages(self, user: str) -> list[dict[str, Any]]:
        """The channel as `user` sees it: everyone's messages, and ephemerals for `user` only."""
        workspace = self._stack.peer.workspace
        shown = [_shown(m, ephemeral=False) for m in workspace.channel_messages(self.channel)]
        # An ephemeral's `user` is its recipient; what the page shows as its author is the bot.
        shown += [
            {**_shown(m, ephemeral=True), "user": workspace.bot_user_id}
            for m in workspace.ephemerals(user)
            if m.get("channel") == self.channel
        ]
        with self._lock:
            mine = [e for e in self._echoes if e.user == user]
        shown += [{"ts": e.ts, "user": e.user, "text": e.text, "kind": "command", "ephemeral": True} for e in mine]
        # The ack reached the page after the bot's own posts may have; Slack shows it first.
        order = {e.answer_ts: float(e.ts) + 1e-6 for e in mine if e.answer_ts}
        shown.sort(key=lambda m: order.get(m["ts"], float(m["ts"])))
        return shown[-SHOWN:]

    def echoes(self) -> list[dict[str, str | None]]:
        with self._lock:
            return [{"ts": e.ts, "user": e.user, "text": e.text, "answer_ts": e.answer_ts} for e in self._echoes]

    def restore_echoes(self, saved: list[dict[str, Any]]) -> None:
        with self._lock:
            self._echoes = [
                Echo(str(e["ts"]), str(e["user"]), str(e["text"]), str(e["answer_ts"]) if e.get("answer_ts") else None)
                for e in saved
                if isinstance(e, dict) and {"ts", "user", "text"} <= e.keys()
            ]


def _person(user: str) -> people.Person:
    found = people.person(user)
    if found is None:
        raise Refused(f"{user!r} is not one of this workspace's people")
    return found


def _button_block(message: dict[str, Any], action_id: str, value: str) -> str | None:
    for block in message.get("blocks") or []:
        for element in block.get("elements") or []:
            if isinstance(element, dict) and element.get("action_id") == action_id and element.get("value") == value:
                return str(block.get("block_id") or "")
    return None


def _ack_body(text: str) -> dict[str, Any] | None:
    """Bolt's ack: empty, JSON with text/blocks, or (from the error handler) plain text."""
    if not text.strip():
        return None
    try:
        body = json.loads(text)
    except ValueError:
        return {"text": text}
    return body if isinstance(body, dict) and (body.get("text") or body.get("blocks")) else None


def _shown(message: dict[str, Any], *, ephemeral: bool) -> dict[str, Any]:
    """What the page needs of a message; a file's bytes are fetched separately (GET /api/file?id=)."""
    files = [
        {
            "id": str(f.get("id") or ""),
            "name": str(f.get("name") or f.get("title") or "file"),
            "title": str(f.get("title") or ""),
            "alt": str(f.get("alt_txt") or ""),
            "image": str(f.get("mimetype") or "").startswith("image/"),
            "size": f.get("size"),
        }
        for f in message.get("files") or []
        if isinstance(f, dict)
    ]
    return {
        "ts": message["ts"],
        "user": message.get("user"),
        "text": message.get("text") or "",
        "blocks": message.get("blocks") or [],
        "edited": "edited" in message,
        "ephemeral": ephemeral,
        "files": files,
        "thread_ts": message.get("thread_ts"),
        "kind": "bot",
    }
