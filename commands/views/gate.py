"""Block Kit and mrkdwn for /gate and /cutover: pure functions; every outside text is escaped."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.cutover.engine import CheckState, CheckStatus
from bot.gate.engine import GateVerdict, ItemOutcome, blocking, holds_text
from bot.gate.models import GateEvaluation
from bot.gate.result import Verdict
from bot.runbook.model import CheckItem
from bot.text import clip, reason_text, safe, when
from commands.views.blocks import HEADER_MAX, SECTION_MAX

ICONS = {Verdict.PASS: ":white_check_mark:", Verdict.FAIL: ":x:", Verdict.UNKNOWN: ":grey_question:"}
STATE_ICONS = {
    CheckState.PASSED: ":white_check_mark:",
    CheckState.ATTESTED: ":memo:",
    CheckState.PENDING: ":hourglass:",
    CheckState.FAILED: ":x:",
}
RUNNING = ":hourglass_flowing_sand:"


@dataclass(frozen=True)
class GateCard:
    items: Sequence[tuple[str, CheckItem]]  # (section, item) in runbook order
    outcomes: Sequence[ItemOutcome]  # the results so far
    requested_by: str
    request_id: str
    deadline_s: float
    version: str | None = None
    verdict: GateVerdict | None = None  # None while running
    evaluation_id: str = ""
    wall_s: float | None = None
    note: str = ""  # e.g. why the version is unknown
    people: frozenset[str] = frozenset()  # mentions kept clickable (see reason_text)
    warnings: Sequence[str] = ()  # open hard-trigger alerts, kill-switch misfires: above the verdict, not in it


def gate_blocks(card: GateCard) -> list[Block]:
    done = {o.item_id: o for o in card.outcomes}
    if card.version:
        title = f"Release go/no-go: backend {card.version}"
    else:
        title = "Release go/no-go: evaluating…" if card.verdict is None else "Release go/no-go: backend version unknown"
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=clip(title, HEADER_MAX))),
        SectionBlock(text=MarkdownTextObject(text=clip(_headline(card, done), SECTION_MAX))),
    ]
    for section, heading in (("go", "*Go only if all are true*"), ("no_go", "*No-go if any is true*")):
        blocks += [DividerBlock(), SectionBlock(text=MarkdownTextObject(text=heading))]
        numbered = [item for s, item in card.items if s == section]
        blocks += [
            SectionBlock(text=MarkdownTextObject(text=_item_line(n, item, section, done.get(item.id), card.people)))
            for n, item in enumerate(numbered, start=1)
        ]
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=clip(_footer(card), SECTION_MAX))]))
    return blocks


def _headline(card: GateCard, done: dict[str, ItemOutcome]) -> str:
    warned = "".join(f"{safe(line, 600)}\n" for line in card.warnings)
    return warned + _verdict_line(card, done)


def _verdict_line(card: GateCard, done: dict[str, ItemOutcome]) -> str:
    if card.verdict is None:
        return (
            f"{RUNNING} Evaluating: {len(done)} of {len(card.items)} checks answered (deadline {card.deadline_s:g} s)."
        )
    if card.verdict is GateVerdict.GO:
        return ":large_green_circle: *GO*: every go condition passes and no no-go condition holds."
    open_ = blocking(card.outcomes)
    failed = [o.item_id for o in open_ if o.verdict is Verdict.FAIL]
    unknown = [o.item_id for o in open_ if o.verdict is Verdict.UNKNOWN]
    parts = [
        f"{len(failed)} failed ({', '.join(failed)})" if failed else "",
        f"{len(unknown)} unknown ({', '.join(unknown)})" if unknown else "",
    ]
    note = f"\n{safe(card.note, 300)}" if card.note else ""  # no italics: outside text can break them
    return f":red_circle: *NO-GO*: {'; '.join(p for p in parts if p)}. Unknown is never GO.{note}"


def _item_line(n: int, item: CheckItem, section: str, outcome: ItemOutcome | None, people: frozenset[str]) -> str:
    label = f"{n}. {safe(item.text, 300)} `{item.id}`"
    if outcome is None:
        return f"{RUNNING} *running…* {label}"
    verdict = outcome.verdict
    meaning = "" if section == "go" else f" (no-go {holds_text(outcome)})"
    reason = reason_text(outcome.result.reason, 600, people)
    line = f"{ICONS[verdict]} *{verdict.value.upper()}*{meaning} {label}\n{reason}"
    if outcome.result.evidence:
        line += f"\n{evidence_text(outcome.result.evidence, 600)}"
    return clip(line, SECTION_MAX)


def evidence_text(evidence: str, limit: int) -> str:
    """Evidence as a plain labelled line. Never wrapped in `_…_` or `*…*`: evidence is outside text
    (container names like `dynamic_config`, links, ids) whose own underscores would break the markup."""
    return f"Evidence: {safe(evidence, limit)}"


def _footer(card: GateCard) -> str:
    parts = [f"Requested by <@{card.requested_by}>", f"request id `{card.request_id}`"]
    if card.evaluation_id:
        parts.append(f"evaluation `{card.evaluation_id}`")
    if card.wall_s is not None:
        parts.append(f"took {card.wall_s:.1f} s of {card.deadline_s:g} s")
    return " · ".join(parts)


def history_text(rows: Sequence[GateEvaluation], now: datetime) -> str:
    if not rows:
        return "*Recent gate evaluations:* none yet. Run `/gate`."
    lines = ["*Recent gate evaluations* (newest first):"]
    for row in rows:
        verdict = ":large_green_circle: GO" if row.verdict == GateVerdict.GO.value else ":red_circle: NO-GO"
        lines.append(
            f"• `{row.id}` {when(row.started_at)}: *{verdict}* for backend "
            f"`{safe(row.version or 'unknown', 64)}` by <@{row.requested_by}> "
            f"(request id `{row.request_id}`)"
        )
    return "\n".join(lines)


def status_line(status: CheckStatus, people: Collection[str] = ()) -> str:
    return check_line(status.state, status.item.id, status.item.text, status.detail, status.evidence, people)


def check_line(
    state: CheckState, item_id: str, text: str, detail: str, evidence: str = "", people: Collection[str] = ()
) -> str:
    line = (
        f"{STATE_ICONS[state]} *{state.value}* `{safe(item_id, 64)}` {safe(text, 200)}"
        f"\n      {reason_text(detail, 400, people)}"
    )
    if evidence:
        line += f"\n      {evidence_text(evidence, 300)}"
    return line
