"""Generated Block Kit validates with slack_sdk's models, including for the longest allowed inputs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from slack_sdk.models.blocks import SectionBlock

from bot.approvals.card import Card
from bot.clients.backend import GlobalControl, Reply, ScopeControl, TradingControl
from bot.halt.actions import status_text
from commands.grammar.halt import REASON_MAX, parse
from commands.views.blocks import approval_blocks, as_dicts, notice_blocks

LONGEST_SCOPE = "tenant:" + "a" * 64


def longest_card(reason: str, **changes: object) -> Card:
    base = dict(
        title=f"Halt trading: {LONGEST_SCOPE}",
        effect="x" * 400,
        reason=reason,
        requester="U" + "9" * 20,
        approver_role="a halt authority",
        expires_at=datetime.now(UTC),
        approval_id="apr_" + "z" * 22,
        request_id="ops-" + "f" * 16,
        status=":gear: " + "s" * 2500,
    )
    base.update(changes)
    return Card(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("reason", ["&" * REASON_MAX, "<!channel>" * (REASON_MAX // 10), "é" * REASON_MAX])
def test_longest_reason_validates_and_is_escaped(reason: str) -> None:
    command = parse(f"{LONGEST_SCOPE} {reason}")
    blocks = as_dicts(approval_blocks(longest_card(command.reason)))  # type: ignore[union-attr]
    texts = str(blocks)
    assert "<!channel>" not in texts
    assert all(len(str(b)) < 12_000 for b in blocks)


def test_buttons_carry_only_the_opaque_approval_id() -> None:
    blocks = as_dicts(approval_blocks(longest_card("why")))
    actions = [b for b in blocks if b["type"] == "actions"]
    assert len(actions) == 1
    elements = actions[0]["elements"]  # type: ignore[index]
    assert [(e["action_id"], e["value"]) for e in elements] == [
        ("approve", "apr_" + "z" * 22),
        ("reject", "apr_" + "z" * 22),
    ]
    assert elements[0]["confirm"]["title"]["text"].startswith("Approve: ")


def test_closed_card_has_no_buttons() -> None:
    blocks = as_dicts(approval_blocks(longest_card("why", buttons=False)))
    assert not [b for b in blocks if b["type"] == "actions"]


def test_status_with_many_scopes_stays_within_section_limits() -> None:
    scopes = tuple(
        ScopeControl(scope=f"tenant:t{i:04d}", disabled=True, reason="r" * 200, updated_at="2026-11-25T10:00:00Z")
        for i in range(200)
    )
    control = TradingControl(
        global_=GlobalControl(
            halted=True, reason="<!here> " + "q" * 400, updated_at="2026-11-25T10:00:00Z", updated_by="slack:U1+U2"
        ),
        scopes=scopes,
        maintenance_enabled=True,
        maintenance_message="m" * 400,
        revision=99,
    )
    text = status_text(Reply(data=control, request_id="ops-1", echoed=True, status=200, elapsed_ms=3.0))
    assert "…and 170 more" in text and "&lt;!here&gt;" in text
    blocks = as_dicts(notice_blocks(text, context=["trace"]))
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]  # type: ignore[index]
    assert len(sections) > 1 and all(len(s) <= 3000 for s in sections)
    assert "Control revision:* 99" in sections[-1]  # nothing an operator needs is cut off


def test_invalid_block_is_refused_before_it_reaches_slack() -> None:
    from slack_sdk.errors import SlackObjectFormationError

    with pytest.raises(SlackObjectFormationError):
        as_dicts([SectionBlock(block_id="b" * 300, text="x")])


def test_a_card_survives_the_outbox_as_plain_data() -> None:
    import json

    card = longest_card("why", audit="audit #9 · 00ff…, signed", buttons=False)
    stored = json.loads(json.dumps(card.data()))  # as the outbox row keeps it
    assert Card.from_data(stored) == card
    assert as_dicts(approval_blocks(Card.from_data(stored))) == as_dicts(approval_blocks(card))
