"""When `/cutover advance` is allowed: a pure function from stored facts to the list of what is missing.

Empty list = allowed. Checked when the request is made and again when it is approved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.cutover.engine import CheckStatus, complete
from bot.cutover.entry import DeployFacts, Soak, alert_blockers, deploy_blockers, smoke_blockers, soak_blockers
from bot.gate.composite import EvaluationView, Evidence, age_text
from bot.gate.engine import GateVerdict
from bot.runbook.model import Runbook, Stage


@dataclass(frozen=True)
class AdvanceFacts:
    runbook: Runbook
    current: Stage
    statuses: Sequence[CheckStatus]  # the current stage's checks
    evidence: Evidence
    last_go: EvaluationView | None  # the most recent GO evaluation, whatever its version
    freeze: str | None = None  # the reason of an open cutover freeze (a rollback in progress)
    deploy: DeployFacts | None = None  # for a target with `entry.backend_deploy_since`
    soak: Soak | None = None  # None: not gathered (then the soak counts as not begun)
    soak_override_s: float | None = None  # OPSBOT_SOAK_SECONDS: every soak replaced (rehearsals)


def next_stage(runbook: Runbook, current: Stage) -> Stage | None:
    index = runbook.stage_index(current.id)
    return runbook.stages[index + 1] if index + 1 < len(runbook.stages) else None


def blockers(facts: AdvanceFacts) -> list[str]:
    """What stops the advance, one plain line each (already safe for mrkdwn apart from ids)."""
    if facts.freeze is not None:
        return [f"rollback in progress: the cutover is frozen ({facts.freeze}) until the rollback is closed"]
    target = next_stage(facts.runbook, facts.current)
    if target is None:
        return [f"the cutover is already at its last stage, {facts.current.name}"]
    return entry_blockers(facts, target)


def entry_blockers(facts: AdvanceFacts, target: Stage) -> list[str]:
    """Every entry condition of `target` (runbook `entry`) that does not hold, in runbook order."""
    rule, ev = target.entry, facts.evidence
    missing = (
        [f"stage check `{s.item.id}` is {s.state.value}: {s.detail}" for s in facts.statuses if not complete([s])]
        if rule.stage_checks
        else []
    )
    missing += _gate_blockers(facts) if rule.go else []
    missing += alert_blockers(ev.alerts) if rule.no_hard_trigger_alerts else []
    missing += soak_blockers(facts.current, target, facts.soak or Soak(None), ev.now, facts.soak_override_s)
    missing += smoke_blockers(facts.runbook, ev) if rule.manual_smoke else []
    if rule.backend_deploy_since is not None:
        missing += deploy_blockers(facts.runbook, target, facts.deploy or DeployFacts(None))
    return missing


def _gate_blockers(facts: AdvanceFacts) -> list[str]:
    ev, go = facts.evidence, facts.last_go
    if ev.version is None:
        return [
            f"deployed backend version unknown ({ev.version_problem or 'no answer'}), so the last GO "
            "cannot be matched to it"
        ]
    if go is None:
        return ["no GO from /gate yet: run /gate"]
    if go.version != ev.version:
        return [
            f"the last GO ({go.id}) was for version {go.version or 'unknown'}, but {ev.version} is deployed: run /gate"
        ]
    age = (ev.now - go.started_at).total_seconds()
    if age > ev.max_age.total_seconds():
        limit = age_text(ev.max_age.total_seconds())
        return [f"the last GO ({go.id}) is {age_text(age)} old, limit {limit}: run /gate"]
    latest = ev.latest
    if (
        latest is not None
        and latest.id != go.id
        and latest.started_at > go.started_at
        and latest.verdict is GateVerdict.NO_GO
    ):
        return [f"/gate {latest.id} was NO-GO after the last GO ({go.id}): fix what it found and run /gate"]
    return []
