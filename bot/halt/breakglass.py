"""A halt authority's break-glass halt: it halts whatever the store does.

The normal path is the two-person flow's (claim the approval row, call the backend, record). The
claim is given STORE_WAIT_S: a store that is down answers at once and one that is hung (stopped,
partitioned) does not answer at all, and either way the halt proceeds from the local journal
(bot.audit.journal) under the same approval id, so a claim that lands late and the journaled halt are
one approval, sent under one Idempotency-Key. Only halts do this; everything else fails closed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from bot.approvals.actions import ExecutionContext, Outcome
from bot.approvals.flow import Flow
from bot.approvals.machine import after_execution
from bot.approvals.messages import card_note
from bot.approvals.outbox import NotDelivered, Note
from bot.approvals.policy import Role
from bot.approvals.store import new_approval_id
from bot.audit.journal import Journal
from bot.audit.log import Actor, Entry
from bot.audit.replays import ReplayStore, replay_entry
from bot.storage.errors import StoreUnavailable
from bot.storage.models import Approval
from bot.text import safe

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


class BreakGlassHalts:
    """Built once at start-up: the flow, the local journal, the replay guard, and the bounded store calls."""

    def __init__(
        self, flow: Flow, *, engine: Engine, journal: Journal, replays: ReplayStore, store_calls: Executor
    ) -> None:
        self.flow, self.engine, self.journal, self.replays, self.store_calls = (
            flow,
            engine,
            journal,
            replays,
            store_calls,
        )

    def halt_now(self, req: BreakGlass, *, tell: Callable[[str], None]) -> Outcome | None:
        """Run a break-glass halt; None when the request was a replay (nothing done, audited once)."""
        approval_id = new_approval_id()
        try:
            row = self.store_calls.submit(self._claim, req, approval_id).result(timeout=STORE_WAIT_S)
        except FutureTimeout:
            why = f"the store did not answer within {STORE_WAIT_S} s"
            return self.halt_from_journal(req, approval_id, why=why, tell=tell)
        except StoreUnavailable as exc:
            return self.halt_from_journal(req, approval_id, why=f"the store is unavailable ({exc})", tell=tell)
        if row is None:
            return None
        # Claimed, its card queued in the same transaction: straight to the backend; the notifier tells Slack.
        return self.flow.execute(row, approver=req.actor.user_id, request_id=req.request_id)

    def _claim(self, req: BreakGlass, approval_id: str) -> Approval | None:
        """The approval row, its card and the request's replay row in one transaction: one store round trip."""
        try:
            return self.flow.open_request(
                spec=self.flow.actions["halt"],
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
        self.replays.note_replay(
            req.replay_key, replay_entry(req.replay_key, actor=req.actor, what=what, channel=req.channel)
        )
        self.flow.metrics.denied.labels("replay").inc()
        return None

    def halt_from_journal(self, req: BreakGlass, approval_id: str, *, why: str, tell: Callable[[str], None]) -> Outcome:
        """Claim in the journal, call the backend, record in the journal; then tell the channel."""
        log.warning("break-glass %s halts without the store: %s", approval_id, why)
        created = {
            "create": True,
            "action": "halt",
            "approve_role": Role.HALT_AUTHORITY.value,
            "ttl_seconds": self.flow.ttl_seconds,
        }
        self._journal(req, approval_id, "break_glass", "accepted", f"store unavailable: {why}", created)
        ctx = ExecutionContext(approval_id, req.params, req.actor.user_id, req.actor.user_id, req.request_id)
        outcome = self.flow.actions["halt"].execute(ctx)
        target = after_execution(
            break_glass=True, succeeded=outcome.applied, retryable=outcome.retryable, ttl_left=True
        )
        step = "executed" if outcome.audit_outcome == "applied" else "failed"
        done = {"status": target.value, "outcome": outcome.summary}
        self._journal(req, approval_id, step, outcome.audit_outcome, outcome.detail, done)
        self.flow.metrics.approvals.labels("halt", "break_glass_journaled").inc()
        text = pending_text(req, approval_id, outcome)
        self.post(req.channel, text)
        tell(text)
        return outcome

    def _journal(
        self, req: BreakGlass, approval_id: str, step: str, outcome: str, detail: str, approval: Mapping[str, object]
    ) -> None:
        entry = Entry(req.actor, f"halt.{step}", outcome, req.params, req.request_id, approval_id, req.channel, detail)
        self.journal.append(entry, approval=approval)

    def post(self, channel: str, text: str) -> None:
        try:
            self.flow.direct.post(Note("", "post", channel, text))
        except NotDelivered as exc:
            log.warning("could not tell channel %s: %s", channel, exc)

    def merge_journal(self) -> int:
        """Merge journaled audit rows once the store answers, and tell each channel concerned."""
        merged = self.journal.merge(self.engine, self.flow.audit)
        # Each halt's card, with the buttons a second halt authority confirms with: posted, or (a claim that
        # landed late already queued one) updated.
        approvals = self.flow.approvals
        for approval_id, kind in [*((a, "post") for a in merged.approvals), *((a, "update") for a in merged.settled)]:
            row = approvals.get(approval_id=approval_id)
            if row is not None:
                status = (
                    f"{row.outcome}\n:white_check_mark: Audit merged: this halt ran while the store was unavailable."
                )
                approvals.outbox.enqueue([card_note(self.flow.actions, row, status=status, kind=kind)])
        if merged.rows:
            for channel in merged.channels:
                self.post(
                    channel,
                    f":white_check_mark: *Audit merged:* {merged.rows} audit row(s) journaled while "
                    f"the bot's store was unavailable are now in the audit log (seq "
                    f"{merged.first_seq} to {merged.last_seq}).",
                )
        return merged.rows


def pending_text(req: BreakGlass, approval_id: str, outcome: Outcome) -> str:
    scope = "all trading (global)" if req.scope == "global" else f"`{safe(req.scope, 80)}`"
    return (
        f":rotating_light: *BREAK-GLASS* halt of {scope} by <@{req.actor.user_id}>: "
        f"{safe(req.reason, 300)}\n{outcome.summary}\n:hourglass: *Audit pending:* the bot's store was "
        f"unavailable, so this halt's audit rows are in the bot's local journal; they are merged into the "
        f"audit log when the store is back, and this channel is told then. A second halt authority can "
        f"confirm once the store is back (approval `{approval_id}`)."
    )
