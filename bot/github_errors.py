"""Typed errors of the GitHub client (CONTRACT.md §7), and how an operator is told about them."""

from __future__ import annotations

from datetime import datetime

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


class GitHubNotConfigured(GitHubError):
    def __init__(self, detail: str = "GITHUB_REPOSITORY is not set (owner/name of the monorepo)") -> None:
        super().__init__(detail)


class GitHubAuthError(GitHubError):
    """401 (bad or missing GITHUB_TOKEN) or 403 (the token lacks a permission)."""


class GitHubNotFound(GitHubError):
    """404: wrong repository, sha, workflow file, or a token that cannot see a private repository."""


class GitHubRateLimited(GitHubError):
    """403/429 with `x-ratelimit-remaining: 0` (or `retry-after`); `reset_at` is when to try again."""

    retryable = True

    def __init__(self, detail: str, status: int | None, reset_at: datetime | None) -> None:
        super().__init__(detail, status)
        self.reset_at = reset_at


class GitHubUnavailable(GitHubError):
    """5xx, timeout, refused or dropped connection, or an answer not in GitHub's shape."""

    retryable = True


def github_message(exc: GitHubError) -> str:
    """Plain text, safe for mrkdwn, telling an operator what GitHub answered and what to do."""
    detail = safe(exc.detail, 300)
    if isinstance(exc, GitHubNotConfigured):
        return f":gear: GitHub is not configured: {detail}."
    if isinstance(exc, GitHubRateLimited):
        when = exc.reset_at.strftime("%H:%M:%S UTC") if exc.reset_at else "a few minutes"
        return f":hourglass: GitHub rate limit reached; try again after {when}."
    if isinstance(exc, GitHubAuthError):
        return f":lock: GitHub refused the bot's token (HTTP {exc.status}: {detail}); check GITHUB_TOKEN."
    if isinstance(exc, GitHubNotFound):
        return f":mag: GitHub has no such resource ({detail}); check GITHUB_REPOSITORY and the workflow name."
    status = f"HTTP {exc.status}" if exc.status else "no answer"
    return f":rotating_light: GitHub unavailable or refused ({status}: {detail})."
