"""The local Slack peer's memory of calls, and the faults it was told to answer with next.

Separate from the server so tests and rehearsals can wait on calls from any thread without
knowing anything about HTTP.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Json = dict[str, Any]


class SlackError(Exception):
    """A Slack API error: the `error` string of an `{"ok": false}` answer, with its HTTP status."""

    def __init__(self, error: str, status: int = 200, *, extra: Json | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.extra = extra or {}  # fields Slack adds to some refusals (needed/provided, response_metadata)


@dataclass(frozen=True)
class ApiCall:
    method: str
    args: dict[str, Any]
    token: str | None
    at: float
    answer: dict[str, Any] | None = None  # what the peer answered (Web API calls), for contract checks
    status: int | None = None


@dataclass(frozen=True)
class Fault:
    """An answer to give instead of doing the method: Slack's error, and Retry-After for 429."""

    status: int
    error: str
    retry_after: int | None = None


class CallLog:
    """Thread-safe list of calls; waiters wake on every new call instead of sleeping blindly."""

    def __init__(self) -> None:
        self._changed = threading.Condition()  # guards _calls and _faults
        self._calls: list[ApiCall] = []
        self._faults: dict[str, deque[Fault]] = {}

    def record(self, call: ApiCall) -> None:
        with self._changed:
            self._calls.append(call)
            self._changed.notify_all()

    def snapshot(self) -> list[ApiCall]:
        with self._changed:
            return list(self._calls)

    def wait_for(self, predicate: Callable[[list[ApiCall]], bool], timeout: float) -> list[ApiCall]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                snapshot = list(self._calls)
                if predicate(snapshot):
                    return snapshot
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out after {timeout}s; calls so far:\n{summary(snapshot)}")
                self._changed.wait(min(remaining, 0.05))

    def add_faults(self, method: str, fault: Fault, times: int) -> None:
        with self._changed:
            self._faults.setdefault(method, deque()).extend([fault] * times)

    def next_fault(self, method: str, *, only_status: int | None = None) -> Fault | None:
        """The next fault for `method` (only if its status is `only_status`, when given), used up."""
        with self._changed:
            pending = self._faults.get(method)
            if not pending or (only_status is not None and pending[0].status != only_status):
                return None
            return pending.popleft()


def summary(calls: list[ApiCall], limit: int = 40) -> str:
    """The last `limit` calls, one a line, for assertion messages."""
    if not calls:
        return "  (no calls)"
    lines = [f"  {c.method} {json.dumps(c.args, default=str)[:200]}" for c in calls[-limit:]]
    skipped = len(calls) - limit
    return "\n".join(([f"  ... {skipped} earlier calls"] if skipped > 0 else []) + lines)
