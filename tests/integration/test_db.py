"""The engine helpers: a locked or unreachable store is reported, not hung on; URLs; ping."""

from __future__ import annotations

import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import text

from bot.audit.log import SYSTEM, AuditLog, Entry
from bot.storage import db
from bot.storage.db import make_engine, normalise_url, ping, transaction
from bot.storage.errors import StoreUnavailable
from bot.storage.migrate import upgrade
from commands.errors import operator_message


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def exclusive_lock(url: str) -> Iterator[None]:
    """Another process holding the SQLite write lock (a backup tool, a stuck replica)."""
    conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def test_locked_sqlite_store_raises_store_unavailable_quickly(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 200)
    engine = make_engine(sqlite_url)
    upgrade(engine)
    audit = AuditLog(engine, replica="test")
    audit.record(Entry(SYSTEM, "halt.status", "accepted", {}))
    with exclusive_lock(sqlite_url):
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as caught:
            audit.record(Entry(SYSTEM, "halt.status", "accepted", {"during": "lock"}))
        assert time.monotonic() - started < 3.0
        assert "locked" in str(caught.value)
        assert "unavailable" in operator_message(caught.value)
        with pytest.raises(StoreUnavailable), transaction(engine) as session:
            session.execute(text("SELECT 1"))
    # Nothing half-written, and the store works again once the lock is gone.
    assert audit.count() == 1
    audit.record(Entry(SYSTEM, "halt.status", "accepted", {"after": "lock"}))
    assert audit.count() == 2 and audit.verify().ok
    engine.dispose()


def test_unreachable_postgres_raises_store_unavailable() -> None:
    engine = make_engine(f"postgresql://opsbot:opsbot@127.0.0.1:{closed_port()}/opsbot")
    with pytest.raises(StoreUnavailable), transaction(engine) as session:
        session.execute(text("SELECT 1"))
    engine.dispose()


def test_transaction_rolls_back_on_error_and_lets_non_store_errors_through(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    audit = AuditLog(engine, replica="test")
    with pytest.raises(RuntimeError, match="boom"), transaction(engine) as session:
        audit.append(session, Entry(SYSTEM, "halt.status", "accepted", {}))
        raise RuntimeError("boom")
    assert audit.count() == 0
    engine.dispose()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@h:5432/d", "postgresql+psycopg://u:p@h:5432/d"),
        ("postgresql://u:p@h/d?sslmode=require", "postgresql+psycopg://u:p@h/d?sslmode=require"),
        ("postgresql+psycopg://u:p@h/d", "postgresql+psycopg://u:p@h/d"),
        ("sqlite:///./opsbot.db", "sqlite:///./opsbot.db"),
    ],
)
def test_normalise_url(given: str, expected: str) -> None:
    assert normalise_url(given) == expected


def test_libpq_style_url_makes_a_psycopg_engine() -> None:
    engine = make_engine("postgres://u:p@127.0.0.1:5432/d")
    assert engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"
    engine.dispose()


def test_ping_true_on_a_live_store(db_url: str) -> None:
    engine = make_engine(db_url)
    assert ping(engine)
    engine.dispose()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://opsbot:opsbot@127.0.0.1:{port}/opsbot",
        "sqlite:////nonexistent-dir-{port}/opsbot.db",
    ],
)
def test_ping_false_when_unreachable(url: str) -> None:
    engine = make_engine(url.format(port=closed_port()))
    started = time.monotonic()
    assert ping(engine) is False
    assert time.monotonic() - started < 5.0
    engine.dispose()
