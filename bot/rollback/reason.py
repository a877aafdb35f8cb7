"""The rollback reason as it goes to the revert workflow: text a workflow can hold safely.

The operator's words stay readable, but nothing in them can steer a workflow step: control and
format characters (bidi overrides, zero-width marks) are dropped, whitespace becomes single spaces,
the length is bounded, and the sequences a shell or an Actions expression would act on (`$(`,
backticks, `${{`) are broken apart. The stored request keeps the reason exactly as typed.
"""

from __future__ import annotations

import re
import unicodedata

MAX_REASON_CHARS = 500
_SPACES = re.compile(r"\s+")
# Broken with a space or a plain quote, so the text still reads the same to a person.
_DEFUSE = (("${{", "$ {{"), ("$(", "$ ("), ("`", "'"))


def workflow_reason(reason: str, limit: int = MAX_REASON_CHARS) -> str:
    text = unicodedata.normalize("NFC", reason)
    # Cc: control characters; Cf: format characters, among them every bidi control and zero-width mark.
    text = "".join(
        " " if ch.isspace() else ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf") or ch.isspace()
    )
    text = _SPACES.sub(" ", text).strip()
    for sequence, harmless in _DEFUSE:
        text = text.replace(sequence, harmless)
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text or "(no reason given)"
