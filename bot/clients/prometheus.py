"""A client for the Prometheus HTTP API (`/api/v1/query`, `/api/v1/query_range`).

Works with anything that answers like Prometheus (Prometheus itself, Thanos, Mimir, VictoriaMetrics,
managed services): only the documented envelope `{"status", "data": {"resultType", "result"}}` is read.
Every failure is a typed `PromError` whose `detail` is operator-readable; an empty vector is
returned as no samples (the caller treats it as "no data", never as zero).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from bot.text import without_credentials

DEFAULT_TIMEOUT_S = 5.0


class PromError(Exception):
    """Prometheus could not answer the question; `detail` says why in plain words."""

    kind = "error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class PromUnavailable(PromError):
    kind = "unavailable"  # refused, reset, DNS: nothing answered


class PromTimeout(PromError):
    kind = "timeout"


class PromQueryError(PromError):
    """Prometheus answered `{"status": "error"}` (bad query, execution error, its own timeout)."""

    kind = "query_error"


class PromBadAnswer(PromError):
    kind = "bad_answer"  # not JSON, not Prometheus's shape, an HTTP error without an envelope


@dataclass(frozen=True)
class Sample:
    labels: Mapping[str, str]
    value: float  # may be NaN or ±Inf, exactly as Prometheus said


@dataclass(frozen=True)
class Series:
    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]  # (unix seconds, value)


@dataclass(frozen=True)
class Instant:
    """An instant query's answer: `vector` (any number of samples) or `scalar` (exactly one)."""

    result_type: str
    samples: tuple[Sample, ...]
    warnings: tuple[str, ...] = field(default_factory=tuple)


def duration(window: timedelta) -> str:
    """A PromQL duration: whole seconds, at least 1 s (`300s`)."""
    return f"{max(1, math.ceil(window.total_seconds()))}s"


class PromClient:
    def __init__(
        self,
        base_url: str,
        *,
        http: httpx.Client | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        token: str | None = None,
    ) -> None:
        # Basic-auth credentials may come inside the URL; they travel as a header and are never shown or logged.
        url = httpx.URL(base_url.rstrip("/"))
        self._auth = httpx.BasicAuth(url.username, url.password) if url.username else None
        self.base_url = without_credentials(str(url))
        self._timeout = timeout_s
        self._http = http if http is not None else httpx.Client()
        self._headers = {"Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"

    def query(self, promql: str, *, at: datetime | None = None) -> Instant:
        params: dict[str, str] = {"query": promql}
        if at is not None:
            params["time"] = f"{at.timestamp():.3f}"
        data = self._get("/api/v1/query", params)
        kind = data.get("resultType")
        result = data.get("result")
        if kind == "vector":
            return Instant("vector", tuple(_sample(item) for item in _list(result)), _warnings(data))
        if kind == "scalar":
            return Instant("scalar", (Sample({}, _point(result)[1]),), _warnings(data))
        raise PromBadAnswer(f"an instant query answered resultType {kind!r}; the signal needs a vector or scalar")

    def query_range(self, promql: str, *, start: datetime, end: datetime, step: timedelta) -> list[Series]:
        params = {
            "query": promql,
            "start": f"{start.timestamp():.3f}",
            "end": f"{end.timestamp():.3f}",
            "step": f"{max(step.total_seconds(), 0.001):g}",
        }
        data = self._get("/api/v1/query_range", params)
        if data.get("resultType") != "matrix":
            raise PromBadAnswer(f"a range query answered resultType {data.get('resultType')!r}, not matrix")
        return [_series(item) for item in _list(data.get("result"))]

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            response = self._http.get(
                self.base_url + path,
                params=params,
                headers=self._headers,
                timeout=self._timeout,
                auth=self._auth or httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TimeoutException:
            raise PromTimeout(f"Prometheus did not answer within {self._timeout:g} s") from None
        except httpx.TransportError as exc:
            raise PromUnavailable(f"Prometheus is unreachable ({type(exc).__name__}: {exc})"[:300]) from None
        return _envelope(response)


def _envelope(response: httpx.Response) -> dict[str, Any]:
    """The `data` of a success envelope; a typed error for everything else."""
    try:
        body = response.json()
    except ValueError:
        raise PromBadAnswer(f"Prometheus answered HTTP {response.status_code} without JSON") from None
    if not isinstance(body, dict) or body.get("status") not in ("success", "error"):
        raise PromBadAnswer(f"HTTP {response.status_code}: not a Prometheus API answer")
    if body["status"] == "error":
        kind = str(body.get("errorType") or "error")
        raise PromQueryError(
            f"Prometheus refused the query ({kind}, HTTP {response.status_code}): {str(body.get('error') or '')[:300]}"
        )
    data = body.get("data")
    if response.status_code != 200 or not isinstance(data, dict):
        raise PromBadAnswer(f"HTTP {response.status_code}: a success answer without data")
    return data


def _warnings(data: Mapping[str, Any]) -> tuple[str, ...]:
    raw = data.get("warnings")
    return tuple(str(w) for w in raw) if isinstance(raw, list) else ()


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise PromBadAnswer("the result is not a list")
    return value


def _labels(item: Any) -> dict[str, str]:
    if not isinstance(item, dict) or not isinstance(item.get("metric", {}), dict):
        raise PromBadAnswer("a result entry without a metric object")
    return {str(k): str(v) for k, v in item.get("metric", {}).items()}


def _point(value: Any) -> tuple[float, float]:
    """`[<unix seconds>, "<value>"]`; Prometheus sends values as strings ("NaN", "+Inf" included)."""
    if not isinstance(value, list) or len(value) != 2:
        raise PromBadAnswer("a sample is not [time, value]")
    try:
        return float(value[0]), float(value[1])
    except (TypeError, ValueError):
        raise PromBadAnswer(f"a sample value is not a number: {str(value[1])[:40]!r}") from None


def _sample(item: Any) -> Sample:
    labels = _labels(item)
    return Sample(labels, _point(item.get("value"))[1])


def _series(item: Any) -> Series:
    labels = _labels(item)
    return Series(labels, tuple(_point(p) for p in _list(item.get("values"))))
