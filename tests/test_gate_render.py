"""The gate message as Block Kit: valid for Slack at every stage, escaped, mentions only of known people."""

from __future__ import annotations

from bot.gate_engine import GateVerdict, ItemOutcome, gate_items
from bot.gate_render import GateCard, gate_blocks, reason_text
from bot.probes.result import failed, passed, unknown
from bot.render import as_dicts
from bot.runbook import load_runbook
from tests.conftest import text_of

RUNBOOK = load_runbook()
ITEMS = gate_items(RUNBOOK)


def outcomes(reason: str) -> list[ItemOutcome]:
    made = [passed(reason, "https://github.com/acme/trading/runs/1?a=1&b=2"), failed(reason), unknown(reason)]
    return [ItemOutcome(i.id, s, i.text, i.probe, dict(i.params), made[n % 3]) for n, (s, i) in enumerate(ITEMS)]


def test_running_partial_and_final_messages_are_valid_block_kit() -> None:
    hostile = "<!channel> " + "x" * 5000
    for card in (GateCard(ITEMS, [], "UOP", "ops-1", 20),
                 GateCard(ITEMS, outcomes(hostile)[:5], "UOP", "ops-1", 20, "abc1234"),
                 GateCard(ITEMS, outcomes(hostile), "UOP", "ops-1", 20, "abc1234", GateVerdict.NO_GO, "gate_1", 3.2,
                          "note <b>")):
        blocks = as_dicts(gate_blocks(card))  # slack_sdk validates lengths and shapes
        assert len(blocks) <= 50
        shown = text_of({"blocks": blocks})
        assert "<!channel>" not in shown and "<b>" not in shown
    assert "&amp;b=2" in shown and "NO-GO" in shown and "took 3.2 s of 20 s" in shown


def test_only_known_people_are_mentioned() -> None:
    text = "attested by <@UADMIN>; GitHub said <@UCEO> <!here>"
    shown = reason_text(text, 600, frozenset({"UADMIN"}))
    assert "<@UADMIN>" in shown and "<@UCEO>" not in shown and "&lt;@UCEO&gt;" in shown and "<!here>" not in shown
