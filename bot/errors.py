"""The base of every error an operator may be shown. Each typed error lives with the part that raises it
(clients, approvals, storage, grammar) and says in `operator_text` how it reads to an operator;
commands.errors is the one place the Slack edge turns any exception into an answer."""

from __future__ import annotations


class OpsbotError(Exception):
    """Base of every error an operator may be shown."""

    def operator_text(self) -> str:
        """Plain text (already safe for mrkdwn) telling an operator what happened and what to do."""
        return ":x: The request failed; nothing was done."
