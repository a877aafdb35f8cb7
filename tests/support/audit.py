"""Tampering with the audit tables as someone with the database file would: drop the guard triggers,
change rows, put the triggers back."""

from __future__ import annotations

import importlib
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

_MIGRATION = importlib.import_module("bot.storage.migrations.versions.0007_audit_checkpoints")
TABLES: tuple[str, ...] = _MIGRATION.GUARDED


@contextmanager
def unguarded(path: str) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(path.removeprefix("sqlite:///"))
    try:
        for table in TABLES:
            conn.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            conn.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
        yield conn
        for table in TABLES:
            for statement in _MIGRATION.sqlite_guards(table):
                conn.execute(statement)
        conn.commit()
    finally:
        conn.close()
