"""`/halt` grammar (the command grammar), as a pure parser."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.text import closest, did_you_mean, safe
from commands.grammar.usage import UsageError

USAGE = (
    "*Usage:* `/halt status` · `/halt <scope> <reason…> [--now]` · `/halt resume <scope> <reason…>`\n"
    "Scopes: `global`, `tenant:<id>`, `strategy:<id>`, `symbol:<SYMBOL>`. A reason is required.\n"
    "`--now` is break-glass for halt authorities: it halts at once and asks a second halt authority "
    "to confirm. Resume never has break-glass."
)
REASON_MAX = 500
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
_SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9.\-/]{0,19}")


@dataclass(frozen=True)
class StatusRequest:
    pass


@dataclass(frozen=True)
class ControlRequest:
    action: str  # "halt" or "resume"
    scope: str
    reason: str
    break_glass: bool = False


HaltCommand = StatusRequest | ControlRequest


KINDS = ("tenant", "strategy", "symbol")
WORDS = ("global", "status", "resume")  # what may stand first besides a scope


def parse_scope(word: str, following: str | None = None) -> str:
    if word == "global":
        return word
    kind, sep, ident = word.partition(":")
    if sep and kind in ("tenant", "strategy") and _ID.fullmatch(ident):
        return f"{kind}:{ident}"
    if sep and kind == "symbol" and _SYMBOL.fullmatch(ident.upper()):
        return f"symbol:{ident.upper()}"
    raise UsageError(f"`{safe(word, 40)}` is not a scope.{_scope_hint(word, following)}", USAGE)


def _scope_hint(word: str, following: str | None) -> str:
    """`tenant acme` → `tenant:acme`; `tennant:acme` → `tenant:acme`; `globl` → `global`."""
    kind, sep, ident = word.lower().partition(":")
    if not sep and kind in KINDS and following:
        return f" Did you mean `{kind}:{safe(following, 40)}`?"
    if sep and ident:
        close = closest(kind, KINDS)
        return f" Did you mean `{close}:{safe(ident, 40)}`?" if close else ""
    return did_you_mean(word, WORDS)


def parse(text: str) -> HaltCommand:
    words = text.split()
    if not words or words[0].lower() == "help":
        raise UsageError("Here is how `/halt` works.", USAGE)
    if words[0].lower() == "status":
        if len(words) > 1:
            raise UsageError("`/halt status` takes nothing after it.", USAGE)
        return StatusRequest()
    action = "halt"
    if words[0].lower() == "resume":
        action, words = "resume", words[1:]
        if not words:
            raise UsageError("`/halt resume` needs a scope and a reason.", USAGE)
    # `--now` counts only as the last word: anywhere else it is a mistake, never a break-glass.
    break_glass = words[-1] == "--now"
    if break_glass:
        words = words[:-1]
    if "--now" in words:
        raise UsageError("`--now` goes at the very end, after the reason.", USAGE)
    flags = [w for w in words[1:] if w.startswith("--")]
    if flags:
        raise UsageError(f"Unknown option `{safe(flags[0], 20)}`.", USAGE)
    if break_glass and action == "resume":
        raise UsageError("`--now` is not available for resume: a resume always needs a second halt authority.", USAGE)
    if not words:
        raise UsageError("A scope is required.", USAGE)
    scope = parse_scope(words[0], words[1] if len(words) > 1 else None)
    reason = " ".join(words[1:]).strip()
    if not reason:
        raise UsageError(
            f"A reason is required: `/halt {'resume ' if action == 'resume' else ''}{scope} <reason…>`.", USAGE
        )
    if len(reason) > REASON_MAX:
        raise UsageError(f"The reason is {len(reason)} characters long; at most {REASON_MAX} are allowed.", USAGE)
    return ControlRequest(action=action, scope=scope, reason=reason, break_glass=break_glass)
