"""Runtime control drift between backend memory and Cosmos control state (runbook, first 24 hours).

Pure: the Cosmos control documents (bot.clients.cosmos_models), their comparison with the backend's
`GET /api/trading-control` answer (§5), and the operator text. No I/O; bot.clients.cosmos does the reading.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.clients.backend import TradingControl
from bot.clients.cosmos_models import CosmosControl
from bot.text import safe

TITLE = "runtime control drift between backend memory and Cosmos control state"
MAX_LINES = 15  # keeps the message short when a whole tenant list drifts


@dataclass(frozen=True)
class Drift:
    subject: str  # "global", a scope such as "tenant:acme", or "revision"
    backend: str  # the backend's state, in words
    cosmos: str  # the Cosmos documents' state, in words
    informational: bool = False  # shown to operators, but not a control disagreement


def compare(backend: TradingControl, cosmos: CosmosControl) -> list[Drift]:
    """Global flag first, then scopes by name, then the (informational) revision."""
    drifts = _global_drift(backend, cosmos)
    drifts += _scope_drifts(backend, cosmos)
    if cosmos.revision is not None and cosmos.revision != backend.revision:
        drifts.append(Drift("revision", str(backend.revision), str(cosmos.revision), informational=True))
    return drifts


def _global_drift(backend: TradingControl, cosmos: CosmosControl) -> list[Drift]:
    said = "halted" if backend.global_.halted else "not halted"
    if cosmos.global_ is None:
        # Never halted may mean never written; a halt that Cosmos does not hold is real drift.
        return [Drift("global", said, "no global document", informational=not backend.global_.halted)]
    if cosmos.global_.halted != backend.global_.halted:
        return [Drift("global", said, "halted" if cosmos.global_.halted else "not halted")]
    return []


def _scope_drifts(backend: TradingControl, cosmos: CosmosControl) -> list[Drift]:
    # A scope missing on one side means "not disabled" there; only the effective flags are compared.
    ours = {s.scope: s.disabled for s in backend.scopes}
    theirs = {s.scope: s.disabled for s in cosmos.scopes}
    drifts = []
    for scope in sorted(ours.keys() | theirs.keys()):
        if ours.get(scope, False) != theirs.get(scope, False):
            drifts.append(
                Drift(scope, _scope_words(ours.get(scope), "entry"), _scope_words(theirs.get(scope), "document"))
            )
    return drifts


def _scope_words(disabled: bool | None, thing: str) -> str:
    if disabled is None:
        return f"enabled (no {thing})"
    return "disabled" if disabled else "enabled"


def has_drift(drifts: Sequence[Drift]) -> bool:
    return any(not d.informational for d in drifts)


def drift_text(drifts: Sequence[Drift]) -> str:
    """Slack mrkdwn for operators; every value from the backend or Cosmos is escaped."""
    real = [d for d in drifts if not d.informational]
    info = [d for d in drifts if d.informational]
    if real:
        lines = [
            f":warning: *{TITLE[0].upper()}{TITLE[1:]}* ({len(real)} "
            f"{'difference' if len(real) == 1 else 'differences'})"
        ]
        lines += _lines(real)
        lines.append("The bot never writes control state; repair it explicitly after review (runbook).")
    else:
        lines = [f":white_check_mark: No {TITLE}."]
    if info:
        lines.append("_Informational:_")
        lines += _lines(info)
    return "\n".join(lines)


def _lines(drifts: Sequence[Drift]) -> list[str]:
    shown = [
        f"• {safe(d.subject, 120)}: backend {safe(d.backend, 60)}, Cosmos {safe(d.cosmos, 60)}"
        for d in drifts[:MAX_LINES]
    ]
    if len(drifts) > MAX_LINES:
        shown.append(f"• …and {len(drifts) - MAX_LINES} more")
    return shown
