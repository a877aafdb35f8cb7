"""The composite checks (`go-gate`, `smoke-checklist`, `monitoring-clean`) judged on stored evidence:
the latest /gate run for the deployed version, the attestations, the open hard-trigger alerts. `/gate`
and `/cutover` both evaluate them here, so they agree."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.gate.engine import AttestationView, GateVerdict, ItemOutcome, attested
from bot.gate.result import ProbeResult, Verdict, failed, passed, unknown
from bot.runbook.model import Runbook


@dataclass(frozen=True)
class EvaluationView:
    id: str
    started_at: datetime
    version: str | None
    verdict: GateVerdict
    requested_by: str
    request_id: str
    outcomes: tuple[ItemOutcome, ...]

    def outcome_for(self, probe: str, params: Mapping[str, object]) -> ItemOutcome | None:
        return next((o for o in self.outcomes if o.probe == probe and dict(o.params) == dict(params)), None)


@dataclass(frozen=True)
class VersionChange:
    version: str
    previous_version: str
    observed_at: datetime


@dataclass(frozen=True)
class Evidence:
    """What the checks are judged on; `version` None means the backend did not say (`version_problem`)."""

    version: str | None
    latest: EvaluationView | None  # the latest gate evaluation for `version`
    attestations: Mapping[str, AttestationView]  # for `version`, by check id
    now: datetime
    max_age: timedelta
    version_problem: str = ""
    alerts: tuple[str, ...] = ()  # open monitoring breaches with a hard trigger, in words


def age_text(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def fresh_gate(ev: Evidence) -> tuple[EvaluationView | None, ProbeResult | None]:
    """The latest evaluation for the deployed version if usable, else why not (UNKNOWN)."""
    if ev.version is None:
        return None, unknown(f"deployed backend version unknown ({ev.version_problem or 'no answer'})")
    if ev.latest is None:
        return None, unknown(f"no /gate run for version {ev.version} yet: run /gate")
    age = (ev.now - ev.latest.started_at).total_seconds()
    if age > ev.max_age.total_seconds():
        return None, unknown(
            f"the last /gate for {ev.version} ({ev.latest.id}) is {age_text(age)} old, "
            f"limit {age_text(ev.max_age.total_seconds())}: run /gate"
        )
    return ev.latest, None


def go_gate(ev: Evidence) -> ProbeResult:
    gate, why = fresh_gate(ev)
    if gate is None:
        return why or unknown("no gate")
    if gate.verdict is GateVerdict.GO:
        return passed(f"/gate {gate.id} was GO for version {gate.version}", f"x-request-id {gate.request_id}")
    open_ = sum(1 for o in gate.outcomes if o.verdict is not Verdict.PASS)
    return failed(
        f"/gate {gate.id} was NO-GO for version {gate.version} ({open_} of {len(gate.outcomes)} items not passing)",
        f"x-request-id {gate.request_id}",
    )


def smoke_checklist(runbook: Runbook, ev: Evidence) -> ProbeResult:
    """`pnpm smoke:release` passed in the latest gate, and the five manual mobile steps are attested."""
    gate, why = fresh_gate(ev)
    if gate is None:
        return why or unknown("no gate")
    auto = runbook.smoke.automated[0]
    outcome = gate.outcome_for(auto.probe or "", auto.params) if auto.probe else None
    found = outcome.automatic if outcome else None
    if found is None or found.verdict is not Verdict.PASS:
        make = failed if found is not None and found.verdict is Verdict.FAIL else unknown
        return make(f"automated smoke not passing in /gate {gate.id}: {found.reason if found else 'not checked'}")
    missing = [
        m.id
        for m in runbook.smoke.manual
        if attested(m, ev.attestations.get(m.id), ev.version).verdict is not Verdict.PASS
    ]
    if missing:
        return unknown(f"manual mobile smoke not attested for {ev.version}: {', '.join(missing)}")
    return passed(
        f"automated smoke passed (/gate {gate.id}) and all {len(runbook.smoke.manual)} manual mobile steps attested",
        found.evidence,
    )


def monitoring_clean(ev: Evidence) -> ProbeResult:
    if ev.alerts:
        noun = "monitoring alert" if len(ev.alerts) == 1 else "monitoring alerts"
        return failed(f"{len(ev.alerts)} {noun} open: {'; '.join(ev.alerts[:3])}")
    return passed("no monitoring alerts recorded")


def composite(runbook: Runbook, probe: str, ev: Evidence) -> ProbeResult:
    if probe == "go-gate":
        return go_gate(ev)
    if probe == "smoke-checklist":
        return smoke_checklist(runbook, ev)
    if probe == "monitoring-clean":
        return monitoring_clean(ev)
    raise KeyError(probe)
