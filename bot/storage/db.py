"""Database engine: SQLite (embedded default, WAL) or PostgreSQL, and the transaction helper."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session

from bot.storage.errors import StoreUnavailable

# Every store call is bounded well inside Slack's 3 s: a locked, hung or unreachable store becomes
# StoreUnavailable quickly, and the halt path falls back to the local journal (bot.audit.journal).
SQLITE_BUSY_TIMEOUT_MS = 2_000
PG_CONNECT_TIMEOUT_S = 2  # libpq's smallest useful value
PG_STATEMENT_TIMEOUT_MS = 1_500
PG_LOCK_TIMEOUT_MS = 1_000
# Client side (bot.storage.bounded, PG_CLIENT_WAIT_S): a SIGSTOPped or partitioned server never answers.
POOL_WAIT_S = 1.0
_PG_OPTIONS = f"-c statement_timeout={PG_STATEMENT_TIMEOUT_MS} -c lock_timeout={PG_LOCK_TIMEOUT_MS}"


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything the bot stores is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def normalise_url(url: str) -> str:
    # Operators paste libpq URLs; SQLAlchemy needs to be told to use psycopg 3.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    engine = create_engine(
        url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=20,
        pool_timeout=POOL_WAIT_S,
        connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S, "options": _PG_OPTIONS},
    )
    if url.startswith("postgresql+psycopg"):
        event.listen(engine, "do_connect", _bounded_psycopg_connect)
    return engine


def _bounded_psycopg_connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
    from bot.storage.bounded import BoundedConnection

    return BoundedConnection.connect(*cargs, **cparams)


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from pysqlite so BEGIN IMMEDIATE below is what runs.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    # Threads of this process queue for the write lock here, in turn, instead of in SQLite's busy
    # handler, whose growing sleeps let a thread starve past the (short) busy timeout under contention.
    writer = threading.Lock()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers serialise at BEGIN, so the audit chain's read-then-append cannot interleave
        # across threads or processes.
        if not writer.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
            raise OperationalError("BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked"))
        conn.info["opsbot_writer"] = True
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            _release(conn)
            raise

    def _release(conn: Any) -> None:
        if conn.info.pop("opsbot_writer", False):
            writer.release()

    event.listen(engine, "commit", _release)
    event.listen(engine, "rollback", _release)
    return engine


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work; database faults surface as StoreUnavailable, never a half-done action."""
    try:
        with Session(engine, expire_on_commit=False) as session, session.begin():
            yield session
    except (OperationalError, DBAPIError) as exc:
        if isinstance(exc, DBAPIError) and not isinstance(exc, OperationalError) and not exc.connection_invalidated:
            raise
        raise StoreUnavailable(str(exc.orig) if exc.orig else str(exc)) from exc


def ping(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"
