"""Typed errors the domain raises, and the one place that turns them into operator messages."""

from __future__ import annotations

from datetime import datetime

from bot.text import safe


class OpsbotError(Exception):
    """Base of every error an operator may be shown."""


class UsageError(OpsbotError):
    """The command text does not follow the grammar; the answer is the command's usage."""

    def __init__(self, problem: str, usage: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.usage = usage


class NotAllowed(OpsbotError):
    """The user lacks the role the rule table requires, or the channel is not the incident channel."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SelfApproval(NotAllowed):
    def __init__(self) -> None:
        super().__init__("you requested this action; a second person must approve it")


class AlreadyHandled(OpsbotError):
    def __init__(self, status: str, by: str | None, at: datetime | None) -> None:
        super().__init__(status)
        self.status = status
        self.by = by
        self.at = at


class ApprovalExpired(OpsbotError):
    def __init__(self, expired_at: datetime) -> None:
        super().__init__("expired")
        self.expired_at = expired_at


class UnknownApproval(OpsbotError):
    pass


class BackendError(OpsbotError):
    """A call to the trading backend did not give a usable answer."""

    retryable = False

    def __init__(self, detail: str, *, request_id: str, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.request_id = request_id
        self.status = status


class BackendNotConfigured(BackendError):
    def __init__(self, *, request_id: str) -> None:
        super().__init__("TRADING_API_URL is not set", request_id=request_id)


class BackendUnavailable(BackendError):
    """Connection refused, timed out or a 5xx: the write may be retried with the same idempotency key."""

    retryable = True


class BackendRejected(BackendError):
    """A 4xx: retrying the same request will not help."""


class StoreUnavailable(OpsbotError):
    """The store is locked or unreachable."""


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC") if at else "an unknown time"


def operator_message(exc: OpsbotError) -> str:
    """Plain text (already safe for mrkdwn) telling an operator what happened and what to do."""
    if isinstance(exc, UsageError):
        return f":warning: {exc.problem}\n{exc.usage}"
    if isinstance(exc, NotAllowed):
        return f":no_entry: Not allowed: {exc.reason}. This refusal is recorded in the audit log."
    if isinstance(exc, AlreadyHandled):
        who = f"<@{exc.by}>" if exc.by else "the bot"
        return f":information_source: Already handled ({exc.status}) by {who} at {_when(exc.at)}."
    if isinstance(exc, ApprovalExpired):
        return f":hourglass: This request expired at {_when(exc.expired_at)}; request it again."
    if isinstance(exc, UnknownApproval):
        return ":question: This approval is unknown to the bot; request the action again."
    if isinstance(exc, BackendNotConfigured):
        return ":gear: The trading backend is not configured (TRADING_API_URL is not set)."
    if isinstance(exc, BackendError):
        return _backend_message(exc)
    # Imported late: these modules build on this one.
    from bot.cosmos import CosmosError
    from bot.github_errors import GitHubError, github_message

    if isinstance(exc, GitHubError):
        return github_message(exc)
    if isinstance(exc, CosmosError):
        return f":file_cabinet: Cosmos: {safe(exc.detail, 300)}"
    if isinstance(exc, StoreUnavailable):
        return ":floppy_disk: The bot's store is unavailable (locked or unreachable); nothing was done. Try again."
    return ":x: The request failed; nothing was done."


def _backend_message(exc: BackendError) -> str:
    status = f"HTTP {exc.status}" if exc.status else "no answer"
    kind = "unavailable" if exc.retryable else "refused the request"
    detail = safe(exc.detail, 300)
    return f":rotating_light: Trading backend {kind} ({status}: {detail}). Request id `{exc.request_id}`."
