"""Typed errors of the trading backend client, what the audit row says of them, and how they read."""

from __future__ import annotations

import re

from bot.errors import OpsbotError
from bot.text import clip, safe


class BackendError(OpsbotError):
    """A call to the trading backend did not give a usable answer."""

    retryable = False

    def __init__(self, detail: str, *, request_id: str, status: int | None = None, sent: bool = True) -> None:
        super().__init__(detail)
        self.detail = detail
        self.request_id = request_id
        self.status = status
        self.sent = sent  # False only when no attempt can have reached the backend (refused at connect, no token)

    def operator_text(self) -> str:
        return _backend_message(self)


class BackendNotConfigured(BackendError):
    def __init__(self, *, request_id: str) -> None:
        super().__init__("TRADING_API_URL is not set", request_id=request_id, sent=False)

    def operator_text(self) -> str:
        return ":gear: The trading backend is not configured (TRADING_API_URL is not set)."


class BackendUnavailable(BackendError):
    """Connection refused, timed out or a 5xx: the write may be retried with the same idempotency key."""

    retryable = True


class BackendRejected(BackendError):
    """A 4xx: retrying the same request will not help."""


# The backend's error text is shown and audited, but never a bearer token or JWT it might echo back.
_SECRETISH = re.compile(r"(?i)(bearer\s+)\S+|eyJ[\w-]+\.[\w-]+\.[\w-]*")


# Auth settings an admin checks on a 401: names only, never their values.
AUTH_SETTINGS = (
    "`PLATFORM_SERVICE_TOKEN`, or `PLATFORM_TOKEN_URL` with `OPSBOT_CLIENT_ID`/`OPSBOT_CLIENT_SECRET`, "
    "or `JWT_SECRET` (with `PLATFORM_JWT_ISSUER`)"
)


def _redacted(text: str) -> str:
    return _SECRETISH.sub(lambda m: (m.group(1) or "") + "[redacted]", text)


def may_have_applied(exc: BackendError) -> bool:
    """False when the backend surely did not act: a 4xx refusal, or a call that never reached it.
    A timeout, dropped connection or 5xx may come after the backend committed the change."""
    return exc.sent and not isinstance(exc, BackendRejected | BackendNotConfigured)


def backend_audit_detail(exc: BackendError) -> str:
    """Plain, bounded text for the audit row: status, whether a retry may help, and the backend's words."""
    status = f"HTTP {exc.status}" if exc.status else "no HTTP answer"
    retry = "retryable" if exc.retryable else "not retryable"
    applied = "may have applied" if may_have_applied(exc) else "not applied"
    return f"{status} ({retry}, {applied}): {clip(_redacted(exc.detail), 300)}; request id {exc.request_id}"


def _backend_message(exc: BackendError) -> str:
    detail = safe(_redacted(exc.detail), 300)
    rid = f" Request id `{safe(exc.request_id, 80)}`."
    status = exc.status
    if status == 401:
        return (
            f":closed_lock_with_key: The trading backend rejected the bot's own credentials (HTTP 401: "
            f"{detail}); it did not act. An admin should check the bot's backend auth settings: "
            f"{AUTH_SETTINGS}.{rid}"
        )
    if status == 403:
        return (
            f":no_entry_sign: The trading backend says the bot's identity lacks permission for this call "
            f"(HTTP 403: {detail}); it did not act. Grant the bot's service identity that permission on "
            f"the backend; retrying will not help.{rid}"
        )
    if status == 409:
        return (
            f":twisted_rightwards_arrows: The trading backend refused: this approval's idempotency key was "
            f"already used with a different request body, i.e. another request under the same approval id (HTTP "
            f"409: {detail}). Nothing was applied by this request; start a new request.{rid}"
        )
    if status is None and not exc.sent and exc.detail.startswith("no token for the backend"):
        return (
            f":closed_lock_with_key: The bot could not get a token for the trading backend ({detail}); "
            f"nothing was sent. Check {AUTH_SETTINGS}.{rid}"
        )
    code = f"HTTP {status}" if status else "no answer"
    if not exc.retryable:
        return (
            f":rotating_light: The trading backend refused the request ({code}: {detail}); it did "
            f"not act, and retrying the same request will not help.{rid}"
        )
    if status is not None:
        return f":rotating_light: The trading backend failed ({code}: {detail}).{rid}"
    if not may_have_applied(exc):
        return (
            f":rotating_light: The trading backend could not be reached (no answer: {detail}); nothing was sent.{rid}"
        )
    return f":rotating_light: The trading backend gave no usable answer (no answer: {detail}).{rid}"
