"""The one place an exception becomes an operator's answer: a typed error says how it reads; anything
else is a failure the operator is told about without its internals."""

from __future__ import annotations

from bot.errors import OpsbotError

FAILED = ":x: The request failed; nothing was done."


def operator_message(exc: BaseException) -> str:
    """Plain text (already safe for mrkdwn) telling an operator what happened and what to do."""
    return exc.operator_text() if isinstance(exc, OpsbotError) else FAILED
