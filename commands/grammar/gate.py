"""`/gate` grammar (the command grammar), as a pure parser."""

from __future__ import annotations

from dataclasses import dataclass

from bot.runbook.model import CheckItem, Runbook
from bot.text import did_you_mean, safe
from commands.grammar.usage import UsageError

USAGE = (
    "*Usage:* `/gate` evaluates the release go/no-go now · `/gate attest <check-id> <evidence…>` (admins) "
    "records a manual check for the deployed backend version · `/gate history` lists recent evaluations."
)
EVIDENCE_MAX = 1000
SUBCOMMANDS = ("attest", "history", "help")


@dataclass(frozen=True)
class Evaluate:
    pass


@dataclass(frozen=True)
class Attest:
    check_id: str
    evidence: str


@dataclass(frozen=True)
class History:
    pass


GateCommand = Evaluate | Attest | History


def attestable(runbook: Runbook) -> list[str]:
    seen: dict[str, None] = {}
    for _, item in runbook.labelled_items():
        if takes_attestation(item):
            seen.setdefault(item.id, None)
    return list(seen)


def takes_attestation(item: CheckItem) -> bool:
    """Manual checks, and automatic ones that also need a person's word (`attestation` in the runbook)."""
    return item.kind == "attested" or item.attestation is not None


def parse(text: str, runbook: Runbook) -> GateCommand:
    words = text.split()
    if not words:
        return Evaluate()
    head = words[0].lower()
    if head == "help":
        raise UsageError("Here is how `/gate` works.", USAGE)
    if head == "history":
        if len(words) > 1:
            raise UsageError("`/gate history` takes nothing after it.", USAGE)
        return History()
    if head == "attest":
        return _attest(words[1:], runbook)
    raise UsageError(f"`{safe(words[0], 40)}` is not a `/gate` subcommand.{did_you_mean(head, SUBCOMMANDS)}", USAGE)


def _attest(words: list[str], runbook: Runbook) -> Attest:
    ids = attestable(runbook)
    listing = f"{USAGE}\nChecks that take an attestation: {', '.join(f'`{i}`' for i in ids)}."
    if not words:
        raise UsageError("`/gate attest` needs a check id and evidence.", listing)
    check_id = words[0]
    item = runbook.find_item(check_id)
    if item is None:
        raise UsageError(f"`{safe(check_id, 64)}` is not a check of the runbook.{did_you_mean(check_id, ids)}", listing)
    if not takes_attestation(item):
        raise UsageError(f"`{check_id}` is checked automatically by `/gate`; only manual checks are attested.", listing)
    evidence = " ".join(words[1:]).strip()
    if not evidence:
        raise UsageError(f"Evidence is required: `/gate attest {check_id} <what you checked, or a link>`.", listing)
    if len(evidence) > EVIDENCE_MAX:
        raise UsageError(
            f"The evidence is {len(evidence)} characters long; at most {EVIDENCE_MAX} are allowed.", listing
        )
    return Attest(check_id, evidence)
