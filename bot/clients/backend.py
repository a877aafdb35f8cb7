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

from bot.clients.backend_errors import BackendNotConfigured, BackendRejected, BackendUnavailable
from bot.clients.deadline import deadline_client, total_deadline
from bot.clients.tokens import TokenError, TokenSource

logger = logging.getLogger("opsbot.backend")

T = TypeVar("T")

RETRY_STATUSES = frozenset({502, 503, 504})
READ_BACKOFF_S = (0.1, 0.3)
WRITE_BACKOFF_S = (0.1,)


def plan_deadline(timeout_s: float, backoff: tuple[float, ...]) -> float:
    """The total deadline of one call: every attempt at its timeout plus the waits between them (2 s reads:
    6.5 s; 5 s writes: 10.2 s). Per-read timeouts alone never end a call whose answer trickles in."""
    return (len(backoff) + 1) * timeout_s + sum(backoff) + 0.1


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{what} is not an object")
    return value


def _bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{what} is not a boolean")
    return value


def _opt_str(value: Any, what: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{what} is not a string")
    return value


@dataclass(frozen=True)
class GlobalControl:
    halted: bool
    reason: str | None
    updated_at: str | None
    updated_by: str | None


@dataclass(frozen=True)
class ScopeControl:
    scope: str
    disabled: bool
    reason: str | None
    updated_at: str | None


@dataclass(frozen=True)
class TradingControl:
    global_: GlobalControl
    scopes: tuple[ScopeControl, ...]
    maintenance_enabled: bool
    maintenance_message: str | None
    revision: int
    # Contract keys the answer left out: tolerated for reading state, a FAIL for the gate's contract probe.
    missing: tuple[str, ...] = ()

    def is_halted(self, scope: str) -> bool:
        if scope == "global":
            return self.global_.halted
        return any(s.disabled for s in self.scopes if s.scope == scope)

    @classmethod
    def from_json(cls, doc: Any) -> TradingControl:
        """Parse the trading-control document; ValueError when its shape is not the contract's."""
        doc = _obj(doc, "trading-control")
        g = _obj(doc.get("global"), "global")
        glob = GlobalControl(
            _bool(g.get("halted"), "global.halted"),
            _opt_str(g.get("reason"), "reason"),
            _opt_str(g.get("updated_at"), "updated_at"),
            _opt_str(g.get("updated_by"), "updated_by"),
        )
        raw_scopes = doc.get("scopes", [])
        if not isinstance(raw_scopes, list):
            raise ValueError("scopes is not a list")
        scopes = []
        for item in raw_scopes:
            s = _obj(item, "scope entry")
            name = s.get("scope")
            if not isinstance(name, str) or not name:
                raise ValueError("scope entry has no scope")
            scopes.append(
                ScopeControl(
                    name,
                    _bool(s.get("disabled"), "disabled"),
                    _opt_str(s.get("reason"), "reason"),
                    _opt_str(s.get("updated_at"), "updated_at"),
                )
            )
        maintenance = _obj(doc.get("maintenance", {"enabled": False}), "maintenance")
        revision = doc.get("revision")
        if not isinstance(revision, int) or isinstance(revision, bool):
            raise ValueError("revision is not an integer")
        return cls(
            glob,
            tuple(scopes),
            _bool(maintenance.get("enabled"), "maintenance.enabled"),
            _opt_str(maintenance.get("message"), "maintenance.message"),
            revision,
            _missing_keys(doc),
        )


_CONTROL_KEYS = {
    "": ("global", "scopes", "maintenance", "revision"),
    "global": ("halted", "reason", "updated_at", "updated_by"),
    "maintenance": ("enabled", "message"),
}
_SCOPE_KEYS = ("scope", "disabled", "reason", "updated_at")


def _missing_keys(doc: dict[str, Any]) -> tuple[str, ...]:
    missing = []
    for parent, keys in _CONTROL_KEYS.items():
        part = doc.get(parent) if parent else doc
        if isinstance(part, dict):  # a missing parent is named once, above
            missing += [f"{parent}.{key}" if parent else key for key in keys if key not in part]
    for entry in doc.get("scopes", []):
        missing += [f"scopes[].{key}" for key in _SCOPE_KEYS if key not in entry]
    return tuple(dict.fromkeys(missing))


@dataclass(frozen=True)
class Health:
    status: str
    version: str
    surfaces: dict[str, str]

    @classmethod
    def from_json(cls, doc: Any) -> Health:
        doc = _obj(doc, "health")
        status, version = doc.get("status"), doc.get("version")
        if not isinstance(status, str) or not isinstance(version, str):
            raise ValueError("health has no status or version")
        surfaces = _obj(doc.get("surfaces", {}), "surfaces")
        return cls(status, version, {str(k): str(v) for k, v in surfaces.items()})


@dataclass(frozen=True)
class Reply(Generic[T]):
    data: T
    request_id: str
    echoed: bool  # the backend echoed our x-request-id, so its traces carry it
    status: int
    elapsed_ms: float  # whole call, retries and backoff included


def _document_with(key: str) -> Callable[[Any], dict[str, Any]]:
    def parse(doc: Any) -> dict[str, Any]:
        _obj(_obj(doc, "answer").get(key), key)
        return dict(doc)

    return parse


def _error_detail(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    return error if isinstance(error, str) and error else f"HTTP {response.status_code}"


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
        return self._call("GET", "/api/health", Health.from_json, request_id=request_id)

    def trading_control(self, *, request_id: str) -> Reply[TradingControl]:
        return self._call("GET", "/api/trading-control", TradingControl.from_json, request_id=request_id)

    def feature_flags(self, *, request_id: str) -> Reply[dict[str, Any]]:
        """The document as answered: `{"flags": {key: {"enabled", "description"}}}`."""
        return self._call("GET", "/api/feature-flags", _document_with("flags"), request_id=request_id)

    def dynamic_config(self, *, request_id: str) -> Reply[dict[str, Any]]:
        """The document as answered: `{"revision": int, "values": {...}}`."""
        return self._call("GET", "/api/dynamic-config", _document_with("values"), request_id=request_id)

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
        except ValueError as exc:
            logger.warning("unexpected answer from backend (%s) request_id=%s", exc, request_id)
            raise BackendUnavailable("unexpected answer", request_id=request_id, status=status) from exc
        return Reply(data, request_id, echoed, status, elapsed_ms)


def _transport_detail(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    if isinstance(exc, httpx.ConnectError):
        return "connection refused or unreachable"
    return f"connection dropped ({type(exc).__name__})"
