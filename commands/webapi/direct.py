"""Slack told straight away (bot.approvals.outbox.Direct), for when the store, and with it the outbox,
is down: a note drawn exactly as the notifier would draw it, sent once, best-effort."""

from __future__ import annotations

from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackObjectFormationError

from bot.approvals.outbox import NotDelivered, Note
from commands.webapi.notifier import blocks_of


class SlackDirect:
    def __init__(self, client: WebClient) -> None:
        self._client = client

    def post(self, note: Note) -> None:
        self._call("chat_postMessage", note)

    def update(self, note: Note, *, ts: str) -> None:
        self._call("chat_update", note, ts=ts)

    def _call(self, method: str, note: Note, **extra: Any) -> None:
        try:
            blocks = blocks_of({"blocks": note.blocks, "view": note.view, "data": note.data})
            args: dict[str, Any] = {"channel": note.channel, **extra, "text": note.text}
            if blocks is not None:
                args["blocks"] = blocks
            getattr(self._client, method)(**args)
        except (SlackApiError, SlackObjectFormationError, KeyError, OSError) as exc:
            raise NotDelivered(f"{type(exc).__name__}: {exc}") from exc
