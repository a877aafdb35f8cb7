"""Monitoring alerts: claimed once in the store, then posted with their chart in the thread.

Posting goes through the `Poster` and `Renderer` ports (bot.monitoring.ports): this module decides
what is said and when, and records it; the chat edge draws and delivers it, paced per channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.monitoring.measures import Measurer
from bot.monitoring.models import MonitoringAlert, MonitoringWindow
from bot.monitoring.ports import ChartNotShared, Message, Poster, Renderer
from bot.monitoring.signals import Reading, breach_since, worst
from bot.monitoring.store import BREACH, CLEARED, OPEN, MonitoringStore, new_alert_id, system_entry
from bot.monitoring.texts import cleared_text
from bot.runbook.model import Signal
from bot.storage.db import as_utc

MIN_CHART_SPAN_S = 60.0


@dataclass
class Alerts:
    store: MonitoringStore
    poster: Poster
    renderer: Renderer
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
        ts = self.poster.post(row.channel, self.renderer.alert(signal, row, stage_name=stage_name))
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
        chart = self.renderer.chart(signal, points, start=first, end=last)
        try:
            shared = self.poster.share(row.channel, ts, chart)
        except ChartNotShared as refusal:
            self._chart_missing(row, signal, refusal, ts)
        else:
            self.store.update_alert(row.id, chart_file_id=shared)

    def _chart_missing(self, row: MonitoringAlert, signal: Signal, refusal: ChartNotShared, ts: str) -> None:
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
            row.channel, Message(f":warning: The chart of this alert could not be shown: {refusal.text}"), thread_ts=ts
        )

    def refresh(
        self, row: MonitoringAlert, signal: Signal, *, stage_name: str, at: datetime, status: str | None = None
    ) -> None:
        """Bring an open alert's card up to date (latest value, peak); the caller paces it."""
        if not row.message_ts:
            return
        self.store.update_alert(row.id, edited_at=at)
        row.edited_at = at
        self.poster.update(
            row.channel, row.message_ts, self.renderer.alert(signal, row, stage_name=stage_name, status=status)
        )

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
            text = cleared_text(signal, row, at)
        else:
            text = f":hourglass: Alert `{row.id}` closed with its monitoring window, still breaching."
        self.poster.post(row.channel, Message(text), thread_ts=row.message_ts, broadcast=True)
        if row.message_ts:
            self.poster.update(
                row.channel, row.message_ts, self.renderer.alert(signal, row, stage_name=stage_name, status=text)
            )

    def notice(self, channel: str, text: str, *, thread_ts: str | None = None, broadcast: bool = False) -> str | None:
        return self.poster.post(channel, self.renderer.notice(text), thread_ts=thread_ts, broadcast=broadcast)

    def edit_notice(self, channel: str, ts: str, text: str) -> None:
        self.poster.update(channel, ts, self.renderer.notice(text))
