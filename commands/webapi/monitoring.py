"""Monitoring's ports on Slack: the Web API poster, paced per channel, and the renderer of its cards,
notices and charts (bot.monitoring.ports).

Slack allows about one message a second per channel; the pacer spaces every post monitoring makes
in a channel (messages and file shares) at least that far apart, and the client's retry handler
honours a `ratelimited` answer on top. A chart is uploaded with the files API (files_upload_v2:
getUploadURLExternal, the upload, completeUploadExternal) into the alert's thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError

from bot.monitoring.models import MonitoringAlert
from bot.monitoring.ports import Chart, ChartNotShared, Message
from bot.monitoring.texts import alert_fallback
from bot.runbook.model import Runbook, Signal
from commands.views.blocks import as_dicts, notice_blocks
from commands.views.monitoring import alert_blocks
from commands.webapi.charts import chart_title, line_chart
from commands.webapi.refusals import SlackRefusal, refusal_of

log = logging.getLogger("opsbot.monitoring")

SLACK_POSTS_PER_SECOND = 1.0


class ChannelPacer:
    """At most one post per `interval` seconds in each channel, across the threads of one process."""

    def __init__(
        self,
        interval: float = 1.0 / SLACK_POSTS_PER_SECOND,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._interval, self._clock, self._sleep = interval, clock, sleep
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, channel: str) -> None:
        with self._lock:
            now = self._clock()
            slot = max(now, self._next.get(channel, 0.0))
            self._next[channel] = slot + self._interval
        if slot > now:
            self._sleep(slot - now)


# One per process: announcements (on the approving thread) and the watcher's posts share a budget.
SHARED_PACER = ChannelPacer()


class SlackPoster:
    """Monitoring's Slack calls; a refused post or edit is logged and answered with None, never raised."""

    def __init__(self, slack: WebClient, pacer: ChannelPacer | None = None) -> None:
        self.slack = slack
        self.pacer = pacer or SHARED_PACER

    def post(
        self, channel: str, message: Message, *, thread_ts: str | None = None, broadcast: bool = False
    ) -> str | None:
        self.pacer.wait(channel)
        try:
            answer = self.slack.chat_postMessage(
                channel=channel,
                text=message.text,
                blocks=message.blocks,
                thread_ts=thread_ts,
                reply_broadcast=broadcast if thread_ts else None,
            )
        except SlackApiError as exc:
            log.error("monitoring post in %s refused: %s", channel, exc.response.get("error"))
            return None
        return str(answer["ts"])

    def update(self, channel: str, ts: str, message: Message) -> None:
        try:
            self.slack.chat_update(channel=channel, ts=ts, text=message.text, blocks=message.blocks)
        except SlackApiError as exc:
            log.warning("monitoring message %s not updated: %s", ts, exc.response.get("error"))

    def share(self, channel: str, thread_ts: str | None, chart: Chart) -> str:
        shared = self.upload_png(channel, thread_ts, chart.png, filename=chart.filename, title=chart.title)
        if isinstance(shared, SlackRefusal):
            raise ChartNotShared(shared.error, shared.text)
        return shared

    def upload_png(
        self, channel: str, thread_ts: str | None, png: bytes, *, filename: str, title: str
    ) -> str | SlackRefusal:
        """The shared file's id, or Slack's refusal. A file share needs membership (chat:write.public
        covers posts only), so on `not_in_channel` the bot joins the public channel and shares again."""
        self.pacer.wait(channel)
        shared = self._upload(channel, thread_ts, png, filename=filename, title=title)
        if not isinstance(shared, SlackRefusal) or shared.error != "not_in_channel":
            return shared
        try:
            self.slack.conversations_join(channel=channel)
        except (SlackApiError, SlackRequestError, OSError) as exc:
            refusal = refusal_of(exc, channel=channel)
            log.error("could not join %s to share a chart: %s", channel, refusal.error)
            return refusal
        log.info("joined %s to share charts there", channel)
        return self._upload(channel, thread_ts, png, filename=filename, title=title)

    def _upload(
        self, channel: str, thread_ts: str | None, png: bytes, *, filename: str, title: str
    ) -> str | SlackRefusal:
        try:
            answer = self.slack.files_upload_v2(
                channel=channel, thread_ts=thread_ts, content=png, filename=filename, title=title, alt_txt=title
            )
        except (SlackApiError, SlackRequestError, OSError) as exc:
            refusal = refusal_of(exc, channel=channel)
            log.error("chart upload to %s failed: %s", channel, refusal.error)
            return refusal
        file = answer.get("file") or {}
        return str(file.get("id") or "") or SlackRefusal("no_file", False, "Slack answered without the file.")


class SlackRenderer:
    """Alert cards and notices in Block Kit, charts as PNG (commands.webapi.charts)."""

    def __init__(self, runbook: Runbook) -> None:
        self.runbook = runbook

    def alert(self, signal: Signal, alert: MonitoringAlert, *, stage_name: str, status: str | None = None) -> Message:
        blocks = alert_blocks(self.runbook, signal, alert, stage_name=stage_name, status=status)
        return Message(alert_fallback(signal, alert), as_dicts(blocks))

    def notice(self, text: str) -> Message:
        return Message(text.split("\n", 1)[0], as_dicts(notice_blocks(text)))

    def chart(self, signal: Signal, points: Sequence[tuple[float, float]], *, start: float, end: float) -> Chart:
        png = line_chart(points, threshold=signal.threshold, start=start, end=end, unit=signal.unit, title=signal.name)
        title = chart_title(signal.name, signal.unit, points, threshold=signal.threshold, start=start, end=end)
        return Chart(png, f"{signal.id}.png", title)
