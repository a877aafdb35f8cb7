"""Block Kit for approval requests and their outcomes: pure functions over slack_sdk models."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

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

from bot.text import clip, safe

HEADER_MAX = 150
SECTION_MAX = 3000
FIELD_MAX = 2000


@dataclass(frozen=True)
class Card:
    """Everything an approval message shows; `reason` is raw user text (escaped here)."""

    title: str
    effect: str  # mrkdwn, already safe
    reason: str
    requester: str
    approver_role: str  # e.g. "a halt authority"
    expires_at: datetime
    approval_id: str
    request_id: str
    status: str | None = None  # mrkdwn, already safe; None while waiting
    buttons: bool = True
    approve_label: str = "Approve"
    reject_label: str = "Reject"
    audit: str = ""  # the signed audit checkpoint's compact line, once the action ran
    effect_label: str = "What will happen"  # "What was asked" once the request is no longer open
    # The approver's confirm dialog: a question and what the click does (plain words, not mrkdwn).
    confirm_title: str = ""
    confirm_text: str = ""


def when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


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
