"""Post-cutover monitoring's Slack side: the window opens on each cutover transition, the monitor is
built from the deps, and an alert's "Propose rollback" button starts the `/rollback` request flow
with the alert's trigger filled in."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from slack_bolt import Ack, App, Respond

from bot.monitoring.alerts import Alerts
from bot.monitoring.measures import Measurer, build_prom
from bot.monitoring.models import MonitoringAlert
from bot.monitoring.ports import Poster
from bot.monitoring.service import Job, Monitor, build_elector
from bot.monitoring.signals import against
from bot.monitoring.store import MonitoringStore
from bot.monitoring.watcher import Watcher
from bot.rollback.history import stale_alert
from bot.rollback.store import RollbackStore
from bot.storage.db import as_utc
from bot.text import when
from commands import rollback
from commands.common import Invocation, after_ack, ephemeral, request_scope
from commands.deps import Deps
from commands.views.monitoring import PROPOSE_ROLLBACK
from commands.webapi.monitoring import SlackPoster, SlackRenderer

log = logging.getLogger("opsbot.monitoring")


def build_watcher(deps: Deps, *, poster: Poster | None = None) -> Watcher:
    """The leader's watcher: Prometheus, the backend and Cosmos read, Slack told (paced per channel)."""
    settings = deps.settings
    measurer = Measurer(
        deps.engine,
        prom=build_prom(settings, deps.http),
        backend=deps.backend,
        cosmos=deps.cosmos,
        timeout_s=settings.prometheus_timeout_seconds,
    )
    store = MonitoringStore(deps.engine, deps.audit)
    alerts = Alerts(store, poster or SlackPoster(deps.slack), SlackRenderer(deps.runbook), measurer)
    rollbacks = RollbackStore(deps.engine, deps.audit)
    return Watcher(alerts, runbook=deps.runbook, settings=settings, rollbacks=rollbacks, clock=deps.now)


def build_monitor(deps: Deps, *, watcher: Watcher | None = None, jobs: Sequence[Job] = ()) -> Monitor:
    """The monitor thread every process runs (not started): it leads, or waits to."""
    settings = deps.settings
    return Monitor(
        watcher or build_watcher(deps),
        build_elector(deps.engine, settings.database_url, replica=deps.replica, audit=deps.audit),
        replica=deps.replica,
        interval_s=settings.monitor_interval_seconds,
        poll_s=settings.leader_poll_seconds,
        now=deps.now,
        jobs=jobs,
    )


def start_monitor(deps: Deps, *, jobs: Sequence[Job] = ()) -> Monitor:
    return build_monitor(deps, jobs=jobs).start()


def rollback_text(deps: Deps, alert: MonitoringAlert) -> str:
    """The `/rollback` text the button stands for: a reason naming the alert, and `--trigger`."""
    signal = next((s for s in deps.runbook.signals() if s.id == alert.signal_id), None)
    what = f"{signal.name}: {against(signal, alert.value)}" if signal else alert.signal_id
    reason = f"monitoring alert {alert.id}: {what} since {when(as_utc(alert.since))}"
    return f"{reason} --trigger {alert.trigger}"


def register(app: App, deps: Deps) -> None:
    store = MonitoringStore(deps.engine, deps.audit)

    def propose(body: dict[str, Any], respond: Respond) -> None:
        inv = Invocation.from_action(body)
        alert_id = str(((body.get("actions") or [{}])[0]).get("value", ""))[:32]
        try:
            alert = store.get_alert(alert_id)
        except Exception:  # the store is out: say so rather than leave the click unanswered
            log.exception("monitoring alert %s not read", alert_id)
            with request_scope(inv):
                ephemeral(respond, f":x: The alert could not be read; nothing was done. Request id `{inv.request_id}`.")
            return
        if alert is None or not alert.trigger:
            with request_scope(inv):
                ephemeral(respond, f":grey_question: No monitoring alert `{alert_id}` with a rollback trigger.")
            return
        # An alert whose breach began before the last rollback closed is about the release rolled back.
        rollback.propose(
            deps,
            replace(inv, command="/rollback", text=rollback_text(deps, alert)),
            respond,
            precheck=lambda rollbacks: stale_alert(alert.since, alert.status, rollbacks.last_completed()),
        )

    def click(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        after_ack(deps, lambda: propose(body, respond))

    app.action(PROPOSE_ROLLBACK)(click)
