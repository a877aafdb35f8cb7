"""The cutover's facts gathered from the backend and the store, and the one write: entering a stage."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from bot.audit.log import Actor, AuditLog, Entry
from bot.cutover.engine import CheckStatus, RolledBack, StageEntry, rolled_back_under, stage_statuses
from bot.cutover.history import deploy_facts, soak_of
from bot.cutover.rules import AdvanceFacts, next_stage
from bot.cutover.store import CutoverStore, Transition
from bot.cutover.words import rollback_warning
from bot.gate.service import GateService
from bot.rollback.freeze import FreezeStore
from bot.rollback.store import RollbackStore
from bot.runbook.model import Runbook, Stage
from bot.storage.db import as_utc
from bot.text import when


@dataclass(frozen=True)
class Position:
    stage: Stage
    entry: StageEntry | None  # None: still in the first stage, never advanced
    index: int  # 0-based


def checklist_json(statuses: list[CheckStatus]) -> str:
    return json.dumps(
        [{"id": s.item.id, "state": s.state.value, "detail": s.detail, "evidence": s.evidence} for s in statuses]
    )


class CutoverService:
    def __init__(
        self,
        gate: GateService,
        *,
        engine: Engine,
        audit: AuditLog,
        runbook: Runbook,
        freeze: FreezeStore,
        clock: Callable[[], datetime],
        soak_override_s: float | None = None,
    ) -> None:
        self.gate = gate
        self.engine, self.audit, self.runbook, self.freeze = engine, audit, runbook, freeze
        self.clock = clock
        self.soak_override_s = soak_override_s  # OPSBOT_SOAK_SECONDS (rehearsals): every soak replaced
        self.store = CutoverStore(engine, audit)

    def position(self) -> Position:
        runbook = self.runbook
        entry = self.store.current()
        stage = runbook.stage(entry.stage_id) if entry else runbook.stages[0]
        return Position(stage, entry, runbook.stage_index(stage.id))

    def rolled_back(self, position: Position, deployed: str | None) -> RolledBack | None:
        """The last completed rollback, if it took away the release the current stage was entered on."""
        row = RollbackStore(self.engine, self.audit).last_completed()
        if row is None or row.closed_at is None:
            return None
        rolled = RolledBack(row.id, row.deployed, row.target, as_utc(row.closed_at))
        return rolled if rolled_back_under(position.entry, rolled, deployed) else None

    def rollback_warning(self, position: Position, deployed: str | None) -> str | None:
        """The warning line (mrkdwn, safe) when the current stage was earned on a rolled-back release."""
        rolled = self.rolled_back(position, deployed)
        if rolled is None or position.entry is None:
            return None
        return rollback_warning(rolled, position.entry, position.index + 1)

    def rollback_blocker(self, deployed: str | None) -> str | None:
        """Plain words for a refusal: the stage was earned on a release a rollback took away (so the GO and
        the stage's checks must be for what runs now). Not a blocker of its own: it explains the others."""
        position = self.position()
        rolled = self.rolled_back(position, deployed)
        if rolled is None:
            return None
        entered = (position.entry.version if position.entry else None) or "unknown"
        return (
            f"rollback {rolled.id} took production off {rolled.from_version[:12]} at {when(rolled.closed_at)}, "
            f"after this stage was entered on {entered[:12]}: the checks that brought the cutover here were "
            f"passed on a release that is gone; a GO from /gate for the deployed version ({deployed or 'unknown'}) "
            "and this stage's checks for it are needed"
        )

    def freeze_text(self) -> str | None:
        freeze = self.freeze.active()
        if freeze is None:
            return None
        return f"{freeze.reason}; frozen by {freeze.owner} at {when(freeze.frozen_at)}"

    def facts(self, request_id: str, *, source: str) -> AdvanceFacts:
        """Everything `/cutover advance` is decided on, read now (one health call, a few store reads)."""
        version, problem = self.gate.deployed_version(request_id, source=source)
        evidence = self.gate.evidence(version, problem)
        runbook, position = self.runbook, self.position()
        current = position.stage
        statuses = stage_statuses(runbook, current, evidence)
        target = next_stage(runbook, current)
        deploy = None
        if target is not None and target.entry.backend_deploy_since:
            since_entry = self.store.entered(target.entry.backend_deploy_since)
            deploy = deploy_facts(self.engine, self.gate.store, since_entry)
        return AdvanceFacts(
            runbook,
            current,
            statuses,
            evidence,
            self.gate.store.last_go(),
            self.freeze_text(),
            deploy,
            soak_of(self.engine, position.entry, evidence.now),
            self.soak_override_s,
        )

    def enter(
        self,
        facts: AdvanceFacts,
        target: Stage,
        *,
        reason: str,
        requested_by: str,
        approved_by: str,
        approval_id: str,
        request_id: str,
        channel: str,
    ) -> StageEntry | None:
        """Record `target` as entered, once; None if the cutover is no longer at `facts.current`."""
        change = Transition(
            from_stage=facts.current.id,
            to_stage=target.id,
            at=self.clock(),
            version=facts.evidence.version,
            reason=reason,
            requested_by=requested_by,
            approved_by=approved_by,
            approval_id=approval_id,
            gate_id=facts.last_go.id if facts.last_go else None,
            evidence=checklist_json(list(facts.statuses)),
        )
        params = {
            "from_stage": change.from_stage,
            "to_stage": change.to_stage,
            "version": change.version,
            "gate_id": change.gate_id,
            "reason": reason,
        }
        entry = Entry(
            Actor("", approved_by), "cutover.stage_entered", "applied", params, request_id, approval_id, channel
        )
        return self.store.enter(change, first_stage=self.runbook.stages[0].id, entry=entry)
