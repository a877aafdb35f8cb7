"""A stage's entry conditions (runbook `entry`) beyond the GO and the stage being left: no open
hard-trigger alert, the soak, the manual mobile smoke and the stability rule. Pure functions: each
returns what is missing, one plain line per fact, so a refusal lists everything at once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.cutover.engine import CONTRACT_PROBES, StageEntry, same_version
from bot.gate.composite import EvaluationView, Evidence, VersionChange, age_text
from bot.gate.engine import attested
from bot.gate.result import Verdict
from bot.runbook.model import Runbook, Stage
from bot.text import plural, when

SHOWN_ALERTS = 5  # more than this many open alerts are counted, not listed


@dataclass(frozen=True)
class Soak:
    """When the stage being left began, and the end of its latest hard-trigger alert (None: none)."""

    began: datetime | None
    alert_ended: datetime | None = None
    alert: str = ""  # which alert, in words


@dataclass(frozen=True)
class RollbackMark:
    """A rollback as the stability rule sees it: the version it put back, and when it started."""

    id: str
    target: str
    started_at: datetime


def rollback_of(change: VersionChange, rollbacks: Sequence[RollbackMark]) -> RollbackMark | None:
    """The rollback that explains `change`: one started before it was seen, whose target it is."""
    return next(
        (r for r in rollbacks if r.started_at <= change.observed_at and same_version(r.target, change.version)), None
    )


def real_deploys(
    changes: Sequence[VersionChange], rollbacks: Sequence[RollbackMark], first_seen: Mapping[str, datetime]
) -> list[VersionChange]:
    """The changes that are new backend versions deployed: not a rollback, not a return to a version seen
    before the change."""
    return [
        c
        for c in changes
        if rollback_of(c, rollbacks) is None and first_seen.get(c.version, c.observed_at) >= c.observed_at
    ]


def soak_needed(target: Stage, override_s: float | None) -> timedelta:
    return timedelta(seconds=override_s) if override_s is not None else target.entry.soak


def soak_blockers(current: Stage, target: Stage, soak: Soak, now: datetime, override_s: float | None) -> list[str]:
    need = soak_needed(target, override_s)
    if need <= timedelta(0):
        return []
    if soak.began is None:
        return [
            f"no record of when {current.name} began, so its soak of {age_text(need.total_seconds())} "
            "cannot be counted: run /gate"
        ]
    since, cause = soak.began, "it began"
    if soak.alert_ended is not None and soak.alert_ended > since:
        since, cause = soak.alert_ended, f"{soak.alert or 'a hard-trigger alert'} was last seen"
    clean = now - since
    if clean >= need:
        return []
    return [
        f"{current.name} has been clean for {age_text(max(clean.total_seconds(), 0))} (since {when(since)}, "
        f"when {cause}); entering {target.name} needs {age_text(need.total_seconds())}: wait until "
        f"{when(since + need)}"
    ]


def alert_blockers(alerts: Sequence[str]) -> list[str]:
    if not alerts:
        return []
    head = f"{plural(len(alerts), 'hard-trigger alert')} open (a rollback trigger, not a stage to move on from): "
    shown = "; ".join(alerts[:SHOWN_ALERTS])
    more = f"; and {len(alerts) - SHOWN_ALERTS} more" if len(alerts) > SHOWN_ALERTS else ""
    return [head + shown + more]


def smoke_blockers(runbook: Runbook, ev: Evidence) -> list[str]:
    if ev.version is None:
        return [
            "deployed backend version unknown, so the manual mobile smoke (attested per version) cannot be "
            "matched to it"
        ]
    missing = [
        m.id
        for m in runbook.smoke.manual
        if attested(m, ev.attestations.get(m.id), ev.version).verdict is not Verdict.PASS
    ]
    if not missing:
        return []
    return [
        f"manual mobile smoke not attested for {ev.version[:7]}: {len(missing)} of "
        f"{len(runbook.smoke.manual)} steps missing ({', '.join(f'`{m}`' for m in missing)}); "
        "`/gate attest <step> <evidence>` each"
    ]


@dataclass(frozen=True)
class DeployFacts:
    since_entry: StageEntry | None  # when the stage named by `entry.backend_deploy_since` began
    changes: Sequence[VersionChange] = ()  # every backend version change seen since then, oldest first
    deploys: Sequence[VersionChange] = ()  # of those, the real deploys (bot.cutover.entry.real_deploys)
    rollbacks: Sequence[RollbackMark] = ()
    after_deploy: Sequence[EvaluationView] = ()  # gate evaluations since the first real deploy, newest first


def deploy_blockers(runbook: Runbook, target: Stage, facts: DeployFacts) -> list[str]:
    since = runbook.stage(target.entry.backend_deploy_since or "")
    entry = facts.since_entry
    if entry is None:
        return [f"{since.name} has not begun, so no backend deploy since it can be counted"]
    if not facts.deploys:
        began = when(entry.entered_at)
        rolled = [
            f"{c.previous_version[:7]} → {c.version[:7]} was rollback {r.id}"
            for c in facts.changes
            if (r := rollback_of(c, facts.rollbacks)) is not None
        ]
        note = f" ({'; '.join(rolled)}: a rollback is not a deploy cycle)" if rolled else ""
        return [
            f"no new backend version deployed since {since.name} began ({began}, version "
            f"{(entry.version or 'unknown')[:7]}){note}: {target.name} needs the contracts to stay stable "
            "through at least one backend deploy cycle; deploy the backend, then run /gate"
        ]
    first = facts.deploys[0]
    if not facts.after_deploy:
        return [
            f"no /gate has checked the contracts since the backend deploy {first.previous_version[:7]} → "
            f"{first.version[:7]}: run /gate"
        ]
    latest = facts.after_deploy[0]
    broken = [
        o.item_id for o in latest.outcomes if o.probe in CONTRACT_PROBES and o.automatic.verdict is not Verdict.PASS
    ]
    if broken or not any(o.probe in CONTRACT_PROBES for o in latest.outcomes):
        return [
            f"contract checks are not passing since the backend deploy ({latest.id}: "
            f"{', '.join(broken) or 'not checked'})"
        ]
    return []


def entry_summary(runbook: Runbook, target: Stage, override_s: float | None) -> str:
    """What entering `target` needs, in a line: `a GO for the deployed version, … clean for 1 h`."""
    index = runbook.stage_index(target.id)
    left = runbook.stages[index - 1].name if index > 0 else "the previous stage"
    rule, need = target.entry, soak_needed(target, override_s)
    parts = ["a GO for the deployed version"] if rule.go else []
    parts += [f"every check of {left}"] if rule.stage_checks else []
    parts += ["no open hard-trigger alert"] if rule.no_hard_trigger_alerts else []
    parts += [f"{left} clean for {age_text(need.total_seconds())}"] if need > timedelta(0) else []
    parts += ["the manual mobile smoke attested for the deployed version"] if rule.manual_smoke else []
    if rule.backend_deploy_since is not None:
        parts.append(
            f"a new backend version deployed since {runbook.stage(rule.backend_deploy_since).name} "
            "began (a rollback does not count), contracts passing after it"
        )
    return ", ".join(parts) or "nothing"
