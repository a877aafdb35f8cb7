"""When `/cutover advance` is allowed: a pure function from stored facts to the list of what is missing.

Empty list = allowed. Checked when the request is made and again when it is approved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.cutover_engine import (
    CONTRACT_PROBES,
    CheckStatus,
    EvaluationView,
    Evidence,
    StageEntry,
    VersionChange,
    age_text,
    complete,
)
from bot.gate_engine import GateVerdict
from bot.probes.result import Verdict
from bot.runbook import Runbook, Stage


@dataclass(frozen=True)
class AdvanceFacts:
    runbook: Runbook
    current: Stage
    statuses: Sequence[CheckStatus]  # the current stage's checks
    evidence: Evidence
    last_go: EvaluationView | None  # the most recent GO evaluation, whatever its version
    freeze: str | None = None  # the reason of an open cutover freeze (a rollback in progress)
    since_entry: StageEntry | None = None  # when the stage named by `requires_backend_deploy_since` began
    deploys: Sequence[VersionChange] = ()  # backend version changes observed since then, oldest first
    after_deploy: Sequence[EvaluationView] = ()  # gate evaluations since the first of them, newest first


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
    missing = [f"stage check `{s.item.id}` is {s.state.value}: {s.detail}"
               for s in facts.statuses if not complete([s])]
    missing += _gate_blockers(facts)
    if target.requires_backend_deploy_since is not None:
        missing += _deploy_blockers(facts, target)
    return missing


def _gate_blockers(facts: AdvanceFacts) -> list[str]:
    ev, go = facts.evidence, facts.last_go
    if ev.version is None:
        return [f"deployed backend version unknown ({ev.version_problem or 'no answer'}), so the last GO "
                "cannot be matched to it"]
    if go is None:
        return ["no GO from /gate yet: run /gate"]
    if go.version != ev.version:
        return [f"the last GO ({go.id}) was for version {go.version or 'unknown'}, but {ev.version} is "
                "deployed: run /gate"]
    age = (ev.now - go.started_at).total_seconds()
    if age > ev.max_age.total_seconds():
        limit = age_text(ev.max_age.total_seconds())
        return [f"the last GO ({go.id}) is {age_text(age)} old, limit {limit}: run /gate"]
    latest = ev.latest
    if latest is not None and latest.id != go.id and latest.started_at > go.started_at \
            and latest.verdict is GateVerdict.NO_GO:
        return [f"/gate {latest.id} was NO-GO after the last GO ({go.id}): fix what it found and run /gate"]
    return []


def _deploy_blockers(facts: AdvanceFacts, target: Stage) -> list[str]:
    since = facts.runbook.stage(target.requires_backend_deploy_since or "")
    entry = facts.since_entry
    if entry is None:
        return [f"{since.name} has not begun, so no backend deploy since it can be counted"]
    if not facts.deploys:
        began = entry.entered_at.strftime("%Y-%m-%d %H:%M UTC")
        return [f"no backend deploy observed since {since.name} began ({began}, version "
                f"{entry.version or 'unknown'}): {target.name} needs the contracts to stay stable through "
                "at least one backend deploy cycle; deploy the backend, then run /gate"]
    first = facts.deploys[0]
    if not facts.after_deploy:
        return [f"no /gate has checked the contracts since the backend deploy {first.previous_version} → "
                f"{first.version}: run /gate"]
    latest = facts.after_deploy[0]
    broken = [o.item_id for o in latest.outcomes
              if o.probe in CONTRACT_PROBES and o.automatic.verdict is not Verdict.PASS]
    if broken or not any(o.probe in CONTRACT_PROBES for o in latest.outcomes):
        return [f"contract checks are not passing since the backend deploy ({latest.id}: "
                f"{', '.join(broken) or 'not checked'})"]
    return []
