"""What a probe may use during one gate evaluation, with shared lookups done once.

Several probes need the deployed version (`GET /api/health`) or the check runs of one commit; the
first probe to ask does the call and the others wait for its answer (`Once`), so a gate makes one
health call and one GitHub call whatever the number of CI checks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import httpx
from sqlalchemy import Engine

from bot.audit.log import AuditLog
from bot.clients.backend import Health, Reply, TradingBackend
from bot.clients.backend_errors import BackendError
from bot.clients.cosmos import CosmosReader
from bot.clients.github import CheckRun, GitHub
from bot.clients.tokens import TokenSource
from bot.gate.composite import Evidence
from bot.gate.engine import AttestationView
from bot.gate.store import GateStore
from bot.runbook.model import Runbook
from bot.settings import Settings

T = TypeVar("T")


class Once:
    """Per-key single flight: the first caller computes, later callers get the same result or error."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._futures: dict[str, Future[Any]] = {}

    def get(self, key: str, compute: Callable[[], T]) -> T:
        with self._lock:
            future = self._futures.get(key)
            owner = future is None
            if future is None:
                future = self._futures[key] = Future()
        if owner:
            try:
                future.set_result(compute())
            except BaseException as exc:
                future.set_exception(exc)
        result: T = future.result()
        return result

    def peek(self, key: str) -> Future[Any] | None:
        """The finished computation of `key`, or None while it runs (or never started): never blocks."""
        with self._lock:
            future = self._futures.get(key)
        return future if future is not None and future.done() else None


@dataclass
class GateContext:
    settings: Settings
    runbook: Runbook
    backend: TradingBackend
    github: GitHub
    http: httpx.Client
    tokens: TokenSource | None
    cosmos: CosmosReader | None
    audit: AuditLog
    engine: Engine
    store: GateStore
    request_id: str
    now: datetime
    deadline_at: float  # time.monotonic() by which the whole evaluation ends
    once: Once = field(default_factory=Once)

    def remaining(self, cap: float = 10.0) -> float:
        """Seconds left before the deadline (at least a little, at most `cap`): a per-call timeout."""
        return max(0.05, min(cap, self.deadline_at - time.monotonic()))

    def health(self) -> Reply[Health]:
        """`GET /api/health`, once per evaluation; raises BackendError."""
        return self.once.get("health", lambda: self.backend.health(request_id=self.request_id))

    def version(self) -> tuple[str | None, str]:
        """(deployed version, "") or (None, why it is unknown)."""
        try:
            return self.health().data.version, ""
        except BackendError as exc:
            return None, plain(exc.operator_text())

    def version_if_known(self) -> tuple[str | None, str]:
        """Like `version()` but never waits: after the deadline a hanging health call is "timed out"."""
        if self.once.peek("health") is None:
            return None, "GET /api/health did not answer before the deadline"
        return self.version()

    def check_runs(self, sha: str) -> list[CheckRun]:
        """The check runs of `sha`, once per evaluation; raises GitHubError."""
        # Not waited out: a secondary rate limit is reported as such before the gate's deadline.
        return self.once.get(f"check-runs:{sha}", lambda: self.github.without_waits().check_runs(sha))

    def attestations(self, version: str) -> dict[str, AttestationView]:
        return self.once.get(f"attestations:{version}", lambda: self.store.attestations(version))

    def evidence(self) -> Evidence:
        """Stored evidence for the composite probes (go-gate, smoke-checklist)."""
        version, problem = self.version()
        latest = self.store.latest_for_version(version) if version else None
        attestations = self.attestations(version) if version else {}
        return Evidence(
            version, latest, attestations, self.now, timedelta(seconds=self.settings.gate_max_age_seconds), problem
        )


def plain(message: str) -> str:
    """An operator message without its leading emoji code."""
    head, _, rest = message.partition(" ")
    return rest if head.startswith(":") and head.endswith(":") and rest else message
