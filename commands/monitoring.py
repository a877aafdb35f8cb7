"""Post-cutover monitoring's Slack side: the window opens on each cutover transition, and an alert's
"Propose rollback" button starts the `/rollback` request flow with the alert's trigger filled in."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from slack_bolt import Ack, App, Respond

from bot.monitoring.alerts import Poster
from bot.monitoring.models import MonitoringAlert
from bot.monitoring.signals import against
from bot.monitoring.store import MonitoringStore
from bot.monitoring.window import WindowOpener
from bot.rollback.history import stale_alert
from bot.storage.db import as_utc
from bot.text import when
from commands import rollback
from commands.common import Invocation, ephemeral, request_scope
from commands.deps import Deps
from commands.views.monitoring import PROPOSE_ROLLBACK


def rollback_text(deps: Deps, alert: MonitoringAlert) -> str:
    """The `/rollback` text the button stands for: a reason naming the alert, and `--trigger`."""
    signal = next((s for s in deps.runbook.signals() if s.id == alert.signal_id), None)
    what = f"{signal.name}: {against(signal, alert.value)}" if signal else alert.signal_id
    reason = f"monitoring alert {alert.id}: {what} since {when(as_utc(alert.since))}"
    return f"{reason} --trigger {alert.trigger}"


def register(app: App, deps: Deps) -> None:
    store = MonitoringStore(deps.engine, deps.audit)
    deps.on_cutover_transition.append(WindowOpener(deps, store, Poster(deps.slack)))

    def ack_click(ack: Ack) -> None:
        ack()

    def work_propose(body: dict[str, Any], respond: Respond) -> None:
        inv = Invocation.from_action(body)
        alert_id = str(((body.get("actions") or [{}])[0]).get("value", ""))[:32]
        alert = store.get_alert(alert_id)
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

    app.action(PROPOSE_ROLLBACK)(ack=ack_click, lazy=[work_propose])
