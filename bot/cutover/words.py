"""The cutover's state in a line of operator text: the last gate, a version, a rollback behind the stage."""

from __future__ import annotations

from datetime import datetime

from bot.cutover.engine import RolledBack, StageEntry, same_version
from bot.gate.composite import EvaluationView
from bot.gate.engine import GateVerdict
from bot.text import safe, when


def gate_summary(gate: EvaluationView | None, now: datetime, deployed: str | None = None) -> str:
    """The last gate in one line. With `deployed` (the backend's version now), a gate that was for
    another version says so: its verdict does not speak for what runs (e.g. after a rollback).
    Versions match when equal or when one is an abbreviation (7+ characters) of the other."""
    if gate is None:
        return "*Last gate:* none yet (run `/gate`)."
    verdict = "GO" if gate.verdict is GateVerdict.GO else "NO-GO"
    minutes = (now - gate.started_at).total_seconds() / 60
    line = (
        f"*Last gate:* *{verdict}* (`{gate.id}`, {minutes:.0f} min ago, for backend "
        f"`{safe(gate.version or 'unknown', 64)}`"
    )
    if deployed:
        ran, runs = (gate.version or "").strip().lower(), deployed.strip().lower()
        if not ran or (
            ran != runs and not (min(len(ran), len(runs)) >= 7 and (ran.startswith(runs) or runs.startswith(ran)))
        ):
            line += f", *NOT the deployed* `{safe(deployed, 64)}`: run `/gate`"
    return f"{line}, by <@{gate.requested_by}>)"


def abbrev(version: str | None) -> str:
    """A version for a line of text: its first 12 characters, escaped, in backticks."""
    text = (version or "unknown").strip()
    return f"`{safe(text[:12], 80)}{'…' if len(text) > 12 else ''}`"


def rollback_warning(rolled: RolledBack, entry: StageEntry, stage_number: int) -> str:
    """The current stage was entered on a release that a later rollback took production off."""
    if same_version(rolled.from_version, entry.version):
        what = (
            f"took production off {abbrev(rolled.from_version)} (on which this stage was entered) "
            f"at {when(rolled.closed_at)}"
        )
    else:
        what = (
            f"({abbrev(rolled.from_version)} → {abbrev(rolled.to_version)}) closed at {when(rolled.closed_at)}, "
            f"after this stage was entered on {abbrev(entry.version)}"
        )
    return (
        f":warning: Rollback `{safe(rolled.id, 32)}` {what}; the cutover stays at stage {stage_number}, but "
        "the checks that brought it here were passed on a release that is gone: run `/gate` and re-check "
        "before advancing."
    )
