"""The release go/no-go rules (runbook "Release go/no-go"), as pure functions over probe results.

Orientation: every probe result reads "PASS = good". For a go item PASS means the condition is
true; for a no-go item PASS means the no-go condition does NOT hold (FAIL: it holds). So the rule
is one line: GO only when every go item and every no-go item is PASS. UNKNOWN is never GO, and an
item without a result is UNKNOWN.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.gate.result import ProbeResult, Verdict, passed, unknown
from bot.runbook.model import CheckItem, Runbook


class GateVerdict(StrEnum):
    GO = "go"
    NO_GO = "no_go"


SECTIONS = ("go", "no_go")


@dataclass(frozen=True)
class AttestationView:
    check_id: str
    version: str
    evidence: str
    attested_by: str
    attested_at: datetime


@dataclass(frozen=True)
class ItemOutcome:
    """One go or no-go item after an evaluation, as stored and shown."""

    item_id: str
    section: str  # "go" | "no_go"
    text: str
    probe: str | None  # None for attested items
    params: Mapping[str, Any]
    result: ProbeResult  # the item's result (for an item with an `attestation`: probe AND attestation)
    probe_result: ProbeResult | None = None  # the probe's own part, when the item also needs an attestation

    @property
    def verdict(self) -> Verdict:
        return self.result.verdict

    @property
    def automatic(self) -> ProbeResult:
        """What the probe alone found: what stage checks and the contract rule judge on."""
        return self.probe_result or self.result

    def to_json(self) -> dict[str, Any]:
        doc = {
            "item": self.item_id,
            "section": self.section,
            "text": self.text,
            "probe": self.probe,
            "params": dict(self.params),
            **_result_json(self.result),
        }
        if self.probe_result is not None:
            doc["probe_result"] = _result_json(self.probe_result)
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ItemOutcome:
        part = doc.get("probe_result")
        return cls(
            str(doc["item"]),
            str(doc["section"]),
            str(doc.get("text", "")),
            doc.get("probe"),
            dict(doc.get("params") or {}),
            _result_of(doc),
            _result_of(part) if part else None,
        )


def _result_json(r: ProbeResult) -> dict[str, Any]:
    return {
        "verdict": r.verdict.value,
        "reason": r.reason,
        "evidence": r.evidence,
        "elapsed_ms": round(r.elapsed_ms, 1),
    }


def _result_of(doc: Mapping[str, Any]) -> ProbeResult:
    return ProbeResult(
        Verdict(doc["verdict"]),
        str(doc.get("reason", "")),
        str(doc.get("evidence", "")),
        float(doc.get("elapsed_ms", 0.0)),
    )


def gate_items(runbook: Runbook) -> list[tuple[str, CheckItem]]:
    """The 10 go and 3 no-go items, in runbook order."""
    return [("go", item) for item in runbook.go] + [("no_go", item) for item in runbook.no_go]


def decide(runbook: Runbook, results: Mapping[str, ProbeResult]) -> GateVerdict:
    """GO only when every go and no-go item of the runbook has a PASS result."""
    every = all(results.get(item.id, _MISSING).verdict is Verdict.PASS for _, item in gate_items(runbook))
    return GateVerdict.GO if every else GateVerdict.NO_GO


_MISSING = unknown("no result")


def blocking(outcomes: Iterable[ItemOutcome]) -> list[ItemOutcome]:
    """The items that make a verdict NO-GO (every one that is not PASS)."""
    return [o for o in outcomes if o.verdict is not Verdict.PASS]


def holds_text(outcome: ItemOutcome) -> str:
    """What a result means for its item, in the runbook's words (no-go items read the other way)."""
    if outcome.section == "go":
        return {Verdict.PASS: "true", Verdict.FAIL: "false", Verdict.UNKNOWN: "unknown"}[outcome.verdict]
    return {Verdict.PASS: "does not hold", Verdict.FAIL: "HOLDS", Verdict.UNKNOWN: "unknown"}[outcome.verdict]


def attested(item: CheckItem, attestation: AttestationView | None, version: str | None) -> ProbeResult:
    """An attested item is PASS only with an attestation for the deployed version."""
    if version is None:
        return unknown("deployed backend version unknown; attestations are per version")
    if attestation is None or attestation.version != version:
        return unknown(f"not attested for version {version}: an admin runs `/gate attest {item.id} <evidence>`")
    when = attestation.attested_at.strftime("%Y-%m-%d %H:%M UTC")
    return passed(f"attested by <@{attestation.attested_by}> at {when}", attestation.evidence)


def attestation_key(item_id: str) -> str:
    """The runner's key for the attestation part of an item that needs one besides its probe."""
    return f"{item_id}@attestation"


def with_attestation(item: CheckItem, probe: ProbeResult, person: ProbeResult) -> ProbeResult:
    """An automatic item that also needs a person's word: PASS only when both pass; a failing probe is FAIL
    whatever was attested; otherwise UNKNOWN. The reason and evidence name both parts."""
    said = person.reason  # "attested by <@U> at …", "not attested for version …: an admin runs …", "timed out …"
    if person.verdict is not Verdict.PASS:
        said = "NOT" + said[3:] if said.startswith("not attested") else f"NOT attested: {said}"
    said = f"{item.attestation or 'the manual part'} {said}"
    verdict = probe.verdict if probe.verdict is not Verdict.PASS else person.verdict
    evidence = "; ".join(p for p in (probe.evidence, f"attested: {person.evidence}" if person.evidence else "") if p)
    return ProbeResult(verdict, f"{probe.reason}; {said}", evidence, max(probe.elapsed_ms, person.elapsed_ms))


def item_outcome(section: str, item: CheckItem, results: Mapping[str, ProbeResult]) -> ItemOutcome | None:
    """The item's outcome from the runner's results, or None while a part of it has not answered."""
    result = results.get(item.id)
    if result is None:
        return None
    if item.kind == "attested" or item.attestation is None:
        return ItemOutcome(item.id, section, item.text, item.probe, dict(item.params), result)
    person = results.get(attestation_key(item.id))
    if person is None:
        return None
    return ItemOutcome(
        item.id, section, item.text, item.probe, dict(item.params), with_attestation(item, result, person), result
    )


def counts(outcomes: Sequence[ItemOutcome]) -> dict[str, int]:
    found = {v.value: 0 for v in Verdict}
    for outcome in outcomes:
        found[outcome.verdict.value] += 1
    return found
