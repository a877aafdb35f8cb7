"""`/rollback` grammar (the command grammar), as a pure parser.

    /rollback status
    /rollback <reason…> [--trigger auth|tenant|controls|config|recovery] [--to <sha>]

Options may stand anywhere after the first word; each at most once; `--opt=value` works too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.runbook.model import TRIGGER_IDS
from bot.text import did_you_mean, safe
from commands.grammar.usage import UsageError

USAGE = (
    "*Usage:* `/rollback status` · `/rollback <reason…> [--trigger auth|tenant|controls|config|recovery] "
    "[--to <sha>]`\n"
    "A reason is required. `--trigger` names the runbook's hard rollback trigger; `--to` names the commit "
    "to roll back to (default: the newest successful production deployment with another sha). "
    "A rollback owner other than you approves it."
)
REASON_MAX = 500
_SHA = re.compile(r"[0-9a-f]{7,40}")
_OPTIONS = ("--trigger", "--to")


@dataclass(frozen=True)
class StatusRequest:
    pass


@dataclass(frozen=True)
class RollbackRequest:
    reason: str
    trigger: str | None = None  # one of TRIGGER_IDS
    to: str | None = None  # lower-case hex sha, 7 to 40 characters


RollbackCommand = StatusRequest | RollbackRequest


def parse(text: str) -> RollbackCommand:
    words = text.split()
    if not words or words[0].lower() == "help":
        raise UsageError("Here is how `/rollback` works.", USAGE)
    if words[0].lower() == "status":
        if len(words) > 1:
            raise UsageError(
                "`/rollback status` takes nothing after it (a reason cannot begin with the word `status`).", USAGE
            )
        return StatusRequest()
    options, rest = _options(words)
    trigger = _trigger(options.get("--trigger"))
    to = _sha(options.get("--to"))
    reason = " ".join(rest).strip()
    if not reason:
        raise UsageError("A reason is required: `/rollback <reason…>`.", USAGE)
    if len(reason) > REASON_MAX:
        raise UsageError(f"The reason is {len(reason)} characters long; at most {REASON_MAX} are allowed.", USAGE)
    return RollbackRequest(reason=reason, trigger=trigger, to=to)


def _options(words: list[str]) -> tuple[dict[str, str], list[str]]:
    """Split `--trigger x` / `--to=y` out of the words; the rest is the reason."""
    options: dict[str, str] = {}
    rest: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if not word.startswith("--"):
            rest.append(word)
            i += 1
            continue
        name, eq, value = word.partition("=")
        name = name.lower()
        if name not in _OPTIONS:
            raise UsageError(f"Unknown option `{safe(word, 20)}`.{did_you_mean(name, _OPTIONS)}", USAGE)
        if name in options:
            raise UsageError(f"`{name}` is given twice.", USAGE)
        if not eq:
            if i + 1 >= len(words) or words[i + 1].startswith("--"):
                raise UsageError(f"`{name}` needs a value.", USAGE)
            value, i = words[i + 1], i + 1
        options[name] = value
        i += 1
    return options, rest


def _trigger(value: str | None) -> str | None:
    if value is None:
        return None
    trigger = value.lower()
    if trigger not in TRIGGER_IDS:
        raise UsageError(
            f"`{safe(value, 20)}` is not a rollback trigger.{did_you_mean(trigger, TRIGGER_IDS)} Use "
            f"one of {', '.join(f'`{t}`' for t in TRIGGER_IDS)}.",
            USAGE,
        )
    return trigger


def _sha(value: str | None) -> str | None:
    if value is None:
        return None
    sha = value.lower()
    if not _SHA.fullmatch(sha):
        raise UsageError(f"`{safe(value, 50)}` is not a commit sha (7 to 40 hex characters).", USAGE)
    return sha
