"""How an approval's Slack message reads: its card, its status lines, and updating it in place. No decisions."""

from __future__ import annotations

import logging
from datetime import datetime

from slack_sdk.errors import SlackApiError

from bot.actions import Outcome
from bot.approval_store import params_of, view_of
from bot.approvals import Status, status_command
from bot.deps import Deps
from bot.models import Approval
from bot.policy import ROLE_NAMES, Role
from bot.render import Card, approval_blocks, as_dicts, when
from bot.text import safe

log = logging.getLogger("opsbot.flow")

STATUS_TEXT = {
    Status.REJECTED: ":x: Rejected by <@{by}>.",
    Status.EXPIRED: ":hourglass: Expired at {expires} without approval.",
    Status.CONFIRMED: ":white_check_mark: Break-glass confirmed by <@{by}>.",
    Status.DISPUTED: ":rotating_light: Break-glass disputed by <@{by}>; escalated to the halt authorities.",
    Status.ESCALATED: ":rotating_light: Not confirmed within the TTL; escalated to the halt authorities.",
}
CLOSED_UNRUN = frozenset({Status.REJECTED, Status.EXPIRED})

def card(deps: Deps, row: Approval, *, status: str | None = None, buttons: bool | None = None) -> Card:
    spec = deps.actions[row.action]
    params = params_of(row)
    view = view_of(row)
    open_ = view.status in (Status.PENDING, Status.AWAITING_CONFIRMATION)
    confirming = view.status is Status.AWAITING_CONFIRMATION
    return Card(
        title=spec.title(params),
        effect=spec.effect(params),
        reason=str(params.get("reason", "")),
        requester=row.requester,
        approver_role=ROLE_NAMES[Role(row.approve_role)],
        expires_at=view.expires_at,
        approval_id=row.id,
        request_id=row.request_id,
        status=status,
        buttons=open_ if buttons is None else buttons,
        approve_label="Confirm halt" if confirming else "Approve",
        reject_label="Dispute" if confirming else "Reject",
        **confirm_dialog(spec, params, row, confirming=confirming),
    )


def confirm_dialog(spec: object, params: dict[str, object], row: Approval, *, confirming: bool) -> dict[str, str]:
    """What the approver's confirm dialog says: a break-glass confirmation halts nothing again."""
    if confirming:
        return {"confirm_title": "Confirm the break-glass halt?",
                "confirm_text": f"{params.get('scope')} is already halted (break-glass by the requester). Confirming "
                                "records that you agree; nothing is sent to the backend."}
    confirm = getattr(spec, "confirm", None)
    if confirm is None:
        return {}
    title, text = confirm(params)
    return {"confirm_title": str(title), "confirm_text": str(text)}


def update_message(deps: Deps, row: Approval, *, status: str | None, buttons: bool | None = None) -> None:
    if not row.message_ts:
        return
    blocks = as_dicts(approval_blocks(card(deps, row, status=status, buttons=buttons)))
    try:
        deps.slack.chat_update(channel=row.channel, ts=row.message_ts, blocks=blocks, text=fallback_text(deps, row))
    except SlackApiError as exc:
        # The store and the audit log stay the truth; a stale message is logged, not fatal.
        log.warning("could not update approval message %s: %s", row.id, exc.response.get("error"))


def fallback_text(deps: Deps, row: Approval) -> str:
    return f"{safe(deps.actions[row.action].title(params_of(row)), 150)} ({row.status})"


def status_text(row: Approval, by: str) -> str:
    status = Status(row.status)
    template = STATUS_TEXT.get(status, f"Status: {status.value}")
    if status is Status.REJECTED and by == row.requester:
        text = f":leftwards_arrow_with_hook: Withdrawn by <@{by}>, the requester."
    else:
        text = template.format(by=by, expires=when(view_of(row).expires_at))
    if status not in CLOSED_UNRUN:
        return text
    if row.attempts <= 0:
        return f"{text} Nothing was done."
    # After an attempt whose result was unknown (a timed-out write may land late) that would be false.
    return (f"{text}\n:warning: Not run again, but an earlier attempt ({row.attempts}) may have reached the "
            f"backend: check `{status_command(row.action)}`.")


def after_text(row: Approval, approver: str, outcome: Outcome, target: Status, *, at: datetime) -> str:
    if target is Status.PENDING:  # who tried and when stay on the message while it waits for a retry
        return (f"Approved by <@{approver}> at {when(at)}. {outcome.summary}\n:repeat: Still pending: approve again "
                f"to retry (same idempotency key) before {when(view_of(row).expires_at)}.")
    if target is Status.AWAITING_CONFIRMATION:
        return (f"{outcome.summary}\n:warning: Break-glass by <@{approver}>: a second halt authority must "
                f"confirm before {when(view_of(row).expires_at)}, or this is escalated.")
    who = "Break-glass" if row.break_glass else f"Approved by <@{approver}>"
    return f"{who}. {outcome.summary}"
