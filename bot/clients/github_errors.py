"""Typed errors of the GitHub client (the GitHub calls), and how an operator is told about them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx

from bot.errors import OpsbotError
from bot.text import safe


class GitHubError(OpsbotError):
    """GitHub did not give a usable answer; `status` is the HTTP status when there was one.

    Used as is for other 4xx answers (e.g. 422 for a dispatch with an unknown ref)."""

    retryable = False

    def __init__(self, detail: str, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status

    def operator_text(self) -> str:
        return github_message(self)


class GitHubNotConfigured(GitHubError):
    def __init__(self, detail: str = "GITHUB_REPOSITORY is not set (owner/name of the monorepo)") -> None:
        super().__init__(detail)


class GitHubAuthError(GitHubError):
    """401 (bad or missing GITHUB_TOKEN) or 403 (the token lacks a permission)."""


class GitHubNotFound(GitHubError):
    """404: wrong repository, sha, workflow file, or a token that cannot see a private repository."""


class GitHubRateLimited(GitHubError):
    """403/429 with `x-ratelimit-remaining: 0` (the primary limit) or `retry-after`, or a 403/429 whose
    message names the secondary rate limit; `reset_at` is when to try again."""

    retryable = True

    def __init__(
        self,
        detail: str,
        status: int | None,
        reset_at: datetime | None,
        *,
        secondary: bool = False,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(detail, status)
        self.reset_at = reset_at
        self.secondary = secondary
        self.retry_after_s = retry_after_s


class GitHubUnavailable(GitHubError):
    """5xx, timeout, refused or dropped connection, or an answer not in GitHub's shape."""

    retryable = True


def github_message(exc: GitHubError) -> str:
    """Plain text, safe for mrkdwn, telling an operator what GitHub answered and what to do."""
    detail = safe(exc.detail, 300)
    if isinstance(exc, GitHubNotConfigured):
        return f":gear: GitHub is not configured: {detail}."
    if isinstance(exc, GitHubRateLimited) and exc.secondary:
        when = exc.reset_at.strftime("%H:%M:%S UTC") if exc.reset_at else "a minute"
        return (
            f":hourglass: GitHub's secondary rate limit (too many requests in a short time) held the bot "
            f"back; it waited and will go on after {when}. The token is fine."
        )
    if isinstance(exc, GitHubRateLimited):
        when = exc.reset_at.strftime("%H:%M:%S UTC") if exc.reset_at else "a few minutes"
        return f":hourglass: GitHub rate limit reached; try again after {when}."
    if isinstance(exc, GitHubAuthError):
        return f":lock: GitHub refused the bot's token (HTTP {exc.status}: {detail}); check GITHUB_TOKEN."
    if isinstance(exc, GitHubNotFound):
        return f":mag: GitHub has no such resource ({detail}); check GITHUB_REPOSITORY and the workflow name."
    if exc.status == 422:
        return (
            f":no_entry: GitHub refused the request as invalid (HTTP 422: {detail}); check the workflow's "
            "declared inputs and that the ref exists."
        )
    status = f"HTTP {exc.status}" if exc.status else "no answer"
    return f":rotating_light: GitHub unavailable or refused ({status}: {detail})."


# GitHub's secondary-limit refusals say so in the message ("You have exceeded a secondary rate limit").
_SECONDARY = re.compile(r"secondary rate limit", re.IGNORECASE)


def error_for(response: httpx.Response) -> GitHubError | None:
    """The typed error for a GitHub answer, None for a 2xx."""
    status = response.status_code
    if 200 <= status < 300:
        return None
    detail = _message(response)
    headers = response.headers
    retry_after = _seconds(headers.get("retry-after"))
    if status in (403, 429) and _SECONDARY.search(detail):
        return GitHubRateLimited(detail, status, _reset_at(headers), secondary=True, retry_after_s=retry_after)
    if status == 429 or (status == 403 and (headers.get("x-ratelimit-remaining") == "0" or retry_after is not None)):
        return GitHubRateLimited(detail, status, _reset_at(headers), retry_after_s=retry_after)
    if status in (401, 403):
        return GitHubAuthError(detail, status)
    if status == 404:
        return GitHubNotFound(detail, status)
    if status >= 500:
        return GitHubUnavailable(detail, status)
    return GitHubError(detail, status)


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _reset_at(headers: httpx.Headers) -> datetime | None:
    retry_after = _seconds(headers.get("retry-after"))
    if retry_after is not None:
        return datetime.now(UTC) + timedelta(seconds=retry_after)
    try:
        if headers.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in headers:
            return datetime.fromtimestamp(int(headers["x-ratelimit-reset"]), UTC)
    except (ValueError, OverflowError):
        pass
    return None


def _message(response: httpx.Response) -> str:
    try:
        message = response.json().get("message")
    except (ValueError, AttributeError):
        message = None
    return message if isinstance(message, str) and message else f"HTTP {response.status_code}"
