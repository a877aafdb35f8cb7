"""Posting monitoring alerts: claimed once in the store, then posted, paced per channel.

Slack allows about one message a second per channel; the pacer spaces every post the watcher makes
in a channel (messages and file shares) at least that far apart, and the client's retry handler
honours a `ratelimited` answer on top. A chart is uploaded with the files API (files_upload_v2:
getUploadURLExternal, the upload, completeUploadExternal) into the alert's thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError

from bot.monitoring.measures import Measurer
from bot.monitoring.models import MonitoringAlert, MonitoringWindow
from bot.monitoring.signals import Reading, breach_since, worst
from bot.monitoring.store import BREACH, CLEARED, OPEN, MonitoringStore, new_alert_id, system_entry
from bot.runbook.model import Runbook, Signal
from bot.storage.db import as_utc
from commands.charts import chart_title, line_chart
from commands.refusals import SlackRefusal, refusal_of
from commands.views import monitoring as render
from commands.views.blocks import as_dicts, notice_blocks

log = logging.getLogger("opsbot.monitoring")

SLACK_POSTS_PER_SECOND = 1.0
MIN_CHART_SPAN_S = 60.0


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


class Poster:
    """Slack calls of the watcher; a refusal is logged and answered with None, never raised."""

    def __init__(self, slack: WebClient, pacer: ChannelPacer | None = None) -> None:
        self.slack = slack
        self.pacer = pacer or SHARED_PACER

    def post(
        self,
        channel: str,
        text: str,
        *,
        blocks: list[dict[str, object]] | None = None,
        thread_ts: str | None = None,
        broadcast: bool = False,
    ) -> str | None:
        self.pacer.wait(channel)
        try:
            answer = self.slack.chat_postMessage(
                channel=channel,
                text=text,
                blocks=blocks,
                thread_ts=thread_ts,
                reply_broadcast=broadcast if thread_ts else None,
            )
        except SlackApiError as exc:
            log.error("monitoring post in %s refused: %s", channel, exc.response.get("error"))
            return None
        return str(answer["ts"])

    def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, object]]) -> None:
        try:
            self.slack.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)
        except SlackApiError as exc:
            log.warning("monitoring message %s not updated: %s", ts, exc.response.get("error"))

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


@dataclass
class Alerts:
    runbook: Runbook
    store: MonitoringStore
    poster: Poster
    measurer: Measurer

    def raise_breach(
        self, window: MonitoringWindow, signal: Signal, reading: Reading, *, channel: str, stage_name: str
    ) -> MonitoringAlert | None:
        """Claim the alert for this breach (once, whoever races) and post it with its chart."""
        assert reading.value is not None
        now = reading.at
        start = as_utc(window.opened_at)
        series = self.measurer.series(signal, start, now)
        row = MonitoringAlert(
            id=new_alert_id(),
            window_id=window.id,
            kind=BREACH,
            signal_id=signal.id,
            status=OPEN,
            trigger=signal.trigger or "",
            threshold=signal.threshold,
            comparison=signal.comparison,
            value=reading.value,
            peak=worst(signal, [reading.value, *(v for _, v in series)]),
            since=breach_since(signal, series, now),
            raised_at=now,
            last_seen_at=now,
            channel=channel,
            detail=reading.detail,
        )
        params = {
            "alert_id": row.id,
            "signal": signal.id,
            "value": reading.value,
            "threshold": signal.threshold,
            "comparison": signal.comparison,
            "trigger": row.trigger,
            "window_id": window.id,
        }
        if not self.store.claim_alert(
            row, system_entry("monitoring.alert_raised", "accepted", params, channel=channel)
        ):
            return None
        self.post_breach(row, signal, stage_name=stage_name, series=series, start=start)
        return row

    def post_breach(
        self,
        row: MonitoringAlert,
        signal: Signal,
        *,
        stage_name: str,
        series: list[tuple[float, float]] | None = None,
        start: datetime | None = None,
    ) -> None:
        """Post a claimed alert (again, if an earlier post was refused) and its chart in the thread."""
        blocks = as_dicts(render.alert_blocks(self.runbook, signal, row, stage_name=stage_name))
        ts = self.poster.post(row.channel, render.alert_fallback(signal, row), blocks=blocks)
        if ts is None:
            return
        self.store.update_alert(row.id, message_ts=ts)
        row.message_ts = ts
        end = as_utc(row.last_seen_at)
        start = start or as_utc(row.since)
        if series is None:
            series = self.measurer.series(signal, start, end)
        points = series or [(end.timestamp(), row.value or 0.0)]
        first, last = min(start.timestamp(), points[0][0]), max(end.timestamp(), points[-1][0])
        first = min(first, last - MIN_CHART_SPAN_S)  # a window seconds old still gets a readable time axis
        png = line_chart(points, threshold=signal.threshold, start=first, end=last, unit=signal.unit)
        title = chart_title(signal.name, signal.unit, points, threshold=signal.threshold, start=first, end=last)
        shared = self.poster.upload_png(row.channel, ts, png, filename=f"{signal.id}.png", title=title)
        if isinstance(shared, SlackRefusal):
            self._chart_missing(row, signal, shared, ts)
        else:
            self.store.update_alert(row.id, chart_file_id=shared)

    def _chart_missing(self, row: MonitoringAlert, signal: Signal, refusal: SlackRefusal, ts: str) -> None:
        """Say in the alert's thread why its chart is not there and how to fix it, and record it."""
        self.store.note(
            system_entry(
                "monitoring.chart_refused",
                "failed",
                {"alert_id": row.id, "signal": signal.id, "error": refusal.error},
                channel=row.channel,
                detail=refusal.text,
            )
        )
        self.poster.post(
            row.channel, f":warning: The chart of this alert could not be shown: {refusal.text}", thread_ts=ts
        )

    def refresh(
        self, row: MonitoringAlert, signal: Signal, *, stage_name: str, at: datetime, status: str | None = None
    ) -> None:
        """Bring an open alert's card up to date (latest value, peak); the caller paces it."""
        if not row.message_ts:
            return
        self.store.update_alert(row.id, edited_at=at)
        row.edited_at = at
        blocks = as_dicts(render.alert_blocks(self.runbook, signal, row, stage_name=stage_name, status=status))
        self.poster.update(row.channel, row.message_ts, render.alert_fallback(signal, row), blocks)

    def clear_breach(
        self, row: MonitoringAlert, signal: Signal, *, at: datetime, stage_name: str, status: str = CLEARED
    ) -> None:
        params = {"alert_id": row.id, "signal": signal.id, "value": row.value, "status": status}
        if not self.store.finish_alert(
            row.id,
            status=status,
            at=at,
            entry=system_entry(f"monitoring.alert_{status}", "accepted", params, channel=row.channel),
        ):
            return
        row.status, row.cleared_at = status, at
        if status == CLEARED:
            text = render.cleared_text(signal, row, at)
        else:
            text = f":hourglass: Alert `{row.id}` closed with its monitoring window, still breaching."
        self.poster.post(row.channel, text, thread_ts=row.message_ts, broadcast=True)
        if row.message_ts:
            blocks = as_dicts(render.alert_blocks(self.runbook, signal, row, stage_name=stage_name, status=text))
            self.poster.update(row.channel, row.message_ts, render.alert_fallback(signal, row), blocks)

    def notice(self, channel: str, text: str) -> str | None:
        return self.poster.post(channel, text.split("\n", 1)[0], blocks=as_dicts(notice_blocks(text)))
