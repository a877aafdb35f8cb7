"""`opsbot audit verify`: the chain, then every signed checkpoint (stored, witnessed, exported) against
it. A chain alone proves only that rows agree with each other; the checkpoints, signed with a key
outside the database and copied where a database writer cannot reach, prove the rows are still the
ones that were there: fewer rows, a different hash at a checkpoint's sequence, or an emptied table fail."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from bot.audit.checkpoint import SHORT_HASH, Witnessed, parse_witness_line, signature_problem
from bot.audit.log import GENESIS, canonical, chain_problem


@dataclass
class Report:
    checked: int = 0
    head_seq: int = 0
    first_seq: int = 1
    broken: str = ""  # the first chain problem, e.g. "BROKEN at seq 17: …"
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    held: int = 0  # checkpoints that hold

    @property
    def ok(self) -> bool:
        return not self.broken and not self.problems


def walk(rows: Iterable[tuple[dict[str, Any], str]], wanted: set[int], report: Report) -> dict[int, str]:
    """Check the chain row by row; the hashes found at the `wanted` sequences (the checkpoints')."""
    found: dict[int, str] = {}
    expected_prev: str | None = GENESIS
    expected_seq: int | None = None
    for fields, stored_hash in rows:
        seq = int(fields["seq"])
        if expected_seq is None:  # an export may start later (--since): take its first link as given
            report.first_seq = expected_seq = seq
            expected_prev = GENESIS if seq == 1 else None
        problem = chain_problem(fields, stored_hash, expected_prev, expected_seq)
        if problem and not report.broken:
            report.broken = f"BROKEN at seq {seq}: {problem} ({report.checked} events before it verified)"
        if not report.broken:
            report.checked += 1
        if seq in wanted:
            found[seq] = stored_hash
        expected_prev, expected_seq, report.head_seq = stored_hash, seq + 1, seq
    return found


def check_checkpoints(
    witnessed: Iterable[Witnessed], found: dict[int, str], report: Report, keys: dict[str, Ed25519PublicKey]
) -> None:
    unchecked_signatures = 0
    for w in _distinct(witnessed):
        if w.checkpoint is not None:
            if not keys:
                unchecked_signatures += 1
            elif problem := signature_problem(w.checkpoint, keys):
                report.problems.append(f"FORGED: {w.named()}: {problem}")
                continue
        problem = _against_chain(w, found, report)
        if problem:
            report.problems.append(problem)
        elif w.seq >= report.first_seq:
            report.held += 1
    if unchecked_signatures:
        report.notes.append(
            f"signatures of {unchecked_signatures} checkpoint(s) not checked: no public key "
            "(set OPSBOT_AUDIT_SIGNING_KEY or pass --public-key)"
        )


def _against_chain(w: Witnessed, found: dict[int, str], report: Report) -> str:
    if report.head_seq == 0:
        return f"EMPTIED: the audit table holds no events, but {w.named()} was signed"
    if w.seq > report.head_seq:
        return (
            f"TRUNCATED: {w.named()} is beyond the chain's end at seq {report.head_seq}: "
            f"events {report.head_seq + 1}-{w.seq} (at least) were removed"
        )
    if w.seq < report.first_seq:
        return ""  # before an export's first row: nothing to compare
    actual = found.get(w.seq)
    if actual is None:
        return f"MISSING: seq {w.seq} of {w.named()} is not in the chain"
    if not actual.startswith(w.hash):
        return (
            f"REWRITTEN: at seq {w.seq} the chain's hash is {actual[:SHORT_HASH]}…, not the one of "
            f"{w.named()}: events up to seq {w.seq} were edited and re-hashed"
        )
    return ""


def _distinct(witnessed: Iterable[Witnessed]) -> Iterator[Witnessed]:
    seen: set[tuple[int, str, str]] = set()
    for w in witnessed:
        key = (w.seq, w.hash, w.checkpoint.signature if w.checkpoint else "")
        if key not in seen:
            seen.add(key)
            yield w


def read_witness(lines: Iterable[str], name: str) -> list[Witnessed]:
    found: list[Witnessed] = []
    for number, line in enumerate(lines, start=1):
        witnessed = parse_witness_line(line, f"{name} line {number}")
        if witnessed is not None:
            found.append(witnessed)
    return found


def export_rows(lines: Iterable[str]) -> Iterator[tuple[dict[str, Any], str]]:
    """The events of an exported JSONL file as (hashed fields, stored hash), checkpoint lines skipped."""
    for line in lines:
        if not line.strip():
            continue
        data = json.loads(line)
        if "checkpoint" in data:
            continue
        stored_hash = data.pop("hash")
        data["params"] = canonical(data["params"])  # the stored text is canonical JSON: this rebuilds it
        yield data, stored_hash


def summary(report: Report, *, what: str) -> str:
    line = f"{what} intact: {report.checked} events verified"
    if report.held:
        line += f"; {report.held} signed checkpoint(s) hold"
    return line
