"""Leader election: exactly one bot process runs the watchers.

On PostgreSQL the leader holds a session-level advisory lock on a dedicated connection it keeps open.
When the process dies its connection closes and PostgreSQL releases the lock at once; a process that
hangs or is cut off is dropped by TCP keepalives (set on both ends: about 11 s), after which the lock
is free. Candidates try the lock every `OPSBOT_LEADER_POLL_SECONDS`, so a new leader takes over within
one poll interval of the old leader's death (plus the keepalive time when its host vanished).

Each new leader increments `monitoring_leader.term` on the lock connection; a watcher pass is recorded
(`watcher_run`) only if its term is still the current one, and the leader proves its session (and so
its lock) is alive by a heartbeat on that connection before every pass. On SQLite there is one
process: it is always the leader (term 0).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Protocol

import psycopg
from sqlalchemy.engine import make_url

from bot.audit.log import AuditLog
from bot.monitoring.store import system_entry
from bot.storage.db import normalise_url

log = logging.getLogger("opsbot.leader")

# Any constant works (the audit chain uses 7_314_159_265); it names the watchers' leadership.
LEADER_LOCK = 7_314_159_266
KEEPALIVE = "keepalives=1 keepalives_idle=5 keepalives_interval=2 keepalives_count=3"
SESSION = (
    "SET tcp_keepalives_idle = 5",
    "SET tcp_keepalives_interval = 2",
    "SET tcp_keepalives_count = 3",
    "SET statement_timeout = '5s'",
)
_BUMP = (
    "INSERT INTO monitoring_leader (id, term, replica, acquired_at, heartbeat_at) "
    "VALUES (1, 1, %(replica)s, now(), now()) ON CONFLICT (id) DO UPDATE SET "
    "term = monitoring_leader.term + 1, replica = EXCLUDED.replica, acquired_at = now(), heartbeat_at = now() "
    "RETURNING term"
)
_BEAT = "UPDATE monitoring_leader SET heartbeat_at = now() WHERE id = 1 AND term = %(term)s"


class Elector(Protocol):
    def ensure(self) -> int | None:
        """The leadership term if this process leads now (acquiring it if free), else None."""

    def release(self) -> None:
        """Give leadership up (on stop)."""


class SingleProcess:
    """SQLite: the bot's one process runs the watchers."""

    def ensure(self) -> int | None:
        return 0

    def release(self) -> None:
        return None


def conninfo(database_url: str) -> str:
    """The libpq URI of a SQLAlchemy URL (`postgresql+psycopg://…` → `postgresql://…`)."""
    return make_url(normalise_url(database_url)).set(drivername="postgresql").render_as_string(hide_password=False)


class PgElector:
    def __init__(
        self,
        database_url: str,
        *,
        replica: str,
        audit: AuditLog | None = None,
        key: int = LEADER_LOCK,
        connect_timeout: int = 5,
    ) -> None:
        self._conninfo = conninfo(database_url)
        self.replica = replica
        self._audit = audit
        self._key = key
        self._timeout = connect_timeout
        self._conn: psycopg.Connection[Any] | None = None
        self.term: int | None = None

    def ensure(self) -> int | None:
        try:
            conn = self._connection()
            if self.term is not None:
                if conn.execute(_BEAT, {"term": self.term}).rowcount == 1:
                    return self.term
                self._lost("another process holds a newer term")
                return None
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self._key,)).fetchone()
            if not row or not row[0]:
                return None
            bumped = conn.execute(_BUMP, {"replica": self.replica}).fetchone()
            self.term = int(bumped[0]) if bumped else None
        except psycopg.Error as exc:
            self._lost(f"{type(exc).__name__}: {exc}"[:300])
            return None
        log.info("replica %s leads the watchers (term %s)", self.replica, self.term)
        self._record("monitoring.leader_acquired", {"replica": self.replica, "term": self.term})
        return self.term

    def release(self) -> None:
        if self._conn is not None and self.term is not None:
            try:
                self._conn.execute("SELECT pg_advisory_unlock(%s)", (self._key,))
            except psycopg.Error:
                log.info("unlock failed; closing the connection releases it")
        self._close()
        self.term = None

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self.term = None  # a new session holds no lock
            info = psycopg.conninfo.make_conninfo(
                self._conninfo, connect_timeout=self._timeout, application_name=f"opsbot-leader {self.replica}"[:63]
            )
            self._conn = psycopg.connect(f"{info} {KEEPALIVE}", autocommit=True)
            for statement in SESSION:
                self._conn.execute(statement)
        return self._conn

    def _lost(self, why: str) -> None:
        if self.term is not None:
            log.warning("replica %s stops leading (term %s): %s", self.replica, self.term, why)
            self._record("monitoring.leader_lost", {"replica": self.replica, "term": self.term}, why)
        self.term = None
        self._close()

    def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    def _record(self, action: str, params: dict[str, Any], detail: str = "") -> None:
        if self._audit is None:
            return
        try:
            self._audit.record(system_entry(action, "accepted", params, detail=detail))
        except Exception:  # the audit store may be what failed; leadership goes on regardless
            log.warning("could not audit %s", action)
