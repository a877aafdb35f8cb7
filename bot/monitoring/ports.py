"""What monitoring needs from the chat it posts in, as two small ports the Slack edge implements.

A `Renderer` turns plain data (a signal, an alert row, a stage name, a chart's series, a notice's
mrkdwn text) into a `Message` or a `Chart`; a `Poster` delivers them, paced per channel. Monitoring
never sees the message layout: `Message.blocks` is opaque to it and handed on as it came.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.monitoring.models import MonitoringAlert
from bot.runbook.model import Signal


@dataclass(frozen=True)
class Message:
    text: str  # what a notification (and a client without layouts) shows
    blocks: list[dict[str, object]] | None = None


@dataclass(frozen=True)
class Chart:
    png: bytes
    filename: str
    title: str  # also the image's alt text


class ChartNotShared(Exception):
    """The chat refused a chart: `error` names the refusal, `text` tells an operator how to fix it."""

    def __init__(self, error: str, text: str) -> None:
        super().__init__(f"{error}: {text}")
        self.error = error
        self.text = text


class Renderer(Protocol):
    def alert(self, signal: Signal, alert: MonitoringAlert, *, stage_name: str, status: str | None = None) -> Message:
        """An alert's card; `stage_name` is the stage the breach happened in, `status` a closing line."""
        ...

    def notice(self, text: str) -> Message:
        """A notice (announcement, summary, degraded, restored, not fixed) from its mrkdwn text."""
        ...

    def chart(self, signal: Signal, points: Sequence[tuple[float, float]], *, start: float, end: float) -> Chart:
        """The signal's line chart over [start, end] (epoch seconds), with its threshold."""
        ...


class Poster(Protocol):
    def post(
        self, channel: str, message: Message, *, thread_ts: str | None = None, broadcast: bool = False
    ) -> str | None:
        """The posted message's ts, or None when the chat refused it (logged, never raised)."""
        ...

    def update(self, channel: str, ts: str, message: Message) -> None:
        """Edit a posted message; a refusal is logged, never raised."""
        ...

    def share(self, channel: str, thread_ts: str | None, chart: Chart) -> str:
        """The shared file's id; raises ChartNotShared when the chat refused it."""
        ...
