"""Why an approval click or request is refused: not allowed, already handled, expired, unknown."""

from __future__ import annotations

from datetime import datetime

from bot.errors import OpsbotError


class NotAllowed(OpsbotError):
    """The user lacks the role the rule table requires, or the channel is not the incident channel."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def operator_text(self) -> str:
        return f":no_entry: Not allowed: {self.reason}. This refusal is recorded in the audit log."


class SelfApproval(NotAllowed):
    def __init__(self) -> None:
        super().__init__("you requested this action; a second person must approve it")


class AlreadyHandled(OpsbotError):
    def __init__(self, status: str, by: str | None, at: datetime | None) -> None:
        super().__init__(status)
        self.status = status
        self.by = by
        self.at = at

    def operator_text(self) -> str:
        who = f"<@{self.by}>" if self.by else "the bot"
        return f":information_source: Already handled ({self.status}) by {who} at {_when(self.at)}."


class ApprovalExpired(OpsbotError):
    def __init__(self, expired_at: datetime) -> None:
        super().__init__("expired")
        self.expired_at = expired_at

    def operator_text(self) -> str:
        return f":hourglass: This request expired at {_when(self.expired_at)}; request it again."


class UnknownApproval(OpsbotError):
    def operator_text(self) -> str:
        return ":question: This approval is unknown to the bot; request the action again."


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC") if at else "an unknown time"
