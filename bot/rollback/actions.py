"""The rollback as an approvable action: how its card reads, and what approving it starts.

`execute` runs once per approval (the spine's conditional UPDATE). It re-reads the world and
refuses when the deployed version or the target moved since the request, or when the target is a
release an earlier rollback took production off and `--to` did not name it; it claims the single
running-rollback slot, posts the progress message and starts the sequence on its own thread, so
the approval ends "executed: started" within seconds while the rollback's own state machine
(the `rollback` table) carries the steps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.approvals.actions import ExecutionContext, Outcome
from bot.approvals.store import ApprovalStore
from bot.audit.log import Actor
from bot.clients.backend_errors import BackendError
from bot.clients.github_errors import GitHubError
from bot.rollback import plan as rollback_plan
from bot.rollback.history import redeploy_refusal, rolled_back_from
from bot.rollback.models import Rollback
from bot.rollback.plan import Observation, revalidate
from bot.rollback.runner import RollbackRunner
from bot.rollback.steps import initial_steps
from bot.rollback.store import RollbackStore, new_rollback_id
from bot.runbook.model import Runbook

Observe = Callable[[str, str | None], Observation]  # (request id, `--to` sha) -> what the bot sees now


@dataclass
class RollbackSpec:
    runbook: Runbook
    store: RollbackStore
    runner: RollbackRunner
    approvals: ApprovalStore
    observe: Observe
    clock: Callable[[], datetime]

    @property
    def name(self) -> str:
        return "rollback"

    def title(self, params: Mapping[str, Any]) -> str:
        return rollback_plan.title(params)

    def effect(self, params: Mapping[str, Any]) -> str:
        return rollback_plan.effect(self.runbook, params)

    def execute(self, ctx: ExecutionContext) -> Outcome:
        # A resumed execution (its first process died) whose rollback had already started: that was this one.
        mine = next((r for r in self.store.recent() if r.approval_id == ctx.approval_id), None)
        if mine is not None:
            return Outcome(
                True,
                f":arrow_forward: *Rollback `{mine.id}` started* (before the bot process handling "
                f"this approval stopped); it is now *{mine.status}*: see `/rollback status`.",
                "applied",
            )
        running = self.store.running()
        if running is not None:
            return busy(running)
        try:
            seen = self.observe(ctx.request_id, str(ctx.params.get("to") or "") or None)
        except (BackendError, GitHubError) as exc:
            return Outcome(
                False,
                f":warning: *Rollback NOT started:* the plan could not be re-checked. {exc.operator_text()}",
                "failed",
                retryable=exc.retryable,
                detail=exc.detail,
            )
        problem = revalidate(ctx.params, seen) or self._redeploy_problem(ctx.params)
        if problem is not None:
            return Outcome(
                False,
                f":no_entry: *Rollback NOT started:* {problem}. This approval is void; request "
                "`/rollback` again to see and approve the new plan.",
                "not_applied",
                detail=problem,
            )
        row = self._row(ctx)
        if not self.store.start(row, Actor("", ctx.approver)):
            other = self.store.running()
            return (
                busy(other)
                if other
                else Outcome(
                    False,
                    ":no_entry: *Rollback NOT started:* it could not claim the rollback slot; see `/rollback status`.",
                    "not_applied",
                )
            )
        self.runner.launch(row)
        return Outcome(
            True,
            f":arrow_forward: *Rollback `{row.id}` started.* Each step is shown in the progress "
            "message below; `/rollback status` shows it too.",
            "applied",
        )

    def _redeploy_problem(self, params: Mapping[str, Any]) -> str | None:
        """The store decides, not the card: a rollback that closed after the request counts too."""
        return redeploy_refusal(params, rolled_back_from(self.store.recent(), str(params["target"])))

    def _row(self, ctx: ExecutionContext) -> Rollback:
        params, now = ctx.params, self.clock()
        started = params.get("release_started_at")
        approval = self.approvals.get(approval_id=ctx.approval_id)
        return Rollback(
            id=new_rollback_id(),
            approval_id=ctx.approval_id,
            status="running",
            request_id=approval.request_id if approval else "",
            run_request_id=ctx.request_id,
            requester=ctx.requester,
            approver=ctx.approver,
            channel=approval.channel if approval else "",
            trigger=str(params.get("trigger") or ""),
            reason=str(params["reason"]),
            deployed=str(params["deployed"]),
            target=str(params["target"]),
            release_started_at=datetime.fromisoformat(started) if started else None,
            steps=initial_steps((a.id, a.text) for a in self.runbook.rollback.actions),
            created_at=now,
            updated_at=now,
        )


def busy(running: Rollback) -> Outcome:
    return Outcome(
        False,
        f":no_entry: *Rollback NOT started:* rollback `{running.id}` is running (requested by "
        f"<@{running.requester}>). Follow its progress message or `/rollback status`; request again "
        "once it has ended.",
        "not_applied",
        detail=f"{running.id} running",
    )
