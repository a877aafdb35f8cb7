"""What every release-gate probe returns: a verdict, one plain line for the operator, and evidence."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum


class Verdict(StrEnum):
    PASS = "pass"  # noqa: S105 - a verdict, not a password
    FAIL = "fail"
    UNKNOWN = "unknown"  # the probe could not tell (not configured, unreachable): never counts as a pass


@dataclass(frozen=True)
class ProbeResult:
    verdict: Verdict
    reason: str  # one line, plain words, shown to the operator as is
    evidence: str = ""  # a link, a figure or an x-request-id the operator can follow up
    elapsed_ms: float = 0.0

    def __post_init__(self) -> None:
        # Exception texts can span lines; the gate shows one line per check.
        object.__setattr__(self, "reason", _one_line(self.reason))
        object.__setattr__(self, "evidence", _one_line(self.evidence))

    def took(self, elapsed_ms: float) -> ProbeResult:
        return dataclasses.replace(self, elapsed_ms=elapsed_ms)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def passed(reason: str, evidence: str = "", *, elapsed_ms: float = 0.0) -> ProbeResult:
    return ProbeResult(Verdict.PASS, reason, evidence, elapsed_ms)


def failed(reason: str, evidence: str = "", *, elapsed_ms: float = 0.0) -> ProbeResult:
    return ProbeResult(Verdict.FAIL, reason, evidence, elapsed_ms)


def unknown(reason: str, evidence: str = "", *, elapsed_ms: float = 0.0) -> ProbeResult:
    return ProbeResult(Verdict.UNKNOWN, reason, evidence, elapsed_ms)
