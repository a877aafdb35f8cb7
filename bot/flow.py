"""The approval flow: post a request, decide clicks, execute exactly once, sweep expiries."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import datetime

from slack_sdk.errors import SlackApiError

from bot import audit_binding
from bot.actions import ActionSpec, ExecutionContext, Outcome
from bot.approval_store import params_intact, params_of, view_of
from bot.approvals import (
    INTERRUPTED_AFTER,
    Status,
    Transition,
    Verb,
    after_execution,
    decide,
    on_timeout,
    status_command,
)
from bot.audit import SYSTEM, Actor, Entry
from bot.deps import Deps
from bot.errors import AlreadyHandled, ApprovalExpired, NotAllowed, StoreUnavailable, UnknownApproval
from bot.flow_messages import after_text, card, fallback_text, status_text, update_message
from bot.models import Approval
from bot.policy import Role
from bot.render import approval_blocks, as_dicts
from bot.text import safe

log = logging.getLogger("opsbot.flow")

# Waits before retrying to record an outcome the store refused. Each try already waits out SQLite's
# 5 s busy timeout, so three tries span about 16 s: a lock held by a burst passes, a dead store does not.
RECORD_RETRY_DELAYS_S = (0.5, 1.0)


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
        posted = deps.slack.chat_postMessage(channel=channel, blocks=blocks, text=fallback_text(deps, row))
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
    row.status = transition.to_status.value
    try:
        row = deps.approvals.get(approval_id=approval_id) or row
    except StoreUnavailable:  # the claim is committed and ours: go on rather than strand it executing
        log.warning("could not re-read approval %s after claiming it; continuing", approval_id)
    if transition.executes:
        execute(deps, row, approver=actor.user_id, request_id=request_id)
        return
    update_message(deps, row, status=status_text(row, actor.user_id))
    if transition.to_status is Status.DISPUTED:
        escalate(deps, row, why=f"disputed by <@{actor.user_id}>")


def _refused(deps: Deps, row: Approval, actor: Actor, request_id: str, reason: str) -> None:
    entry = Entry(actor, f"{row.action}.approval_refused", "denied", {"approval_id": row.id}, request_id, row.id,
                  row.channel, reason)
    deps.audit.record(entry)


def execute(deps: Deps, row: Approval, *, approver: str, request_id: str) -> Outcome:
    """Run a claimed (executing) approval once and record where it ends up."""
    spec = deps.actions[row.action]
    unbound = audit_binding.check(deps, row)  # what runs is what the audit chain recorded at the request
    if unbound:
        outcome = audit_binding.refused(deps, row, approver=approver, request_id=request_id, why=unbound)
    elif not params_intact(row):
        outcome = Outcome(False, ":no_entry: The stored request does not match what was approved; not run.",
                          "failed", detail="params hash mismatch")
    else:
        update_message(deps, row, status=f":gear: Approved by <@{approver}>; executing…", buttons=False)
        ctx = ExecutionContext(row.id, params_of(row), row.requester, approver, request_id)
        outcome = spec.execute(ctx)
    now = deps.now()
    target = after_execution(break_glass=row.break_glass, succeeded=outcome.applied,
                             retryable=outcome.retryable, ttl_left=now < view_of(row).expires_at)
    recorded = _record(deps, row, target, Actor(row.team_id, approver), now, request_id, outcome)
    if not recorded:  # None: the store refused it; False: a sweep closed the approval first
        return _unrecorded(deps, row, approver, outcome) if recorded is None else _late(
            deps, row, approver, outcome, request_id)
    row.status = target.value
    deps.metrics.approvals.labels(row.action, outcome.audit_outcome).inc()
    # Sign the chain's head now, and witness it on the outcome message (README "Audit log").
    checkpoint = deps.checkpoints.after_action() if deps.checkpoints is not None else None
    update_message(deps, row, status=after_text(row, approver, outcome, target, at=now),
                   audit=checkpoint.compact() if checkpoint else "")
    if unbound:
        audit_binding.escalate(deps, row, why=unbound)
    if row.break_glass and target is Status.FAILED and outcome.uncertain:  # may have halted, unconfirmed
        escalate(deps, row, why="failed with an unknown outcome: it may have applied with nobody confirming it")
    return outcome


def _record(deps: Deps, row: Approval, target: Status, actor: Actor, now: datetime, request_id: str,
            outcome: Outcome) -> bool | None:
    """True: recorded; False: a sweep closed it meanwhile; None: the store refused every try."""
    for delay in (*RECORD_RETRY_DELAYS_S, None):
        try:
            return deps.approvals.finish(row=row, to_status=target, actor=actor, now=now, request_id=request_id,
                                         outcome=outcome.summary, audit_outcome=outcome.audit_outcome,
                                         detail=outcome.detail, uncertain=outcome.uncertain)
        except StoreUnavailable as exc:
            log.warning("could not record the outcome of %s: %s", row.id, exc)
            if delay is None:
                return None
            time.sleep(delay)
    return None


def _unrecorded(deps: Deps, row: Approval, approver: str, outcome: Outcome) -> Outcome:
    """The action ran but the store will not take its result: say so, never "nothing was done"."""
    log.error("outcome %s of approval %s NOT recorded; a sweep marks it interrupted", outcome.audit_outcome, row.id)
    deps.metrics.approvals.labels(row.action, "unrecorded").inc()
    who = "Break-glass" if row.break_glass else f"Approved by <@{approver}>"
    text = (f"{who}. {outcome.summary}\n:warning: *Outcome NOT recorded:* the bot's store is unavailable, so "
            f"this is not in the audit log, and the request is marked interrupted within "
            f"{INTERRUPTED_AFTER.seconds // 60} min. What actually applied is unknown to the bot: check "
            f"`{status_command(row.action)}` before acting again.")
    update_message(deps, row, status=text, buttons=False)
    return replace(outcome, summary=text)


def _late(deps: Deps, row: Approval, approver: str, outcome: Outcome, request_id: str) -> Outcome:
    """The outcome arrived after a sweep had already marked this approval interrupted."""
    try:
        latest = deps.approvals.get(approval_id=row.id) or row
    except StoreUnavailable:  # say what came back all the same
        latest = row
    log.error("approval %s finished after it was marked %s", row.id, latest.status)
    try:
        deps.audit.record(Entry(Actor(row.team_id, approver), f"{row.action}.outcome_late", outcome.audit_outcome,
                                params_of(row), request_id, row.id, row.channel, outcome.detail))
    except StoreUnavailable:
        log.exception("could not audit the late outcome of %s", row.id)
    text = (f"{outcome.summary}\n:information_source: This result arrived after the request had been marked "
            f"{latest.status}; check `{status_command(row.action)}`.")
    update_message(deps, latest, status=text, buttons=False)
    return replace(outcome, summary=text)


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
    update_message(deps, row, status=status_text(row, SYSTEM.user_id))
    if transition.to_status is Status.ESCALATED:
        escalate(deps, row, why="not confirmed within the TTL")


def escalate(deps: Deps, row: Approval, *, why: str) -> None:
    holders = " ".join(f"<@{u}>" for u in sorted(deps.directory.holders(Role.HALT_AUTHORITY)))
    title = safe(deps.actions[row.action].title(params_of(row)), 150)
    text = (f":rotating_light: *Escalation:* break-glass `{title}` by <@{row.requester}> was {why}. "
            f"{holders or 'No halt authorities are configured.'} please review. The bot never resumes on its own.")
    try:
        deps.slack.chat_postMessage(channel=row.channel, text=text)
    except SlackApiError as exc:
        log.error("escalation for %s could not be posted: %s", row.id, exc.response.get("error"))
    deps.audit.record(Entry(SYSTEM, f"{row.action}.escalation_posted", "accepted", {"why": why},
                            row.request_id, row.id, row.channel))


def sweep(deps: Deps) -> int:
    """Time out everything due and close interrupted executions; safe to run in every replica at once."""
    now = deps.now()
    due = deps.approvals.due(now=now)
    for row in due:
        time_out(deps, row)
    stale = deps.approvals.stale(now=now)
    for row in stale:
        interrupt(deps, row, now=now)
    return len(due) + len(stale)


def interrupt(deps: Deps, row: Approval, *, now: datetime) -> None:
    """Fail an approval left `executing` (bot died, outcome unrecorded) once; never re-send: it may have applied."""
    check = status_command(row.action)
    who = f"Break-glass by <@{row.requester}>" if row.break_glass else f"Approved by <@{row.decided_by}>"
    text = (f":warning: *Interrupted:* {who}, but the bot stopped or could not record the outcome, so whether "
            f"it reached the backend is unknown. It was not sent again. Check `{check}` before acting again.")
    detail = f"interrupted: outcome not recorded; check {check}"
    if not deps.approvals.interrupt(row=row, actor=SYSTEM, now=now, outcome=text, detail=detail):
        return
    row.status = Status.FAILED.value
    deps.metrics.approvals.labels(row.action, "interrupted").inc()
    update_message(deps, row, status=text, buttons=False)
    if row.break_glass:  # it may have halted with nobody confirming it
        escalate(deps, row, why="interrupted before its outcome was recorded")
