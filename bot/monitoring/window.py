"""Opening a monitoring window after each cutover transition, and announcing it.

Subscribed to the cutover's transition hooks, so it runs on whichever replica executed the approved
advance, right after the stage was recorded. The window row is keyed by the transition, so a second
call for the same transition opens nothing; a window still open from an earlier transition is
superseded, and its summary is posted at once.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from bot.monitoring import stats
from bot.monitoring.models import MonitoringWindow
from bot.monitoring.ports import Poster, Renderer
from bot.monitoring.store import OPEN, MonitoringStore, system_entry
from bot.monitoring.texts import announcement, summary
from bot.runbook.model import Runbook
from bot.runbook.transitions import CutoverTransition
from bot.settings import Settings
from bot.text import safe, without_credentials

log = logging.getLogger("opsbot.monitoring")


def source_line(settings: Settings, *, cosmos_configured: bool) -> str:
    url = settings.prometheus_url
    every = f"every {settings.monitor_interval_seconds:g} s"
    line = (
        f"Signals are read from Prometheus at `{safe(without_credentials(url), 200)}` {every}."
        if url
        else f":warning: *OPSBOT_PROMETHEUS_URL is not set:* only the bot's own measures are watched ({every}); "
        "the Prometheus signals are not."
    )
    if not cosmos_configured:
        line += " :warning: Runtime control drift is not watched: Cosmos is not configured."
    return line


class WindowOpener:
    """The cutover-transition subscriber: one window per transition, announced once."""

    def __init__(
        self,
        *,
        settings: Settings,
        runbook: Runbook,
        store: MonitoringStore,
        poster: Poster,
        renderer: Renderer,
        cosmos_configured: bool,
    ) -> None:
        self.settings = settings
        self.runbook = runbook
        self.store = store
        self.poster = poster
        self.renderer = renderer
        self.cosmos_configured = cosmos_configured

    def __call__(self, transition: CutoverTransition) -> None:
        self.open(transition)

    def open(self, transition: CutoverTransition) -> MonitoringWindow | None:
        settings = self.settings
        opened = transition.entered_at
        channel = settings.announce_channel or settings.incident_channel or transition.channel
        row = MonitoringWindow(
            cutover_seq=transition.seq,
            from_stage=transition.from_stage,
            stage_id=transition.to_stage,
            channel=channel,
            request_id=transition.request_id,
            opened_at=opened,
            immediate_until=opened
            + timedelta(seconds=min(settings.monitor_immediate_seconds, settings.monitor_window_seconds)),
            ends_at=opened + timedelta(seconds=settings.monitor_window_seconds),
            status=OPEN,
        )
        params = {
            "cutover_seq": transition.seq,
            "stage": transition.to_stage,
            "immediate_until": row.immediate_until.isoformat(),
            "ends_at": row.ends_at.isoformat(),
        }
        entry = system_entry("monitoring.window_opened", "accepted", params, channel=channel)
        window, superseded = self.store.open_window(row, entry)
        if window is None:
            return None
        for old in superseded:
            self._superseded(old, transition)
        self._announce(window)
        return window

    def _announce(self, window: MonitoringWindow) -> None:
        stage = self.runbook.stage(window.stage_id).name
        alert_channel = self.settings.incident_channel or window.channel
        source = source_line(self.settings, cosmos_configured=self.cosmos_configured)
        text = announcement(self.runbook, window, stage_name=stage, source=source, alert_channel=alert_channel)
        self.poster.post(window.channel, self.renderer.notice(text))

    def _superseded(self, old: MonitoringWindow, transition: CutoverTransition) -> None:
        runbook = self.runbook
        try:
            stage = runbook.stage(old.stage_id).name
        except KeyError:
            stage = old.stage_id
        text = summary(
            runbook,
            old,
            list(runbook.signals()),
            stats.load(old),
            self.store.window_alerts(old.id or 0),
            stage_name=stage,
            heading="Monitoring window superseded by the next cutover transition",
        )
        self.poster.post(old.channel, self.renderer.notice(text))
        log.info("monitoring window %s superseded by transition %s", old.id, transition.seq)
