"""The simulated backend's `/metrics`: the trading monorepo's counters, in Prometheus text format.

Every series the runbook's monitoring queries read exists from the start (at zero), as a real
exporter would expose them, so `increase()` sees a drill's first bump. The backend counts its own
HTTP answers (`trading_http_responses_total{status}`), so the 401s it gives to bad tokens show up by
themselves; `ClientTraffic` stands for the people using the platform, so the faults a drill injects
move the counters the runbook watches (sign-in and token refresh failures, 5xx, websocket failures).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

Labels = tuple[tuple[str, str], ...]

HELP: dict[str, tuple[str, str]] = {
    "trading_auth_failures_total": ("counter", "Platform sign-in failures"),
    "trading_token_refresh_failures_total": ("counter", "Session token refresh failures"),
    "trading_http_responses_total": ("counter", "Backend HTTP responses by status"),
    "trading_websocket_connections_total": ("counter", "Websocket connection attempts by outcome"),
    "trading_dynamic_config_update_failures_total": ("counter", "Dynamic config writes that failed"),
    "trading_control_update_failures_total": ("counter", "Trading-control writes that failed"),
    "trading_mobile_state_reports_total": ("counter", "Mobile client state reports by state"),
    "trading_tenant_isolation_violations_total": ("counter", "Reads refused or caught crossing tenants"),
    "trading_stale_sessions_total": ("counter", "Sessions used after they should have expired"),
    "trading_web_chunk_bytes": ("gauge", "Size of the web app's largest JS chunk"),
}
INITIAL: dict[str, list[tuple[Labels, float]]] = {
    "trading_http_responses_total": [((("status", s),), 0.0) for s in ("200", "401", "403", "500")],
    "trading_websocket_connections_total": [((("outcome", "ok"),), 0.0), ((("outcome", "failed"),), 0.0)],
    "trading_mobile_state_reports_total": [((("state", s),), 0.0) for s in ("ok", "degraded", "offline")],
    "trading_web_chunk_bytes": [((("chunk", "main"),), 380_000.0)],
}
# The simulated clients, per second: steady enough that a drill crosses the runbook's thresholds
# (more than 10 sign-in failures in 5 min) within seconds of a 1 s scrape, and tests can count them.
SIGNINS_PER_S = 4
REFRESHES_PER_S = 2
REQUESTS_PER_S = 2
WEBSOCKETS_PER_S = 1


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class SimMetrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, dict[Labels, float]] = {name: {} for name in HELP}
        for name in HELP:
            for labels, value in INITIAL.get(name, [((), 0.0)]):
                self._values[name][labels] = value

    def bump(self, name: str, by: float = 1.0, **labels: str) -> None:
        """Raise a counter (or move a gauge) by `by`; KeyError for a name the backend does not expose."""
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self._values[name]
            series[key] = series.get(key, 0.0) + by

    def set(self, name: str, value: float, **labels: str) -> None:
        with self._lock:
            self._values[name][tuple(sorted(labels.items()))] = value

    def value(self, name: str, **labels: str) -> float:
        with self._lock:
            return self._values[name].get(tuple(sorted(labels.items())), 0.0)

    def response(self, status: int) -> None:
        self.bump("trading_http_responses_total", status=str(status))

    def text(self) -> bytes:
        lines: list[str] = []
        with self._lock:
            for name, (kind, help_) in HELP.items():
                lines += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]
                for labels, value in sorted(self._values[name].items()):
                    shown = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                    lines.append(f"{name}{{{shown}}} {value:g}" if shown else f"{name} {value:g}")
        return ("\n".join(lines) + "\n").encode()


class ClientFaults(Protocol):
    """What of the backend's fault switches (rehearsal.sim.backend.Faults) the clients meet."""

    signins_failing: bool
    fail_status: int | None
    fail_times: int | None
    drop_connection: bool


class ClientTraffic:
    """The platform's users, so a drill's fault shows in `/metrics` the way it would in production.

    Every whole second they sign in, refresh session tokens, call the API and open websockets; what
    fails depends on the faults at that time. Counted lazily (when `/metrics` is read, and by a drill
    just before it changes a fault), so there is no thread and a test can drive it with its own clock.
    """

    def __init__(self, metrics: SimMetrics, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._metrics = metrics
        self._clock = clock
        self._lock = threading.Lock()
        self._last = clock()

    def advance(self, faults: ClientFaults) -> int:
        """Count the whole seconds since the last call under `faults`; returns how many."""
        with self._lock:
            seconds = int(self._clock() - self._last)
            self._last += seconds  # the fraction left over is counted next time
        if seconds <= 0:
            return 0
        if faults.signins_failing:
            self._metrics.bump("trading_auth_failures_total", SIGNINS_PER_S * seconds)
            self._metrics.bump("trading_token_refresh_failures_total", REFRESHES_PER_S * seconds)
        # A countdown (`fail_times`) aims at the bot's next requests in a test, not at everyone.
        failing = faults.fail_times is None and (faults.drop_connection or faults.fail_status is not None)
        if not failing:
            self._metrics.bump("trading_http_responses_total", REQUESTS_PER_S * seconds, status="200")
        elif not faults.drop_connection:  # a dropped connection has no status to count
            self._metrics.bump("trading_http_responses_total", REQUESTS_PER_S * seconds, status=str(faults.fail_status))
        self._metrics.bump(
            "trading_websocket_connections_total", WEBSOCKETS_PER_S * seconds, outcome="failed" if failing else "ok"
        )
        return seconds
