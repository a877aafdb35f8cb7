"""Block Kit for approval requests and their outcomes: pure functions over slack_sdk models."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.approvals.card import Card
from bot.text import clip, safe, when

HEADER_MAX = 150
SECTION_MAX = 3000
FIELD_MAX = 2000


def approval_blocks(card: Card) -> list[Block]:
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=clip(card.title, HEADER_MAX), emoji=True)),
        SectionBlock(text=MarkdownTextObject(text=clip(f"*{card.effect_label}:* {card.effect}", SECTION_MAX))),
        SectionBlock(text=MarkdownTextObject(text=f"*Why:* {safe(card.reason, SECTION_MAX - 16)}")),
        SectionBlock(
            fields=[
                MarkdownTextObject(text=f"*Requested by*\n<@{card.requester}>"),
                MarkdownTextObject(text=f"*Needs*\n{card.approver_role}, not the requester"),
                MarkdownTextObject(text=f"*Expires*\n{when(card.expires_at)}"),
                MarkdownTextObject(text=f"*Request id*\n`{card.request_id}`"),
            ]
        ),
    ]
    if card.status:
        blocks += [DividerBlock(), SectionBlock(text=MarkdownTextObject(text=clip(card.status, SECTION_MAX)))]
    if card.buttons:
        blocks.append(_buttons(card))
    context = [MarkdownTextObject(text=f"Approval `{card.approval_id}`")]
    if card.audit:
        context.append(MarkdownTextObject(text=card.audit))
    blocks.append(ContextBlock(elements=context))
    return blocks


def _buttons(card: Card) -> ActionsBlock:
    title = card.confirm_title or f"{card.approve_label}: {card.title}"
    text = card.confirm_text or f"Approving runs this at once: {card.title}."
    confirm = ConfirmObject(
        title=PlainTextObject(text=clip(title, 100)),
        text=MarkdownTextObject(text=safe(f"{text} Recorded in the audit log.", 300)),
        confirm=PlainTextObject(text=card.approve_label),
        deny=PlainTextObject(text="Cancel"),
        style="danger",
    )
    return ActionsBlock(
        block_id="approval",
        elements=[
            # The value is the opaque approval id and nothing else: the store holds the rest.
            ButtonElement(
                text=card.approve_label, action_id="approve", value=card.approval_id, style="primary", confirm=confirm
            ),
            ButtonElement(text=card.reject_label, action_id="reject", value=card.approval_id, style="danger"),
        ],
    )


def notice_blocks(text: str, *, context: Sequence[str] = ()) -> list[Block]:
    """A mrkdwn notice (status answers, refusals), split at line ends into sections Slack accepts."""
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=chunk)) for chunk in _chunks(text)]
    if context:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=clip(c, SECTION_MAX)) for c in context]))
    return blocks


def _chunks(text: str) -> list[str]:
    chunks, current = [], ""
    for line in text.split("\n"):
        line = clip(line, SECTION_MAX)
        if current and len(current) + 1 + len(line) > SECTION_MAX:
            chunks.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    return [*chunks, current] if current else chunks or [" "]


def as_dicts(blocks: Sequence[Block]) -> list[dict[str, object]]:
    """Validated JSON for the Web API (slack_sdk raises on over-long or malformed blocks)."""
    out: list[dict[str, object]] = []
    for block in blocks:
        block.validate_json()
        out.append(block.to_dict())
    return out


# How the notifier draws an outbox note's view from its plain data (bot.approvals.outbox.Note).
RENDERERS: dict[str, Callable[[Mapping[str, Any]], list[Block]]] = {
    "approval": lambda data: approval_blocks(Card.from_data(data)),
    "notice": lambda data: notice_blocks(str(data["text"])),
}


def render(view: str, data: Mapping[str, Any]) -> list[dict[str, object]]:
    """A note's blocks; KeyError for a view nobody draws, SlackObjectFormationError for invalid blocks."""
    return as_dicts(RENDERERS[view](data))
