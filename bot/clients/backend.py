"""Client of the trading backend (the trading backend's API): typed answers, typed errors, bounded retries.

Reads are retried on connection failures, timeouts and 502/503/504; writes carry an
Idempotency-Key, so they are retried once when the request surely did not reach a handler
(connect failure) or the gateway said so (502/503/504). 4xx answers are never retried.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx
from pydantic import ValidationError

from bot.clients.answers import refusal
from bot.clients.backend_errors import BackendNotConfigured, BackendRejected, BackendUnavailable
from bot.clients.backend_models import (
    ConfigAnswer,
    ErrorAnswer,
    FlagsAnswer,
    GlobalControl,
    Health,
    ScopeControl,
    TradingControl,
    document,
)
from bot.clients.deadline import deadline_client, total_deadline
from bot.clients.tokens import TokenError, TokenSource

# The answers' types are part of this client's interface; they are defined beside it.
__all__ = ["GlobalControl", "Health", "Reply", "ScopeControl", "TradingBackend", "TradingControl", "plan_deadline"]

logger = logging.getLogger("opsbot.backend")

T = TypeVar("T")

RETRY_STATUSES = frozenset({502, 503, 504})
READ_BACKOFF_S = (0.1, 0.3)
WRITE_BACKOFF_S = (0.1,)


def plan_deadline(timeout_s: float, backoff: tuple[float, ...]) -> float:
    """The total deadline of one call: every attempt at its timeout plus the waits between them (2 s reads:
    6.5 s; 5 s writes: 10.2 s). Per-read timeouts alone never end a call whose answer trickles in."""
    return (len(backoff) + 1) * timeout_s + sum(backoff) + 0.1


@dataclass(frozen=True)
class Reply(Generic[T]):
    data: T
    request_id: str
    echoed: bool  # the backend echoed our x-request-id, so its traces carry it
    status: int
    elapsed_ms: float  # whole call, retries and backoff included


def _error_detail(response: httpx.Response) -> str:
    """The backend's own words (`{"error": str}`), else the status: a proxy's HTML page says nothing useful."""
    try:
        return ErrorAnswer.model_validate_json(response.content).error
    except ValidationError:
        return f"HTTP {response.status_code}"


class TradingBackend:
    def __init__(
        self,
        *,
        base_url: str | None,
        tokens: TokenSource | None,
        http: httpx.Client | None = None,
        read_timeout_s: float = 2.0,
        write_timeout_s: float = 5.0,
        connect_timeout_s: float = 1.0,
    ) -> None:
        self._base_url = base_url.rstrip("/") if base_url else None
        self._tokens = tokens
        self._owns_http = http is None
        self._http = http if http is not None else deadline_client()
        self._read_timeout = httpx.Timeout(read_timeout_s, connect=connect_timeout_s)
        self._write_timeout = httpx.Timeout(write_timeout_s, connect=connect_timeout_s)
        # The whole call, retries included: a backend trickling its answer cannot hold a worker longer.
        self._read_deadline_s = plan_deadline(read_timeout_s, READ_BACKOFF_S)
        self._write_deadline_s = plan_deadline(write_timeout_s, WRITE_BACKOFF_S)

    def health(self, *, request_id: str) -> Reply[Health]:
        return self._call("GET", "/api/health", Health.model_validate, request_id=request_id)

    def trading_control(self, *, request_id: str) -> Reply[TradingControl]:
        return self._call("GET", "/api/trading-control", TradingControl.from_json, request_id=request_id)

    def feature_flags(self, *, request_id: str) -> Reply[dict[str, Any]]:
        """The document as answered: `{"flags": {key: {"enabled", "description"}}}`."""
        return self._call("GET", "/api/feature-flags", document(FlagsAnswer), request_id=request_id)

    def dynamic_config(self, *, request_id: str) -> Reply[dict[str, Any]]:
        """The document as answered: `{"revision": int, "values": {...}}`."""
        return self._call("GET", "/api/dynamic-config", document(ConfigAnswer), request_id=request_id)

    def halt(
        self, *, scope: str, reason: str, actor: str, request_id: str, idempotency_key: str
    ) -> Reply[TradingControl]:
        body = {"scope": scope, "reason": reason, "actor": actor}
        return self._call(
            "POST",
            "/api/trading-control/halt",
            TradingControl.from_json,
            request_id=request_id,
            body=body,
            idempotency_key=idempotency_key,
        )

    def resume(
        self, *, scope: str, reason: str, actor: str, request_id: str, idempotency_key: str
    ) -> Reply[TradingControl]:
        body = {"scope": scope, "reason": reason, "actor": actor}
        return self._call(
            "POST",
            "/api/trading-control/resume",
            TradingControl.from_json,
            request_id=request_id,
            body=body,
            idempotency_key=idempotency_key,
        )

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def _call(
        self,
        method: str,
        path: str,
        parse: Callable[[Any], T],
        *,
        request_id: str,
        body: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Reply[T]:
        if self._base_url is None:
            raise BackendNotConfigured(request_id=request_id)
        with total_deadline(self._read_deadline_s if method == "GET" else self._write_deadline_s):
            return self._attempts(
                method, self._base_url + path, parse, request_id=request_id, body=body, idempotency_key=idempotency_key
            )

    def _attempts(
        self,
        method: str,
        url: str,
        parse: Callable[[Any], T],
        *,
        request_id: str,
        body: dict[str, Any] | None,
        idempotency_key: str | None,
    ) -> Reply[T]:
        headers = self._headers(request_id, idempotency_key)
        backoff = READ_BACKOFF_S if method == "GET" else WRITE_BACKOFF_S
        started, reached = time.monotonic(), False  # reached: some attempt may have got to a handler
        for attempt in range(len(backoff) + 1):
            try:
                response = self._http.request(
                    method,
                    url,
                    headers=headers,
                    json=body,
                    timeout=self._read_timeout if method == "GET" else self._write_timeout,
                )
            except httpx.TransportError as exc:
                never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                reached = reached or not never_sent
                error = BackendUnavailable(_transport_detail(exc), request_id=request_id, sent=reached)
                retry = method == "GET" or never_sent
            else:
                reached = True
                if response.status_code not in RETRY_STATUSES:
                    return self._reply(response, parse, request_id, started)
                error = BackendUnavailable(_error_detail(response), request_id=request_id, status=response.status_code)
                retry = True
            logger.warning(
                "backend %s %s failed (%s, status %s) request_id=%s attempt=%d",
                method,
                url,
                error.detail,
                error.status,
                request_id,
                attempt + 1,
            )
            if not retry or attempt == len(backoff):
                raise error
            time.sleep(backoff[attempt])
        raise AssertionError("unreachable: the loop returns or raises")

    def _headers(self, request_id: str, idempotency_key: str | None) -> dict[str, str]:
        headers = {"x-request-id": request_id, "accept": "application/json"}
        if idempotency_key is not None:
            headers["idempotency-key"] = idempotency_key
        if self._tokens is not None:
            try:
                headers["authorization"] = f"Bearer {self._tokens.token()}"
            except TokenError as exc:
                logger.warning("no backend token (%s) request_id=%s", exc.detail, request_id)
                kind = BackendUnavailable if exc.retryable else BackendRejected
                raise kind(f"no token for the backend: {exc.detail}", request_id=request_id, sent=False) from exc
        return headers

    def _reply(self, response: httpx.Response, parse: Callable[[Any], T], request_id: str, started: float) -> Reply[T]:
        status = response.status_code
        elapsed_ms = (time.monotonic() - started) * 1000
        echoed = response.headers.get("x-request-id") == request_id
        logger.info(
            "backend %s %s -> %d in %.0f ms request_id=%s echoed=%s",
            response.request.method,
            response.request.url.path,
            status,
            elapsed_ms,
            request_id,
            echoed,
        )
        if 400 <= status < 500:
            raise BackendRejected(_error_detail(response), request_id=request_id, status=status)
        if not 200 <= status < 300:
            raise BackendUnavailable(_error_detail(response), request_id=request_id, status=status)
        try:
            data = parse(response.json())
        except ValueError as exc:  # not JSON, or a ValidationError: not the documented shape
            what = refusal(exc) if isinstance(exc, ValidationError) else "not JSON"
            logger.warning("unexpected answer from backend (%s) request_id=%s", what, request_id)
            raise BackendUnavailable(f"unexpected answer ({what})", request_id=request_id, status=status) from exc
        return Reply(data, request_id, echoed, status, elapsed_ms)


def _transport_detail(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    if isinstance(exc, httpx.ConnectError):
        return "connection refused or unreachable"
    return f"connection dropped ({type(exc).__name__})"
