"""One watcher pass over the open monitoring window (run by the leader only, bot.monitoring.leader).

A pass: post the phase summaries that are due (and close the window at its end), read every watched
signal, move each signal's alert state (raise once, hold, clear after two good readings), raise or
clear the "monitoring degraded" notice, and fold the readings into the window's figures.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from bot.monitoring import stats
from bot.monitoring.after_rollback import not_fixed_text, outlived
from bot.monitoring.alerts import Alerts
from bot.monitoring.models import MonitoringAlert, MonitoringWindow
from bot.monitoring.signals import (
    BREACH_CLEAR_AFTER,
    BREACH_RAISE_AFTER,
    DEGRADED_CLEAR_AFTER,
    DEGRADED_RAISE_AFTER,
    Reading,
    Step,
    Track,
    advance,
    verdict,
)
from bot.monitoring.store import BREACH, CLEARED, CLOSED, DEGRADED, OPEN, new_alert_id, system_entry
from bot.monitoring.texts import degraded_text, restored_text, summary
from bot.rollback.models import Rollback
from bot.rollback.store import RollbackStore
from bot.runbook.model import Runbook, Signal
from bot.settings import Settings
from bot.storage.db import as_utc

log = logging.getLogger("opsbot.monitoring")

CARD_EDIT_EVERY_S = 60.0  # an open alert's card shows the latest value and peak, edited at most this often


class Watcher:
    def __init__(
        self,
        alerts: Alerts,
        *,
        runbook: Runbook,
        settings: Settings,
        rollbacks: RollbackStore,
        clock: Callable[[], datetime],
    ) -> None:
        self.alerts = alerts
        self.runbook = runbook
        self.settings = settings  # the incident channel; who is named when a rollback did not fix a breach
        self.rollbacks = rollbacks
        self.clock = clock
        self.store = alerts.store
        self._degraded_streak = 0  # bad passes in a row before a notice; one leader's memory is enough
        self._rollback: Rollback | None = None  # the last completed rollback, read once a pass
        self._shown: dict[str, tuple[float | None, float | None]] = {}  # alert id -> (value, peak) on its card

    def tick(self) -> str:
        """One pass; returns what it did, in a few words, for the run log."""
        now = self.clock()
        window = self.store.current_window()
        if window is None:
            return "no open window"
        if self._phase_ends(window, now):
            return f"window {window.id} closed"
        open_breaches = {a.signal_id: a for a in self.store.open_alerts(BREACH)}
        signals = self._watched(window, now, open_breaches)
        readings = self.alerts.measurer.read(signals, now)
        self._rollback = self.rollbacks.last_completed() if open_breaches else None
        raised = self._breaches(window, signals, readings, open_breaches)
        self._degraded(window, signals, readings, now)
        figures = stats.load(window)
        stats.record(figures, self.runbook, readings)
        self.store.save_stats(window.id or 0, stats.dump(figures))
        missing = sum(1 for r in readings if r.value is None)
        return f"window {window.id}: {len(readings)} read, {missing} without data, {raised} raised"

    def channel(self, window: MonitoringWindow) -> str:
        return self.settings.incident_channel or window.channel

    def alert_stage(self, alert: MonitoringAlert, fallback: MonitoringWindow) -> str:
        """The stage the breach happened in: its own window's, even once a later window is open."""
        return self.stage_name(self.store.get_window(alert.window_id) or fallback)

    def stage_name(self, window: MonitoringWindow) -> str:
        try:
            return self.runbook.stage(window.stage_id).name
        except KeyError:
            return window.stage_id

    def _watched(self, window: MonitoringWindow, now: datetime, open_: dict[str, MonitoringAlert]) -> list[Signal]:
        """The phase's signals, plus any signal whose alert is still open (watched until it clears)."""
        signals = stats.watched(self.runbook, window, now)
        ids = {s.id for s in signals}
        signals += [s for s in self.runbook.signals() if s.id in open_ and s.id not in ids]
        return signals

    def _breaches(
        self,
        window: MonitoringWindow,
        signals: Sequence[Signal],
        readings: Sequence[Reading],
        open_: dict[str, MonitoringAlert],
    ) -> int:
        raised = 0
        for signal, reading in zip(signals, readings, strict=True):
            alert = open_.get(signal.id)
            track = Track(alert is not None, alert.ok_count if alert else 0)
            new, step = advance(
                track, verdict(signal, reading), raise_after=BREACH_RAISE_AFTER, clear_after=BREACH_CLEAR_AFTER
            )
            if step is Step.RAISE:
                row = self.alerts.raise_breach(
                    window, signal, reading, channel=self.channel(window), stage_name=self.stage_name(window)
                )
                if row is not None:
                    raised += 1
                    self._shown[row.id] = (row.value, row.peak)
            elif step is Step.HOLD and alert is not None:
                self._hold(window, signal, alert, reading, new.streak)
            elif step is Step.CLEAR and alert is not None:
                alert.value = reading.value
                self.alerts.clear_breach(alert, signal, at=reading.at, stage_name=self.alert_stage(alert, window))
        return raised

    def _hold(
        self, window: MonitoringWindow, signal: Signal, alert: MonitoringAlert, reading: Reading, streak: int
    ) -> None:
        value = reading.value if reading.value is not None else alert.value
        peak = stats.worse(signal, alert.peak, value) if value is not None else alert.peak
        self.store.update_alert(alert.id, value=value, peak=peak, last_seen_at=reading.at, ok_count=streak)
        changed = self._shown.get(alert.id) != (value, peak)  # unknown to a new leader: shown again once
        alert.value, alert.peak, alert.last_seen_at = value, peak, reading.at
        stage = self.alert_stage(alert, window)
        if alert.message_ts is None:  # the first post was refused: try again, still once
            self.alerts.post_breach(alert, signal, stage_name=stage)
            return
        if verdict(signal, reading) and outlived(alert, signal, reading.at, self._rollback):
            self._not_fixed(signal, alert, stage)
        elif changed and self._edit_due(alert, reading.at):
            self.alerts.refresh(alert, signal, stage_name=stage, at=reading.at)
            self._shown[alert.id] = (value, peak)

    @staticmethod
    def _edit_due(alert: MonitoringAlert, at: datetime) -> bool:
        last = as_utc(alert.edited_at or alert.raised_at)  # the post itself is the first edit
        return (at - last).total_seconds() >= CARD_EDIT_EVERY_S

    def _not_fixed(self, signal: Signal, alert: MonitoringAlert, stage: str) -> None:
        rollback = self._rollback
        assert rollback is not None
        entry = system_entry(
            "monitoring.not_fixed_by_rollback",
            "accepted",
            {"alert_id": alert.id, "rollback_id": rollback.id, "value": alert.value},
            channel=alert.channel,
        )
        if not self.store.claim_not_fixed(alert.id, rollback.id, entry):
            return
        alert.not_fixed_by = rollback.id
        settings = self.settings
        text = not_fixed_text(
            signal, alert, rollback, owners=settings.rollback_owners, authorities=settings.halt_authorities
        )
        self.alerts.notice(alert.channel, text, thread_ts=alert.message_ts, broadcast=True)
        self.alerts.refresh(alert, signal, stage_name=stage, at=alert.last_seen_at)

    def _degraded(
        self, window: MonitoringWindow, signals: Sequence[Signal], readings: Sequence[Reading], now: datetime
    ) -> None:
        problems = {r.signal_id: r.problem or "no data" for r in readings if r.value is None and not r.unconfigured}
        notices = self.store.open_alerts(DEGRADED)
        notice = notices[0] if notices else None
        track = Track(True, notice.ok_count) if notice else Track(False, self._degraded_streak)
        new, step = advance(track, bool(problems), raise_after=DEGRADED_RAISE_AFTER, clear_after=DEGRADED_CLEAR_AFTER)
        self._degraded_streak = 0 if new.open else new.streak
        channel = self.channel(window)
        measurable = sum(1 for r in readings if not r.unconfigured)
        if step is Step.RAISE:
            self._raise_degraded(window, problems, measurable, channel, now)
        elif step is Step.HOLD and notice is not None:
            self._hold_degraded(notice, problems, measurable, new.streak, now)
        elif step is Step.CLEAR and notice is not None:
            self.close_degraded(notice, now)

    def _raise_degraded(
        self, window: MonitoringWindow, problems: dict[str, str], watched: int, channel: str, now: datetime
    ) -> None:
        row = MonitoringAlert(
            id=new_alert_id(),
            window_id=window.id,
            kind=DEGRADED,
            signal_id="",
            status=OPEN,
            detail=json.dumps(problems, sort_keys=True),
            since=now,
            raised_at=now,
            last_seen_at=now,
            channel=channel,
        )
        entry = system_entry(
            "monitoring.degraded", "accepted", {"alert_id": row.id, "problems": problems}, channel=channel
        )
        if self.store.claim_alert(row, entry):
            ts = self.alerts.notice(channel, degraded_text(problems, watched))
            self.store.update_alert(row.id, message_ts=ts)

    def _hold_degraded(
        self, notice: MonitoringAlert, problems: dict[str, str], watched: int, streak: int, now: datetime
    ) -> None:
        detail = json.dumps(problems, sort_keys=True)
        changed = bool(problems) and detail != notice.detail
        self.store.update_alert(notice.id, ok_count=streak, last_seen_at=now, **({"detail": detail} if changed else {}))
        if changed and notice.message_ts:  # the same notice, brought up to date: no new post
            self.alerts.edit_notice(notice.channel, notice.message_ts, degraded_text(problems, watched))

    def close_degraded(self, notice: MonitoringAlert, now: datetime) -> None:
        entry = system_entry("monitoring.restored", "accepted", {"alert_id": notice.id}, channel=notice.channel)
        if self.store.finish_alert(notice.id, status=CLEARED, at=now, entry=entry):
            self.alerts.notice(notice.channel, restored_text(as_utc(notice.since), now))

    def _phase_ends(self, window: MonitoringWindow, now: datetime) -> bool:
        """Post the summaries that are due; True when the window closed in this pass."""
        runbook, wid = self.runbook, window.id or 0
        if (
            window.immediate_summary_at is None
            and now >= as_utc(window.immediate_until)
            and self.store.claim_immediate_summary(wid, now)
        ):
            self._summary(window, list(runbook.monitoring.immediate), "Immediate post-cutover monitoring ended")
        if now < as_utc(window.ends_at):
            return False
        for alert in self.store.open_alerts():
            if alert.kind == BREACH:
                signal = next((s for s in runbook.signals() if s.id == alert.signal_id), None)
                if signal is not None:
                    self.alerts.clear_breach(
                        alert, signal, at=now, stage_name=self.alert_stage(alert, window), status=CLOSED
                    )
            else:
                self.close_degraded(alert, now)
        entry = system_entry("monitoring.window_closed", "accepted", {"window_id": wid}, channel=window.channel)
        if self.store.close_window(wid, now, entry):
            self._summary(window, list(runbook.signals()), "Post-cutover monitoring closed")
        return True

    def _summary(self, window: MonitoringWindow, signals: list[Signal], heading: str) -> None:
        text = summary(
            self.runbook,
            window,
            signals,
            stats.load(window),
            self.store.window_alerts(window.id or 0),
            heading=heading,
            stage_name=self.stage_name(window),
        )
        self.alerts.notice(window.channel, text)
