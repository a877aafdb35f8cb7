"""`/cutover` grammar (the command grammar), as a pure parser."""

from __future__ import annotations

from dataclasses import dataclass

from bot.text import did_you_mean, safe
from commands.grammar.usage import UsageError

USAGE = (
    "*Usage:* `/cutover status` shows the five stages, the current one and each stage's checklist · "
    "`/cutover advance <reason…>` (admins) asks to move to the next stage; another admin approves."
)
REASON_MAX = 500


@dataclass(frozen=True)
class Status:
    pass


@dataclass(frozen=True)
class Advance:
    reason: str


CutoverCommand = Status | Advance


def parse(text: str) -> CutoverCommand:
    words = text.split()
    if not words or words[0].lower() == "help":
        raise UsageError("Here is how `/cutover` works.", USAGE)
    head = words[0].lower()
    if head == "status":
        if len(words) > 1:
            raise UsageError("`/cutover status` takes nothing after it.", USAGE)
        return Status()
    if head == "advance":
        reason = " ".join(words[1:]).strip()
        if not reason:
            raise UsageError("A reason is required: `/cutover advance <reason…>`.", USAGE)
        if len(reason) > REASON_MAX:
            raise UsageError(f"The reason is {len(reason)} characters long; at most {REASON_MAX} are allowed.", USAGE)
        return Advance(reason)
    hint = did_you_mean(head, ("status", "advance", "help"))
    raise UsageError(f"`{safe(words[0], 40)}` is not a `/cutover` subcommand.{hint}", USAGE)
