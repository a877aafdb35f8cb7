"""A halt authority's break-glass halt: it halts whatever the store does.

The normal path is the two-person flow's (claim the approval row, call the backend, record). The
claim is given STORE_WAIT_S: a store that is down answers at once and one that is hung (stopped,
partitioned) does not answer at all, and either way the halt proceeds from the local journal
(bot.audit.journal) under the same approval id, so a claim that lands late and the journaled halt are
one approval, sent under one Idempotency-Key. Only halts do this; everything else fails closed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError
from sqlalchemy.exc import IntegrityError

from bot.approvals import flow
from bot.approvals.actions import ExecutionContext, Outcome
from bot.approvals.machine import after_execution
from bot.approvals.messages import card_note
from bot.approvals.policy import Role
from bot.approvals.store import new_approval_id
from bot.audit.log import Actor, Entry
from bot.audit.replays import replay_entry
from bot.storage.errors import StoreUnavailable
from bot.storage.models import Approval
from bot.text import safe
from commands.deps import Deps

log = logging.getLogger("opsbot.breakglass")

# How long a break-glass waits for the store's claim before it halts from the journal instead.
STORE_WAIT_S = 1.0


@dataclass(frozen=True)
class BreakGlass:
    actor: Actor
    channel: str
    request_id: str
    scope: str
    reason: str
    replay_key: str | None = None
    answer_to: str | None = None  # the command's response_url

    @property
    def params(self) -> dict[str, object]:
        return {"scope": self.scope, "reason": self.reason}


def halt_now(deps: Deps, req: BreakGlass, *, tell: Callable[[str], None]) -> Outcome | None:
    """Run a break-glass halt; None when the request was a replay (nothing done, audited once)."""
    approval_id = new_approval_id()
    try:
        row = deps.store_calls.submit(_claim, deps, req, approval_id).result(timeout=STORE_WAIT_S)
    except FutureTimeout:
        return halt_from_journal(
            deps, req, approval_id, why=f"the store did not answer within {STORE_WAIT_S} s", tell=tell
        )
    except StoreUnavailable as exc:
        return halt_from_journal(deps, req, approval_id, why=f"the store is unavailable ({exc})", tell=tell)
    if row is None:
        return None
    # Claimed, its card queued in the same transaction: straight to the backend; the notifier tells Slack.
    return flow.execute(deps, row, approver=req.actor.user_id, request_id=req.request_id)


def _claim(deps: Deps, req: BreakGlass, approval_id: str) -> Approval | None:
    """The approval row, its card and the request's replay row in one transaction: one store round trip."""
    try:
        return flow.open_request(
            deps,
            spec=deps.actions["halt"],
            params=req.params,
            actor=req.actor,
            channel=req.channel,
            request_id=req.request_id,
            approve_role=Role.HALT_AUTHORITY,
            break_glass=True,
            answer_to=req.answer_to,
            approval_id=approval_id,
            seen_key=req.replay_key,
        )
    except IntegrityError:  # the replay row was there: this request was already taken
        if req.replay_key is None:
            raise
    what = f"/halt {req.scope} --now"
    deps.replays.note_replay(
        req.replay_key, replay_entry(req.replay_key, actor=req.actor, what=what, channel=req.channel)
    )
    deps.metrics.denied.labels("replay").inc()
    return None


def halt_from_journal(
    deps: Deps, req: BreakGlass, approval_id: str, *, why: str, tell: Callable[[str], None]
) -> Outcome:
    """Claim in the journal, call the backend, record in the journal; then tell the channel."""
    log.warning("break-glass %s halts without the store: %s", approval_id, why)
    created = {
        "create": True,
        "action": "halt",
        "approve_role": Role.HALT_AUTHORITY.value,
        "ttl_seconds": deps.settings.approval_ttl_seconds,
    }
    deps.journal.append(
        Entry(
            req.actor,
            "halt.break_glass",
            "accepted",
            req.params,
            req.request_id,
            approval_id,
            req.channel,
            f"store unavailable: {why}",
        ),
        approval=created,
    )
    ctx = ExecutionContext(approval_id, req.params, req.actor.user_id, req.actor.user_id, req.request_id)
    outcome = deps.actions["halt"].execute(ctx)
    target = after_execution(break_glass=True, succeeded=outcome.applied, retryable=outcome.retryable, ttl_left=True)
    step = "executed" if outcome.audit_outcome == "applied" else "failed"
    deps.journal.append(
        Entry(
            req.actor,
            f"halt.{step}",
            outcome.audit_outcome,
            req.params,
            req.request_id,
            approval_id,
            req.channel,
            outcome.detail,
        ),
        approval={"status": target.value, "outcome": outcome.summary},
    )
    deps.metrics.approvals.labels("halt", "break_glass_journaled").inc()
    text = pending_text(req, approval_id, outcome)
    post(deps, req.channel, text)
    tell(text)
    return outcome


def pending_text(req: BreakGlass, approval_id: str, outcome: Outcome) -> str:
    scope = "all trading (global)" if req.scope == "global" else f"`{safe(req.scope, 80)}`"
    return (
        f":rotating_light: *BREAK-GLASS* halt of {scope} by <@{req.actor.user_id}>: "
        f"{safe(req.reason, 300)}\n{outcome.summary}\n:hourglass: *Audit pending:* the bot's store was "
        f"unavailable, so this halt's audit rows are in the bot's local journal; they are merged into the "
        f"audit log when the store is back, and this channel is told then. A second halt authority can "
        f"confirm once the store is back (approval `{approval_id}`)."
    )


def post(deps: Deps, channel: str, text: str) -> None:
    try:
        deps.slack.chat_postMessage(channel=channel, text=text)
    except (SlackApiError, OSError) as exc:
        log.warning("could not tell channel %s: %s", channel, type(exc).__name__)


def merge_journal(deps: Deps) -> int:
    """Merge journaled audit rows once the store answers, and tell each channel concerned."""
    merged = deps.journal.merge(deps.engine, deps.audit)
    # Each halt's card, with the buttons a second halt authority confirms with: posted, or (a claim that
    # landed late already queued one) updated.
    for approval_id, kind in [*((a, "post") for a in merged.approvals), *((a, "update") for a in merged.settled)]:
        row = deps.approvals.get(approval_id=approval_id)
        if row is not None:
            status = f"{row.outcome}\n:white_check_mark: Audit merged: this halt ran while the store was unavailable."
            deps.approvals.outbox.enqueue([card_note(deps, row, status=status, kind=kind)])
    if merged.rows:
        for channel in merged.channels:
            post(
                deps,
                channel,
                f":white_check_mark: *Audit merged:* {merged.rows} audit row(s) journaled while "
                f"the bot's store was unavailable are now in the audit log (seq "
                f"{merged.first_seq} to {merged.last_seq}).",
            )
    return merged.rows
