"""An alert's card in Block Kit; the words of the notices around it are bot.monitoring.texts."""

from __future__ import annotations

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.monitoring.models import MonitoringAlert
from bot.monitoring.signals import against, promql, shown
from bot.monitoring.texts import threshold_text
from bot.runbook.model import TRIGGER_IDS, Runbook, Signal
from bot.storage.db import as_utc
from bot.text import clip, safe, when

PROPOSE_ROLLBACK = "monitoring.propose_rollback"


def trigger_text(runbook: Runbook, trigger_id: str) -> str:
    if not trigger_id:
        return (
            "*Not one of the runbook's hard rollback triggers*: judge it against them; `/rollback <reason>` "
            "if it warrants one."
        )
    trigger = runbook.trigger(trigger_id)
    number = TRIGGER_IDS.index(trigger_id) + 1
    return f"*Hard rollback trigger {number} of {len(TRIGGER_IDS)}:* {trigger.name}: _{safe(trigger.text, 300)}_"


def alert_blocks(
    runbook: Runbook, signal: Signal, alert: MonitoringAlert, *, stage_name: str, status: str | None = None
) -> list[Block]:
    """An alert's card: open, the latest value and the peak; cleared or closed, when, the peak, no button.
    `stage_name` is the stage the breach happened in."""
    is_open = alert.status == "open"
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=clip(f"{_alert_head(alert)}: {signal.name}", 150), emoji=True)),
        SectionBlock(fields=[MarkdownTextObject(text=text) for text in _alert_fields(signal, alert, stage_name)]),
        SectionBlock(text=MarkdownTextObject(text=trigger_text(runbook, alert.trigger))),
    ]
    if signal.query:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=f"*Query:* `{safe(promql(signal), 600)}`")))
    if alert.detail:  # a bot-measured value names what it counted (already escaped mrkdwn)
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(f"*Counted:*\n{alert.detail}", 3000))))
    if status is None and is_open and alert.not_fixed_by:
        status = card_note(alert.not_fixed_by)
    if status:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(status, 3000))))
    if alert.trigger and is_open:
        blocks.append(
            ActionsBlock(
                block_id="monitoring_alert",
                elements=[
                    # The value is the opaque alert id only; the store holds the signal, value and trigger.
                    ButtonElement(text="Propose rollback", action_id=PROPOSE_ROLLBACK, value=alert.id, style="danger"),
                ],
            )
        )
    live = f"updated {when(as_utc(alert.last_seen_at))} (at most once a minute)" if is_open else "no longer watched"
    blocks.append(
        ContextBlock(elements=[MarkdownTextObject(text=f"Alert `{alert.id}` · {live} · chart in the thread")])
    )
    return blocks


def card_note(rollback_id: str) -> str:
    """The line an open alert's card keeps once it outlived a rollback (bot.monitoring.after_rollback)."""
    return (
        f":rotating_light: *Not fixed by rollback `{safe(rollback_id, 32)}`*: still breaching on the release "
        "running now."
    )


def _alert_head(alert: MonitoringAlert) -> str:
    if alert.status == "open":
        return ":rotating_light: Monitoring alert"
    return ":white_check_mark: Cleared" if alert.status == "cleared" else ":hourglass: Closed, still breaching"


def _alert_fields(signal: Signal, alert: MonitoringAlert, stage_name: str) -> list[str]:
    since = f"*Since*\n{when(as_utc(alert.since))}"
    peak = f"*Peak*\n{shown(signal, alert.peak)} (threshold {threshold_text(signal)})"
    stage = f"*Stage*\n{safe(stage_name, 100)}"
    if alert.status == "open":
        return [f"*Latest*\n{against(signal, alert.value)}", since, peak, stage]
    ended = alert.cleared_at or alert.last_seen_at
    label = "Cleared" if alert.status == "cleared" else "Closed"
    return [f"*{label}*\n{when(as_utc(ended))}", since, peak, stage]
