"""When Slack will never take an approval's card (the notifier gave its post up): a request nobody can
see must not stay approvable, and the requester is told why and how to fix it."""

from __future__ import annotations

import logging
from typing import Protocol

from bot.approvals.flow import Flow
from bot.approvals.machine import Status, Transition
from bot.approvals.outbox import Note, payload_of
from bot.audit.log import SYSTEM, Entry
from bot.storage.models import OutboxRow

log = logging.getLogger("opsbot.flow")


class Refusal(Protocol):
    """What Slack's refusal means to an operator (the Slack edge classifies Slack's error codes)."""

    @property
    def error(self) -> str: ...

    @property
    def permanent(self) -> bool: ...

    @property
    def text(self) -> str: ...


def card_refused(flow: Flow, row: OutboxRow, refusal: Refusal) -> None:
    """Cancel a pending request whose card was refused; a break-glass ran anyway: its requester gets
    its outcome. Either way the requester hears it through the command's response_url."""
    if not row.stream.startswith("approval:"):
        return
    approval = flow.approvals.get(approval_id=row.stream.removeprefix("approval:"))
    if approval is None:
        return
    details = {"error": refusal.error, "permanent": refusal.permanent}
    flow.audit.record(
        Entry(
            SYSTEM,
            f"{approval.action}.slack_refused",
            "failed",
            details,
            approval.request_id,
            approval.id,
            approval.channel,
            refusal.text,
        )
    )
    if approval.status == Status.PENDING.value:
        transition = Transition(Status.PENDING, Status.REJECTED, "cancelled", executes=False)
        flow.approvals.apply(
            row=approval, transition=transition, actor=SYSTEM, now=flow.now(), request_id=approval.request_id
        )
        told = "The request was cancelled and nothing was done. Fix that, then try again."
    else:
        told = (
            f"{approval.outcome or 'It ran.'}\nTell the channel yourself, and ask a second halt authority to "
            f"confirm (approval `{approval.id}`)."
        )
    url = str(payload_of(row).get("extra", {}).get("answer_to") or "")
    if url:
        text = (
            f":warning: Slack did not accept the bot's message: {refusal.text} {told} Request id "
            f"`{approval.request_id}`."
        )
        flow.approvals.outbox.enqueue([Note(f"answer:{approval.id}", "respond", approval.channel, text, url=url)])
    log.warning("approval %s: its card was refused by Slack (%s)", approval.id, refusal.error)
