"""How an approval's Slack messages read: its card, its status lines, and the outbox notes that post,
update and answer in its thread. No decisions, and no Slack calls: the notifier sends the notes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from bot.approvals.actions import ActionSpec, Outcome
from bot.approvals.card import Card
from bot.approvals.machine import Status, status_command
from bot.approvals.outbox import Note
from bot.approvals.policy import ROLE_NAMES, Directory, Role
from bot.approvals.store import params_of, view_of
from bot.storage.models import Approval
from bot.text import clip, safe, when

Actions = Mapping[str, ActionSpec]

STILL_IN_FORCE = (
    ":octagonal_sign: *The halt is still in force:* the bot never resumes on its own; lifting it "
    "takes `/halt resume <scope> <reason>` and a second halt authority."
)
STATUS_TEXT = {
    Status.REJECTED: ":x: Rejected by <@{by}>.",
    Status.EXPIRED: ":hourglass: Expired at {expires} without approval.",
    Status.CONFIRMED: ":white_check_mark: Break-glass confirmed by <@{by}>.",
    Status.DISPUTED: ":rotating_light: Break-glass disputed by <@{by}>; escalated to the halt authorities.\n"
    + STILL_IN_FORCE,
    Status.ESCALATED: ":rotating_light: Not confirmed within the TTL; escalated to the halt authorities.",
}
CLOSED_UNRUN = frozenset({Status.REJECTED, Status.EXPIRED})
AFTER_BREAK_GLASS = frozenset({Status.CONFIRMED, Status.DISPUTED, Status.ESCALATED})
# Outcomes of these reach the whole channel, not only the card's thread.
BROADCAST = frozenset({"halt", "resume", "rollback"})


def stream_of(row: Approval) -> str:
    return f"approval:{row.id}"


def card(actions: Actions, row: Approval, *, status: str | None = None, buttons: bool | None = None) -> Card:
    spec = actions[row.action]
    params = params_of(row)
    view = view_of(row)
    open_ = view.status in (Status.PENDING, Status.AWAITING_CONFIRMATION)
    confirming = view.status is Status.AWAITING_CONFIRMATION
    return Card(
        title=("BREAK-GLASS · " if row.break_glass else "") + spec.title(params),
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
        effect_label="What will happen" if view.status is Status.PENDING else "What was asked",
        **confirm_dialog(spec, params, confirming=confirming),
    )


def confirm_dialog(spec: object, params: dict[str, object], *, confirming: bool) -> dict[str, str]:
    """What the approver's confirm dialog says: a break-glass confirmation halts nothing again."""
    if confirming:
        return {
            "confirm_title": "Confirm the break-glass halt?",
            "confirm_text": f"{params.get('scope')} is already halted (break-glass by the requester). Confirming "
            "records that you agree; nothing is sent to the backend.",
        }
    confirm = getattr(spec, "confirm", None)
    if confirm is None:
        return {}
    title, text = confirm(params)
    return {"confirm_title": str(title), "confirm_text": str(text)}


def card_note(
    actions: Actions,
    row: Approval,
    *,
    status: str | None,
    buttons: bool | None = None,
    kind: str = "update",
    audit: str = "",
) -> Note:
    """The card as it should read now: `post` opens it, `update` replaces it (the latest one wins).
    `audit`: the signed checkpoint's compact line, shown in the card's context (a witness).
    The notifier draws it (view "approval") when it delivers the note."""
    shown = replace(card(actions, row, status=status, buttons=buttons), audit=audit)
    return Note(stream_of(row), kind, row.channel, fallback_text(actions, row), view="approval", data=shown.data())


def thread_note(row: Approval, text: str, *, broadcast: bool = False) -> Note:
    """A new message in the card's thread: unlike an edit, it notifies (and, broadcast, the channel too)."""
    return Note(stream_of(row), "reply", row.channel, clip(text, 3000), broadcast=broadcast)


def outcome_note(row: Approval, approver: str, outcome: Outcome) -> Note:
    """The outcome, told to the people involved: requester and approver mentioned."""
    if row.break_glass:
        who = f"Break-glass by <@{row.requester}>."
    else:
        who = f"Requested by <@{row.requester}>, approved by <@{approver}>."
    return thread_note(row, f"{outcome.summary}\n{who} Approval `{row.id}`.", broadcast=row.action in BROADCAST)


def fallback_text(actions: Actions, row: Approval) -> str:
    head = "BREAK-GLASS " if row.break_glass else ""
    return f"{head}{safe(actions[row.action].title(params_of(row)), 150)} ({row.status})"


def status_text(row: Approval, by: str) -> str:
    status = Status(row.status)
    template = STATUS_TEXT.get(status, f"Status: {status.value}")
    if status is Status.REJECTED and by == row.requester:
        text = f":leftwards_arrow_with_hook: Withdrawn by <@{by}>, the requester."
    else:
        text = template.format(by=by, expires=when(view_of(row).expires_at))
    if status in AFTER_BREAK_GLASS and row.outcome:  # what was applied stays on the card
        return f"{row.outcome}\n{text}"
    if status not in CLOSED_UNRUN:
        return text
    if row.attempts <= 0:
        return f"{text} Nothing was done."
    # After an attempt whose result was unknown (a timed-out write may land late) that would be false.
    return (
        f"{text}\n:warning: Not run again, but an earlier attempt ({row.attempts}) may have reached the "
        f"backend: check `{status_command(row.action)}`."
    )


def after_text(row: Approval, approver: str, outcome: Outcome, target: Status, *, at: datetime) -> str:
    if target is Status.PENDING:  # who tried and when stay on the message while it waits for a retry
        return (
            f"Approved by <@{approver}> at {when(at)}. {outcome.summary}\n:repeat: Still pending: approve again "
            f"to retry (same idempotency key) before {when(view_of(row).expires_at)}."
        )
    if target is Status.AWAITING_CONFIRMATION:
        return (
            f"{outcome.summary}\n:warning: Break-glass by <@{approver}>: a second halt authority must "
            f"confirm before {when(view_of(row).expires_at)}, or this is escalated."
        )
    who = "Break-glass" if row.break_glass else f"Approved by <@{approver}>"
    return f"{who}. {outcome.summary}"


def escalation_note(actions: Actions, directory: Directory, row: Approval, *, why: str) -> Note:
    """A break-glass nobody confirmed, disputed or cut short: the halt authorities are called in."""
    holders = " ".join(f"<@{u}>" for u in sorted(directory.holders(Role.HALT_AUTHORITY)))
    title = safe(actions[row.action].title(params_of(row)), 150)
    text = (
        f":rotating_light: *Escalation:* break-glass `{title}` by <@{row.requester}> was {why}. "
        f"{holders or 'No halt authorities are configured.'} please review. The bot never resumes on its own."
    )
    return thread_note(row, text, broadcast=True)
