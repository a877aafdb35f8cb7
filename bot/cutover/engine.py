"""The staged cutover (runbook "Staged cutover"), as pure functions over stored evidence.

A stage check is in one of four states: passed (with the evidence), attested (by whom), pending
(what is missing) or failed. Automatic checks take their result from the latest `/gate` run for the
deployed version, as long as it is not older than the configured age; attested checks need an
attestation for the deployed version. The composite probes (`go-gate`, `smoke-checklist`,
`monitoring-clean`) are evaluated here too, so `/cutover` and `/gate` agree on them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot.gate.engine import AttestationView, GateVerdict, ItemOutcome, attested, with_attestation
from bot.gate.result import ProbeResult, Verdict, failed, passed, unknown
from bot.runbook.model import COMPOSITE_PROBES, CheckItem, Runbook, Stage

# The backend's contracts with web and mobile: trading-control and feature flags, and the 401 rule.
CONTRACT_PROBES = frozenset({"control-contract", "backend-rejects-unauthorized"})


class CheckState(StrEnum):
    PASSED = "passed"
    ATTESTED = "attested"
    PENDING = "pending"
    FAILED = "failed"


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
class StageEntry:
    seq: int
    stage_id: str
    entered_at: datetime
    version: str | None
    requested_by: str = ""
    approved_by: str = ""


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


@dataclass(frozen=True)
class CheckStatus:
    item: CheckItem
    state: CheckState
    detail: str  # plain words: the reason, or who attested
    evidence: str = ""


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


def check_status(runbook: Runbook, item: CheckItem, ev: Evidence) -> CheckStatus:
    if item.kind == "attested":
        result = attested(item, ev.attestations.get(item.id), ev.version)
        state = CheckState.ATTESTED if result.verdict is Verdict.PASS else CheckState.PENDING
        return CheckStatus(item, state, result.reason, result.evidence)
    probe = item.probe or ""
    result = composite(runbook, probe, ev) if probe in COMPOSITE_PROBES else _from_gate(item, ev)
    if item.attestation is not None:  # the probe's part from the gate, the person's part for this version
        result = with_attestation(item, result, attested(item, ev.attestations.get(item.id), ev.version))
    state = {Verdict.PASS: CheckState.PASSED, Verdict.FAIL: CheckState.FAILED, Verdict.UNKNOWN: CheckState.PENDING}[
        result.verdict
    ]
    return CheckStatus(item, state, result.reason, result.evidence)


def _from_gate(item: CheckItem, ev: Evidence) -> ProbeResult:
    gate, why = fresh_gate(ev)
    if gate is None:
        return why or unknown("no gate")
    outcome = gate.outcome_for(item.probe or "", item.params)
    if outcome is None:
        return unknown(f"/gate {gate.id} did not run probe {item.probe}")
    r = outcome.automatic  # the probe alone: an attestation another item needs is not this check's
    return ProbeResult(r.verdict, f"{r.reason} (/gate {gate.id})", r.evidence, r.elapsed_ms)


def stage_statuses(runbook: Runbook, stage: Stage, ev: Evidence) -> list[CheckStatus]:
    return [check_status(runbook, item, ev) for item in stage.checks]


def complete(statuses: Sequence[CheckStatus]) -> bool:
    return all(s.state in (CheckState.PASSED, CheckState.ATTESTED) for s in statuses)


@dataclass(frozen=True)
class RolledBack:
    """A completed rollback as the cutover sees it: what it took production off, and when it closed."""

    id: str
    from_version: str  # the release it took production off (`GET /api/health` when it was requested)
    to_version: str
    closed_at: datetime


def same_version(a: str | None, b: str | None) -> bool:
    """Equal, or one an abbreviation (7+ characters) of the other, as `/gate` compares versions."""
    x, y = (a or "").strip().lower(), (b or "").strip().lower()
    return bool(x and y) and (x == y or (min(len(x), len(y)) >= 7 and (x.startswith(y) or y.startswith(x))))


def rolled_back_under(entry: StageEntry | None, rollback: RolledBack | None, deployed: str | None) -> bool:
    """True when the current stage was earned on a release a later rollback took away: the rollback
    closed after the stage was entered and production does not run that release now (an unknown
    version on either side counts as "not the same")."""
    if entry is None or rollback is None or rollback.closed_at <= entry.entered_at:
        return False
    return not same_version(entry.version, deployed)
