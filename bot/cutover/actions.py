"""The approvable "cutover advance": preconditions re-checked at approval, one stage entered, announced."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.approvals.actions import ExecutionContext, Outcome
from bot.approvals.outbox import Note, Outbox
from bot.cutover.rules import AdvanceFacts, blockers, next_stage
from bot.cutover.service import CutoverService
from bot.errors import OpsbotError
from bot.runbook.model import Stage
from bot.runbook.transitions import CutoverTransition, Hook, notify
from bot.storage.errors import StoreUnavailable
from bot.text import reason_text, safe

log = logging.getLogger("opsbot.cutover")

NAME = "cutover.advance"


def missing_text(facts: AdvanceFacts, missing: list[str], *, heading: str, people: frozenset[str]) -> str:
    lines = [f":no_entry: *{heading}* from *{safe(facts.current.name, 100)}*. Missing:"]
    lines += [f"• {reason_text(m, 700, people)}" for m in missing]
    return "\n".join(lines)


@dataclass
class AdvanceSpec:
    service: CutoverService
    outbox: Outbox
    people: frozenset[str]  # the role holders the bot's own reasons may mention
    announce_channel: str | None  # OPSBOT_ANNOUNCE_CHANNEL; else the request's channel
    on_transition: list[Hook]  # monitoring opens its window here (filled in as listeners register)

    @property
    def name(self) -> str:
        return NAME

    def title(self, params: Mapping[str, Any]) -> str:
        return f"Advance cutover: {params['from_name']} → {params['to_name']}"

    def effect(self, params: Mapping[str, Any]) -> str:
        total = len(self.service.runbook.stages)
        return (
            f"the cutover moves from stage {params['from_index']} *{safe(str(params['from_name']), 100)}* to "
            f"stage {int(params['from_index']) + 1} of {total}, *{safe(str(params['to_name']), 100)}*. When "
            f"approved the bot checks every precondition again, records the stage once and posts a rollout "
            f"announcement in <#{self._announce_channel(params)}>."
        )

    def execute(self, ctx: ExecutionContext) -> Outcome:
        # A resumed execution whose first process entered the stage, then stopped before recording it.
        if any(e.approval_id == ctx.approval_id for e in self.service.store.history()):
            return Outcome(
                True,
                f":rocket: *Advanced* to *{safe(str(ctx.params['to_name']), 100)}* (recorded "
                "before the bot process handling this approval stopped).",
                "applied",
            )
        try:
            facts = self.service.facts(ctx.request_id, source="cutover advance")
        except OpsbotError as exc:
            return Outcome(False, f"*Not advanced.* {exc.operator_text()}", "failed", detail=str(exc))
        if facts.current.id != ctx.params["from_stage"]:
            return Outcome(
                False,
                f":information_source: Not advanced: the cutover is already at *{safe(facts.current.name, 100)}*.",
                "not_applied",
                detail="stage moved",
            )
        missing = blockers(facts)
        target = next_stage(facts.runbook, facts.current)
        if missing and (note := self.service.rollback_blocker(facts.evidence.version)) is not None:
            missing = [note, *missing]
        if missing or target is None:
            text = missing_text(
                facts,
                missing,
                heading="Not advanced: the preconditions no longer hold",
                people=self.people,
            )
            return Outcome(False, text, "not_applied", detail="; ".join(missing)[:2000])
        entered = self.service.enter(
            facts,
            target,
            reason=str(ctx.params["reason"]),
            requested_by=ctx.requester,
            approved_by=ctx.approver,
            approval_id=ctx.approval_id,
            request_id=ctx.request_id,
            channel=str(ctx.params["channel"]),
        )
        if entered is None:
            return Outcome(
                False,
                ":information_source: Not advanced: the cutover moved meanwhile.",
                "not_applied",
                detail="stage moved",
            )
        where = self._announce(ctx, facts, target)
        notify(
            self.on_transition,
            CutoverTransition(
                seq=entered.seq,
                from_stage=facts.current.id,
                to_stage=target.id,
                entered_at=entered.entered_at,
                version=entered.version,
                requested_by=ctx.requester,
                approved_by=ctx.approver,
                approval_id=ctx.approval_id,
                request_id=ctx.request_id,
                channel=str(ctx.params["channel"]),
            ),
        )
        index = facts.runbook.stage_index(target.id) + 1
        return Outcome(
            True,
            f":rocket: *Advanced* to stage {index} of {len(facts.runbook.stages)}, *{safe(target.name, 100)}*. {where}",
            "applied",
        )

    def _announce_channel(self, params: Mapping[str, Any]) -> str:
        return self.announce_channel or str(params["channel"])

    def _announce(self, ctx: ExecutionContext, facts: AdvanceFacts, target: Stage) -> str:
        channel = self._announce_channel(ctx.params)
        total = len(facts.runbook.stages)
        index = facts.runbook.stage_index(target.id) + 1
        gate = facts.last_go.id if facts.last_go else "none"
        text = (
            f":mega: *Rollout announcement:* the cutover moved from *{safe(facts.current.name, 100)}* to "
            f"*{safe(target.name, 100)}* (stage {index} of {total}).\n"
            f"Requested by <@{ctx.requester}>, approved by <@{ctx.approver}>. Reason: "
            f"{safe(str(ctx.params['reason']), 500)}\n"
            f"Backend `{safe(facts.evidence.version or 'unknown', 64)}`, release gate `{gate}` GO. "
            f"Request id `{ctx.request_id}`."
        )
        # Queued, not sent: the stage is entered and the approval recorded without waiting for Slack.
        try:
            self.outbox.enqueue([Note(f"cutover:{ctx.approval_id}:announce", "post", channel, text)])
        except StoreUnavailable as exc:
            log.error("rollout announcement not queued for %s: %s", channel, exc)
            return f":warning: The rollout announcement could not be queued for <#{channel}>; announce it by hand."
        return f"Rollout announcement sent to <#{channel}>."
