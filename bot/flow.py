"""The approval flow: post a request, decide clicks, execute exactly once, sweep expiries."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError

from bot.actions import ActionSpec, ExecutionContext, Outcome
from bot.approval_store import params_intact, params_of, view_of
from bot.approvals import Status, Transition, Verb, after_execution, decide, on_timeout
from bot.audit import SYSTEM, Actor, Entry
from bot.deps import Deps
from bot.errors import AlreadyHandled, ApprovalExpired, NotAllowed, UnknownApproval
from bot.models import Approval
from bot.policy import ROLE_NAMES, Role
from bot.render import Card, approval_blocks, as_dicts, when

log = logging.getLogger("opsbot.flow")

STATUS_TEXT = {
    Status.REJECTED: ":x: Rejected by <@{by}>. Nothing was done.",
    Status.EXPIRED: ":hourglass: Expired at {expires} without approval. Nothing was done.",
    Status.CONFIRMED: ":white_check_mark: Break-glass confirmed by <@{by}>.",
    Status.DISPUTED: ":rotating_light: Break-glass disputed by <@{by}>; escalated to the halt authorities.",
    Status.ESCALATED: ":rotating_light: Not confirmed within the TTL; escalated to the halt authorities.",
}


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
    )


def update_message(deps: Deps, row: Approval, *, status: str | None, buttons: bool | None = None) -> None:
    if not row.message_ts:
        return
    blocks = as_dicts(approval_blocks(card(deps, row, status=status, buttons=buttons)))
    try:
        deps.slack.chat_update(channel=row.channel, ts=row.message_ts, blocks=blocks, text=_fallback(deps, row))
    except SlackApiError as exc:
        # The store and the audit log stay the truth; a stale message is logged, not fatal.
        log.warning("could not update approval message %s: %s", row.id, exc.response.get("error"))


def _fallback(deps: Deps, row: Approval) -> str:
    return f"{deps.actions[row.action].title(params_of(row))} ({row.status})"


def open_request(
    deps: Deps, *, spec: ActionSpec, params: dict[str, object], actor: Actor, channel: str, request_id: str,
    approve_role: Role, break_glass: bool = False, status: str | None = None,
) -> Approval:
    row = deps.approvals.create(
        action=spec.name, params=params, actor=actor, approve_role=approve_role.value, channel=channel,
        request_id=request_id, ttl_seconds=deps.settings.approval_ttl_seconds, now=deps.now(),
        break_glass=break_glass,
    )
    deps.metrics.approvals.labels(spec.name, "break_glass" if break_glass else "requested").inc()
    blocks = as_dicts(approval_blocks(card(deps, row, status=status, buttons=not break_glass)))
    try:
        posted = deps.slack.chat_postMessage(channel=channel, blocks=blocks, text=_fallback(deps, row))
    except SlackApiError as exc:
        if break_glass:
            # A break-glass halt must not wait for Slack: it runs, and the requester hears of it directly.
            log.warning("break-glass %s runs without a channel message: %s", row.id, exc.response.get("error"))
            return row
        _cancel(deps, row, f"could not post the request: {exc.response.get('error')}")
        raise
    deps.approvals.attach_message(approval_id=row.id, message_ts=str(posted["ts"]))
    row.message_ts = str(posted["ts"])
    return row


def _cancel(deps: Deps, row: Approval, why: str) -> None:
    transition = Transition(Status.PENDING, Status.REJECTED, "cancelled", executes=False)
    deps.approvals.apply(row=row, transition=transition, actor=SYSTEM, now=deps.now(), request_id=row.request_id)
    log.warning("approval %s cancelled: %s", row.id, why)


def decide_click(deps: Deps, *, approval_id: str, verb: Verb, actor: Actor, request_id: str) -> None:
    """Apply one button click. Raises a typed error for the clicker when it is refused."""
    row = deps.approvals.get(approval_id=approval_id)
    if row is None:
        raise UnknownApproval(approval_id)
    now = deps.now()
    try:
        transition = decide(view_of(row), actor=actor.user_id, verb=verb, now=now, directory=deps.directory)
    except ApprovalExpired:
        time_out(deps, row)
        raise
    except NotAllowed as exc:
        _refused(deps, row, actor, request_id, exc.reason)
        raise
    if not deps.approvals.apply(row=row, transition=transition, actor=actor, now=now, request_id=request_id):
        latest = deps.approvals.get(approval_id=approval_id) or row
        view = view_of(latest)
        raise AlreadyHandled(view.status.value, view.decided_by, view.decided_at)
    deps.metrics.approvals.labels(row.action, transition.audit_action).inc()
    row = deps.approvals.get(approval_id=approval_id) or row
    if transition.executes:
        execute(deps, row, approver=actor.user_id, request_id=request_id)
        return
    update_message(deps, row, status=_status_text(row, actor.user_id))
    if transition.to_status is Status.DISPUTED:
        escalate(deps, row, why=f"disputed by <@{actor.user_id}>")


def _refused(deps: Deps, row: Approval, actor: Actor, request_id: str, reason: str) -> None:
    entry = Entry(actor, f"{row.action}.approval_refused", "denied", {"approval_id": row.id}, request_id, row.id,
                  row.channel, reason)
    deps.audit.record(entry)


def _status_text(row: Approval, by: str) -> str:
    status = Status(row.status)
    template = STATUS_TEXT.get(status, f"Status: {status.value}")
    if status is Status.REJECTED and by == row.requester:
        return f":leftwards_arrow_with_hook: Withdrawn by <@{by}>, the requester. Nothing was done."
    return template.format(by=by, expires=when(view_of(row).expires_at))


def execute(deps: Deps, row: Approval, *, approver: str, request_id: str) -> Outcome:
    """Run a claimed (executing) approval once and record where it ends up."""
    spec = deps.actions[row.action]
    if not params_intact(row):
        outcome = Outcome(False, ":no_entry: The stored request does not match what was approved; not run.",
                          "failed", detail="params hash mismatch")
    else:
        update_message(deps, row, status=f":gear: Approved by <@{approver}>; executing…", buttons=False)
        ctx = ExecutionContext(row.id, params_of(row), row.requester, approver, request_id)
        outcome = spec.execute(ctx)
    now = deps.now()
    target = after_execution(break_glass=row.break_glass, succeeded=outcome.applied,
                             retryable=outcome.retryable, ttl_left=now < view_of(row).expires_at)
    actor = Actor(row.team_id, approver)
    deps.approvals.finish(row=row, to_status=target, actor=actor, now=now, request_id=request_id,
                          outcome=outcome.summary, audit_outcome=outcome.audit_outcome, detail=outcome.detail)
    row.status = target.value
    deps.metrics.approvals.labels(row.action, outcome.audit_outcome).inc()
    update_message(deps, row, status=_after_text(row, approver, outcome, target))
    return outcome


def _after_text(row: Approval, approver: str, outcome: Outcome, target: Status) -> str:
    if target is Status.PENDING:
        return (f"{outcome.summary}\n:repeat: Still pending: approve again to retry (same idempotency key) "
                f"before {when(view_of(row).expires_at)}.")
    if target is Status.AWAITING_CONFIRMATION:
        return (f"{outcome.summary}\n:warning: Break-glass by <@{approver}>: a second halt authority must "
                f"confirm before {when(view_of(row).expires_at)}, or this is escalated.")
    who = "Break-glass" if row.break_glass else f"Approved by <@{approver}>"
    return f"{who}. {outcome.summary}"


def time_out(deps: Deps, row: Approval) -> None:
    """Expire a request, or escalate an unconfirmed break-glass, once (conditional UPDATE)."""
    now = deps.now()
    transition = on_timeout(view_of(row), now=now)
    if transition is None:
        return
    if not deps.approvals.apply(row=row, transition=transition, actor=SYSTEM, now=now,
                                request_id=row.request_id, timed_out=True):
        return
    row.status = transition.to_status.value
    deps.metrics.approvals.labels(row.action, transition.audit_action).inc()
    update_message(deps, row, status=_status_text(row, SYSTEM.user_id))
    if transition.to_status is Status.ESCALATED:
        escalate(deps, row, why="not confirmed within the TTL")


def escalate(deps: Deps, row: Approval, *, why: str) -> None:
    holders = " ".join(f"<@{u}>" for u in sorted(deps.directory.holders(Role.HALT_AUTHORITY)))
    title = deps.actions[row.action].title(params_of(row))
    text = (f":rotating_light: *Escalation:* break-glass `{title}` by <@{row.requester}> was {why}. "
            f"{holders or 'No halt authorities are configured.'} please review. The bot never resumes on its own.")
    try:
        deps.slack.chat_postMessage(channel=row.channel, text=text)
    except SlackApiError as exc:
        log.error("escalation for %s could not be posted: %s", row.id, exc.response.get("error"))
    deps.audit.record(Entry(SYSTEM, f"{row.action}.escalation_posted", "accepted", {"why": why},
                            row.request_id, row.id, row.channel))


def sweep(deps: Deps) -> int:
    """Time out everything due; safe to run in every replica at once."""
    due = deps.approvals.due(now=deps.now())
    for row in due:
        time_out(deps, row)
    return len(due)
