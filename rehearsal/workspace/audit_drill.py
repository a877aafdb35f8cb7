"""The drill *Tamper with the audit*: someone with the database file rewrites history, as in the
threat model (docs/audit.md): drop the guard triggers, truncate the newest events or edit one
and re-hash the chain after it, put the triggers back. `opsbot audit verify`, shown in the page
with the channel's checkpoint lines as witnesses, then names what was done. Turning the drill off
puts the original rows back (events recorded meanwhile, chained onto forged ones, are dropped)."""

from __future__ import annotations

import importlib
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.exc import OperationalError

from bot.audit import cli as audit_cli
from bot.audit.checkpoint import COMPACT
from bot.audit.checkpointer import latest
from bot.audit.log import canonical, iso_at, sha256
from bot.audit.verify import read_witness
from bot.storage.errors import StoreUnavailable
from rehearsal.workspace.world import LocalWorld

KINDS = ("truncate", "rehash")
_GUARDED = ("audit_event", "audit_checkpoint")
_HASHED = (
    "seq",
    "team_id",
    "user_id",
    "action",
    "params",
    "params_hash",
    "outcome",
    "detail",
    "request_id",
    "approval_id",
    "channel",
    "replica",
    "prev_hash",
)


class AuditTamper:
    def __init__(self, world: LocalWorld) -> None:
        self._world = world
        self._saved: list[dict[str, Any]] | None = None  # the original rows from the cut on
        self._cut = 0

    @property
    def _path(self) -> str:
        return self._world.stack.deps.settings.database_url.removeprefix("sqlite:///")

    def unavailable(self) -> str | None:
        if not self._world.stack.deps.settings.is_sqlite:
            return "the workspace's store is not the embedded SQLite file"
        return None

    def set(self, kind: str, on: bool) -> None:
        if on and self._saved is None:
            self._tamper(kind)
        elif not on and self._saved is not None:
            self._restore()

    def _tamper(self, kind: str) -> None:
        newest = latest(self._world.stack.deps.engine)
        with _unguarded(self._path) as conn:
            head = int(conn.execute("SELECT coalesce(max(seq), 0) FROM audit_event").fetchone()[0])
            if head == 0:
                raise ValueError("the audit log is empty: run a command first")
            anchor = newest.seq if newest is not None else head
            self._cut = max(1, anchor - 1) if kind == "truncate" else anchor
            self._saved = [
                dict(r) for r in conn.execute("SELECT * FROM audit_event WHERE seq >= ? ORDER BY seq", (self._cut,))
            ]
            if kind == "truncate":  # the newest events, the last action's among them, are gone
                conn.execute("DELETE FROM audit_event WHERE seq >= ?", (self._cut,))
            else:
                _edit_and_rehash(conn, self._saved)

    def _restore(self) -> None:
        assert self._saved is not None
        with _unguarded(self._path) as conn:
            conn.execute("DELETE FROM audit_event WHERE seq >= ?", (self._cut,))
            for row in self._saved:
                names = ", ".join(row)
                conn.execute(
                    f"INSERT INTO audit_event ({names}) VALUES ({', '.join('?' for _ in row)})",  # noqa: S608
                    tuple(row.values()),
                )
        self._saved = None


def _edit_and_rehash(conn: sqlite3.Connection, rows: list[dict[str, Any]]) -> None:
    """Change the outcome of the first row to 'not_applied', then recompute every hash after it."""
    prev = rows[0]["prev_hash"]
    for i, original in enumerate(rows):
        row = {**original, "prev_hash": prev}
        if i == 0:
            row["outcome"], row["detail"] = "not_applied", "edited by hand"
        fields = {k: row[k] for k in _HASHED}
        fields["at"] = iso_at(row["at"])
        prev = sha256(canonical(fields))
        conn.execute(
            "UPDATE audit_event SET outcome = ?, detail = ?, prev_hash = ?, hash = ? WHERE seq = ?",
            (row["outcome"], row["detail"], row["prev_hash"], prev, row["seq"]),
        )


@contextmanager
def _unguarded(path: str) -> Iterator[sqlite3.Connection]:
    """The tamperer's move: drop the triggers, change rows, put the triggers back."""
    migration = importlib.import_module("bot.storage.migrations.versions.0007_audit_checkpoints")
    conn = sqlite3.connect(path, timeout=5)
    conn.row_factory = sqlite3.Row
    try:
        for table in _GUARDED:
            for verb in ("update", "delete"):
                conn.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
        yield conn
    except BaseException:
        conn.rollback()
        raise
    finally:  # the guards come back whatever happened
        for table in _GUARDED:
            for statement in migration.sqlite_guards(table):
                conn.execute(statement)
        conn.commit()
        conn.close()


def verify_lines(world: LocalWorld, messages: list[dict[str, Any]]) -> list[str]:
    """`opsbot audit verify` with the channel's checkpoint lines as witnesses, as the page shows it."""
    deps = world.stack.deps
    lines = [found[0] for m in messages for found in COMPACT.finditer(json.dumps(m, ensure_ascii=False))]
    witnesses = read_witness(lines, "the channel")
    assert deps.checkpoints is not None
    keys = {deps.checkpoints.key_id: deps.checkpoints.public_key}
    try:
        report, newest = audit_cli.check_store(deps.engine, witnesses, keys)
    except (StoreUnavailable, OperationalError) as exc:  # the Store down drill: the page shows the rest
        return ["$ opsbot audit verify", f"opsbot: the store is unavailable ({type(exc).__name__})"]
    return ["$ opsbot audit verify", *audit_cli.report_lines(report, "audit chain", newest=newest)]
