"""The gate message as Block Kit: valid for Slack at every stage, escaped, mentions only of known people."""

from __future__ import annotations

import re
from typing import Any, cast

from bot.cutover.engine import CheckState
from bot.gate.engine import GateVerdict, ItemOutcome, gate_items
from bot.gate.result import failed, passed, unknown
from bot.runbook.load import load_runbook
from bot.text import reason_text
from commands.views.blocks import as_dicts
from commands.views.gate import GateCard, check_line, gate_blocks
from tests.support.common import text_of

RUNBOOK = load_runbook()
ITEMS = gate_items(RUNBOOK)


def outcomes(reason: str) -> list[ItemOutcome]:
    made = [passed(reason, "https://github.com/acme/trading/runs/1?a=1&b=2"), failed(reason), unknown(reason)]
    return [ItemOutcome(i.id, s, i.text, i.probe, dict(i.params), made[n % 3]) for n, (s, i) in enumerate(ITEMS)]


def test_running_partial_and_final_messages_are_valid_block_kit() -> None:
    hostile = "<!channel> " + "x" * 5000
    for card in (
        GateCard(ITEMS, [], "UOP", "ops-1", 20),
        GateCard(ITEMS, outcomes(hostile)[:5], "UOP", "ops-1", 20, "abc1234"),
        GateCard(ITEMS, outcomes(hostile), "UOP", "ops-1", 20, "abc1234", GateVerdict.NO_GO, "gate_1", 3.2, "note <b>"),
    ):
        blocks = as_dicts(gate_blocks(card))  # slack_sdk validates lengths and shapes
        assert len(blocks) <= 50
        shown = text_of({"blocks": blocks})
        assert "<!channel>" not in shown and "<b>" not in shown
    assert "&amp;b=2" in shown and "NO-GO" in shown and "took 3.2 s of 20 s" in shown


def test_only_known_people_are_mentioned() -> None:
    text = "attested by <@UADMIN>; GitHub said <@UCEO> <!here>"
    shown = reason_text(text, 600, frozenset({"UADMIN"}))
    assert "<@UADMIN>" in shown and "<@UCEO>" not in shown and "&lt;@UCEO&gt;" in shown and "<!here>" not in shown


def sections(card: GateCard) -> list[str]:
    """The mrkdwn of the message's section blocks, headline first."""
    blocks = cast(list[dict[str, Any]], as_dicts(gate_blocks(card)))
    return [str(b["text"]["text"]) for b in blocks if b["type"] == "section"]


def underscores(mrkdwn: str) -> int:
    """Underscores outside emoji codes like :white_check_mark:."""
    return re.sub(r":[a-z_]+:", "", mrkdwn).count("_")


EVIDENCE = "opsbot_db: dynamic_config 80 ms; trading-control 26 ms; manual_entry_"


def test_evidence_with_underscores_is_never_inside_italics() -> None:
    """Every underscore shown is the evidence's own: no `_…_` around it for them to break (gate and cutover)."""
    line = check_line(
        CheckState.PASSED, "backend-control-containers", "containers readable", "read and wrote", EVIDENCE
    )
    assert line.endswith(f"\n      Evidence: {EVIDENCE}") and underscores(line) == EVIDENCE.count("_")
    item = RUNBOOK.item("go-cosmos-control-plane")
    card = GateCard(
        ITEMS,
        [ItemOutcome(item.id, "go", item.text, item.probe, {}, passed("ok", EVIDENCE))],
        "UOP",
        "ops_1",
        20,
        "abc1234",
        GateVerdict.NO_GO,
        note="GET /api/health: HTTP_503",
    )
    shown = sections(card)
    (cosmos,) = [t for t in shown if f"`{item.id}`" in t]
    assert f"\nEvidence: {EVIDENCE}" in cosmos and underscores(cosmos) == EVIDENCE.count("_")
    assert shown[0].endswith("\nGET /api/health: HTTP_503")  # the note: plain too


def test_warnings_lead_the_headline_escaped_and_only_when_there_are_some() -> None:
    warned = GateCard(
        ITEMS,
        outcomes("r"),
        "UOP",
        "ops-1",
        20,
        "abc1234",
        GateVerdict.GO,
        "gate_1",
        1.0,
        warnings=(":rotating_light: 2 monitoring alerts with hard rollback triggers are open: a <b>",),
    )
    headline = sections(warned)[0]
    assert headline.startswith(
        ":rotating_light: 2 monitoring alerts with hard rollback triggers are open: a &lt;b&gt;\n"
    )
    assert headline.endswith("*GO*: every go condition passes and no no-go condition holds.")
    quiet = GateCard(ITEMS, outcomes("r"), "UOP", "ops-1", 20, "abc1234", GateVerdict.GO, "gate_1", 1.0)
    assert sections(quiet)[0].startswith(":large_green_circle: *GO*")
