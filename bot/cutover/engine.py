"""The staged cutover (runbook "Staged cutover"), as pure functions over stored evidence.

A stage check is in one of four states: passed (with the evidence), attested (by whom), pending
(what is missing) or failed. Automatic checks take their result from the latest `/gate` run for the
deployed version, as long as it is not older than the configured age; attested checks need an
attestation for the deployed version. The composite probes (`go-gate`, `smoke-checklist`,
`monitoring-clean`) are evaluated here too, so `/cutover` and `/gate` agree on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.gate.composite import Evidence, composite, fresh_gate
from bot.gate.engine import attested, with_attestation
from bot.gate.result import ProbeResult, Verdict, unknown
from bot.runbook.model import COMPOSITE_PROBES, CheckItem, Runbook, Stage

# The backend's contracts with web and mobile: trading-control and feature flags, and the 401 rule.
CONTRACT_PROBES = frozenset({"control-contract", "backend-rejects-unauthorized"})


class CheckState(StrEnum):
    PASSED = "passed"
    ATTESTED = "attested"
    PENDING = "pending"
    FAILED = "failed"


@dataclass(frozen=True)
class StageEntry:
    seq: int
    stage_id: str
    entered_at: datetime
    version: str | None
    requested_by: str = ""
    approved_by: str = ""


@dataclass(frozen=True)
class CheckStatus:
    item: CheckItem
    state: CheckState
    detail: str  # plain words: the reason, or who attested
    evidence: str = ""


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
