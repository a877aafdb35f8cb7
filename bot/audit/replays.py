"""Replays of signed Slack requests: taken once, acknowledged and ignored after that, on every replica.

A request is identified by its `X-Slack-Request-Timestamp` and `X-Slack-Signature` (a replay is the
same bytes sent again; a real retry from Slack is signed afresh). Bolt refuses anything older than
five minutes, so a key only has to be remembered for that long. Two layers: a bounded in-memory set
answers a replay on the same replica without touching the store (the HTTP thread never waits for
it), and a primary-key row in the store decides across replicas, off the request thread.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from contextvars import ContextVar
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from bot.audit.log import Actor, AuditLog, Entry
from bot.storage.db import transaction, utcnow
from bot.storage.models import SeenRequest

WINDOW_S = 5 * 60
FRONT_MAX = 20_000  # a few minutes of a busy workspace; the oldest fall out first

# The key of the request the current thread is serving, set by the HTTP router before Bolt runs the ack.
current_key: ContextVar[str | None] = ContextVar("opsbot_replay_key", default=None)


def request_key(timestamp: str, signature: str) -> str:
    return hashlib.sha256(f"{timestamp}:{signature}".encode()).hexdigest()


class Front:
    """The in-memory layer: keys seen in the last WINDOW_S seconds, at most FRONT_MAX of them."""

    def __init__(self, *, max_keys: int = FRONT_MAX) -> None:
        self._keys: OrderedDict[str, float] = OrderedDict()
        self._max = max_keys
        self._lock = threading.Lock()

    def first_sight(self, key: str) -> bool:
        """True the first time `key` is offered (and remembers it); False for a replay."""
        now = time.monotonic()
        with self._lock:
            while self._keys and (len(self._keys) >= self._max or next(iter(self._keys.values())) < now - WINDOW_S):
                self._keys.popitem(last=False)
            if key in self._keys:
                return False
            self._keys[key] = now
            return True


class ReplayStore:
    """The shared layer: one row per signed request taken."""

    def __init__(self, engine: Engine, audit: AuditLog) -> None:
        self._engine = engine
        self._audit = audit

    def claim(self, key: str, *, now: datetime | None = None) -> bool:
        """True if this replica is the first to take the request; False if it is a replay."""
        try:
            with transaction(self._engine) as session:
                session.add(SeenRequest(key=key, seen_at=now or utcnow(), replays=0))
                session.flush()
        except IntegrityError:
            return False
        return True

    def note_replay(self, key: str, entry: Entry) -> bool:
        """Count one replay of `key`; audit the first one only (a flood of copies is one row)."""
        with transaction(self._engine) as session:
            mine = update(SeenRequest).where(col(SeenRequest.key) == key, col(SeenRequest.replays) == 0)
            result = session.execute(mine.values(replays=col(SeenRequest.replays) + 1))
            first = int(getattr(result, "rowcount", 0)) == 1
            if not first:
                session.execute(
                    update(SeenRequest).where(col(SeenRequest.key) == key).values(replays=col(SeenRequest.replays) + 1)
                )
            else:
                self._audit.append(session, entry)
        return first

    def prune(self, *, now: datetime | None = None) -> int:
        cutoff = (now or utcnow()) - timedelta(seconds=2 * WINDOW_S)
        with transaction(self._engine) as session:
            result = session.execute(delete(SeenRequest).where(col(SeenRequest.seen_at) < cutoff))
        return int(getattr(result, "rowcount", 0))


def replay_entry(key: str, *, actor: Actor, what: str, channel: str = "") -> Entry:
    return Entry(
        actor,
        "request.replayed",
        "ignored",
        {"key": key[:16], "request": what[:80]},
        "",
        "",
        channel,
        "a signed request already taken was sent again; acknowledged and ignored",
    )
