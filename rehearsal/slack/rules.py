"""What the Slack Web API checks before it does a method, for the local peer: the token's scopes
(the app's, read from manifest.yaml), and the limits on blocks and text.

Slack's limits used here: at most 50 blocks in a message and 100 in a view, a section's text at
most 3,000 characters, a header's 150, only known block types, and a message's text at most
40,000 characters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # types-PyYAML is not installed here

from rehearsal.slack.calls import Json, SlackError

MANIFEST = Path(__file__).resolve().parents[2] / "manifest.yaml"
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_TEXT = 40_000
BLOCK_TYPES = frozenset(
    {"actions", "context", "divider", "file", "header", "image", "input", "markdown", "rich_text", "section", "video"}
)

# The scopes a bot token needs for each method the peer answers; any one of a tuple's scopes will do.
METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "auth.test": (),
    "chat.getPermalink": (),
    "views.publish": (),
    "chat.postMessage": ("chat:write",),
    "chat.update": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    "users.info": ("users:read",),
    "conversations.info": ("channels:read", "groups:read"),
    "conversations.join": ("channels:join",),
    "files.getUploadURLExternal": ("files:write",),
    "files.completeUploadExternal": ("files:write",),
}


def manifest_scopes(path: Path = MANIFEST) -> frozenset[str]:
    """The bot scopes an app installed from this manifest holds."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    return frozenset(str(s) for s in doc["oauth_config"]["scopes"]["bot"])


def check_scope(method: str, scopes: frozenset[str]) -> None:
    needed = METHOD_SCOPES.get(method, ())
    if needed and not scopes & set(needed):
        raise SlackError("missing_scope", extra={"needed": ",".join(needed), "provided": ",".join(sorted(scopes))})


def check_message(args: Json) -> None:
    """chat.postMessage / chat.update / chat.postEphemeral: text length and blocks."""
    text = args.get("text")
    if isinstance(text, str) and len(text) > MAX_TEXT:
        raise SlackError("msg_too_long")
    blocks = args.get("blocks")
    if isinstance(blocks, list):
        check_blocks(blocks, MAX_MESSAGE_BLOCKS, "/blocks", "invalid_blocks")


def check_view(view: Json) -> None:
    blocks = view.get("blocks")
    if not isinstance(blocks, list):
        raise SlackError("invalid_arguments", extra=_messages(["must provide an array [json-pointer:/view/blocks]"]))
    check_blocks(blocks, MAX_VIEW_BLOCKS, "/view/blocks", "invalid_arguments")


def check_blocks(blocks: list[Any], limit: int, pointer: str, error: str) -> None:
    problems: list[str] = []
    if len(blocks) > limit:
        problems.append(f"no more than {limit} items allowed [json-pointer:{pointer}]")
    for index, block in enumerate(blocks):
        problems.extend(_block_problems(block, f"{pointer}/{index}"))
    if problems:
        raise SlackError(error, extra={"errors": problems, **_messages(problems)})


def _block_problems(block: Any, pointer: str) -> list[str]:
    if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
        return [
            f"unsupported type: {block.get('type') if isinstance(block, dict) else block!r} "
            f"[json-pointer:{pointer}/type]"
        ]
    limit = {"section": MAX_SECTION_TEXT, "header": MAX_HEADER_TEXT}.get(block["type"])
    text = block.get("text")
    if limit is not None and isinstance(text, dict) and len(str(text.get("text") or "")) > limit:
        return [f"must be less than {limit + 1} characters [json-pointer:{pointer}/text/text]"]
    return []


def _messages(problems: list[str]) -> Json:
    return {"response_metadata": {"messages": [f"[ERROR] {p}" for p in problems]}}
