"""Making user and backend text safe for Slack mrkdwn, and bounded."""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterable
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def escape(text: str) -> str:
    """Escape the three characters Slack treats as control sequences (<!channel>, <@U…>, links)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """Bound text to `limit` characters, marking the cut so an operator sees it was shortened."""
    text = _CONTROL.sub(" ", text)
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + "…"


def safe(text: str, limit: int) -> str:
    """Clip first, then escape, and clip again so entities never push text past Slack's limits."""
    escaped = escape(clip(text, limit))
    if len(escaped) <= limit:
        return escaped
    # Cut at an entity boundary so a half '&amp;' is never shown.
    cut = escaped[: limit - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def without_credentials(url: str) -> str:
    """The URL as it may be shown or logged: any user:password@ part removed."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def plural(count: int, noun: str, many: str | None = None) -> str:
    """`1 failure`, `2 failures`: the count with its noun in the right number."""
    return f"{count} {noun if count == 1 else (many or noun + 's')}"


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The one of `choices` a mistyped `word` most likely meant (difflib), or None."""
    found = difflib.get_close_matches(word.lower(), list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """` Did you mean `status`?` for a word close to one of `choices`, else ""."""
    found = closest(word, choices)
    return f" Did you mean `{safe(found, 80)}`?" if found else ""


def when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


_MENTION = re.compile(r"&lt;@([UW][A-Z0-9]{2,20})&gt;")


def reason_text(text: str, limit: int = 600, people: Collection[str] = ()) -> str:
    """Escaped; mentions of `people` (the configured role holders the bot itself names) stay clickable.
    Any other `<@…>`, e.g. inside an error text from a remote server, stays inert."""
    return _MENTION.sub(lambda m: f"<@{m.group(1)}>" if m.group(1) in people else m.group(0), safe(text, limit))
