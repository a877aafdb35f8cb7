"""The tamper-evident audit log: every step, allowed or refused, as a hash-chained row."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Engine, Table, func, text
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from bot.db import as_utc, is_postgres, transaction, utcnow
from bot.models import AuditEvent

GENESIS = "0" * 64
# Any constant works; it names the one lock every audit writer takes on PostgreSQL.
_PG_CHAIN_LOCK = 7_314_159_265


def canonical(params: Mapping[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def sha256(text_: str) -> str:
    return hashlib.sha256(text_.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Actor:
    team_id: str
    user_id: str


SYSTEM = Actor(team_id="", user_id="opsbot")


def hashed_fields(row: Any) -> dict[str, Any]:
    """The hashed content of a stored event: an AuditEvent, or a plain result row (see `table_rows`)."""
    return {
        "seq": row.seq,
        "at": as_utc(row.at).isoformat(timespec="microseconds"),
        "team_id": row.team_id,
        "user_id": row.user_id,
        "action": row.action,
        "params": row.params,
        "params_hash": row.params_hash,
        "outcome": row.outcome,
        "detail": row.detail,
        "request_id": row.request_id,
        "approval_id": row.approval_id,
        "channel": row.channel,
        "replica": row.replica,
        "prev_hash": row.prev_hash,
    }


def row_hash(row: AuditEvent) -> str:
    return sha256(canonical(hashed_fields(row)))


@dataclass(frozen=True)
class Entry:
    """What a caller records; the log adds time, sequence, replica and the chain."""

    actor: Actor
    action: str
    outcome: str
    params: Mapping[str, Any]
    request_id: str = ""
    approval_id: str = ""
    channel: str = ""
    detail: str = ""


@dataclass(frozen=True)
class Verification:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str = ""


class AuditLog:
    def __init__(self, engine: Engine, *, replica: str) -> None:
        self._engine = engine
        self._replica = replica

    def record(self, entry: Entry) -> AuditEvent:
        with transaction(self._engine) as session:
            return self.append(session, entry)

    def append(self, session: Session, entry: Entry) -> AuditEvent:
        """Append inside the caller's transaction, so a state change and its row commit together."""
        if is_postgres(self._engine):
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_CHAIN_LOCK})
        last = session.exec(select(AuditEvent).order_by(col(AuditEvent.seq).desc()).limit(1)).first()
        params = canonical(entry.params)
        row = AuditEvent(
            seq=(last.seq + 1) if last else 1,
            at=utcnow(),
            team_id=entry.actor.team_id,
            user_id=entry.actor.user_id,
            action=entry.action,
            params=params,
            params_hash=sha256(params),
            outcome=entry.outcome,
            detail=entry.detail,
            request_id=entry.request_id,
            approval_id=entry.approval_id,
            channel=entry.channel,
            replica=self._replica,
            prev_hash=last.hash if last else GENESIS,
            hash="",
        )
        row.hash = row_hash(row)
        session.add(row)
        session.flush()
        return row

    def rows(self, *, since: datetime | None = None, batch: int = 500) -> Iterator[AuditEvent]:
        last_seq = 0
        while True:
            with Session(self._engine) as session:
                query = select(AuditEvent).where(col(AuditEvent.seq) > last_seq)
                if since is not None:
                    # SQLite compares the stored UTC text, so the bound must be UTC too, whatever its offset.
                    query = query.where(col(AuditEvent.at) >= as_utc(since))
                page = list(session.exec(query.order_by(col(AuditEvent.seq)).limit(batch)))
            if not page:
                return
            yield from page
            last_seq = page[-1].seq

    def table_rows(self, *, since: datetime | None = None, batch: int = 2_000) -> Iterator[Any]:
        """Every event in order as plain result rows, streamed (a server-side cursor on PostgreSQL), so
        verifying or exporting a long chain keeps memory flat and skips building ORM objects."""
        table = cast(Table, AuditEvent.__table__)  # type: ignore[attr-defined]
        query = sa_select(table).order_by(table.c.seq)
        if since is not None:
            query = query.where(table.c.at >= as_utc(since))
        with self._engine.connect() as conn:
            yield from conn.execution_options(yield_per=batch).execute(query)

    def verify(self) -> Verification:
        expected_prev, expected_seq, checked = GENESIS, 1, 0
        for row in self.table_rows():
            problem = _row_problem(row, expected_prev, expected_seq)
            if problem:
                return Verification(ok=False, checked=checked, first_bad_seq=row.seq, reason=problem)
            expected_prev, expected_seq, checked = row.hash, row.seq + 1, checked + 1
        return Verification(ok=True, checked=checked)

    def count(self) -> int:
        with Session(self._engine) as session:
            return int(session.exec(select(func.count()).select_from(AuditEvent)).one())

    def for_approval(self, approval_id: str) -> list[AuditEvent]:
        with Session(self._engine) as session:
            query = select(AuditEvent).where(AuditEvent.approval_id == approval_id)
            return list(session.exec(query.order_by(col(AuditEvent.seq))))


def _row_problem(row: Any, expected_prev: str, expected_seq: int) -> str:
    if row.seq != expected_seq:
        return f"sequence gap: expected {expected_seq}, found {row.seq}"
    if row.prev_hash != expected_prev:
        return "prev_hash does not match the previous row's hash"
    if row.params_hash != sha256(row.params):
        return "params do not match params_hash"
    if row.hash != row_hash(row):
        return "row content does not match its hash"
    return ""


def export_dict(row: Any) -> dict[str, Any]:
    data = hashed_fields(row)
    data["params"] = json.loads(row.params)
    data["hash"] = row.hash
    return data


def export_lines(rows: Iterator[Any], fmt: str, trailer: Iterable[str] = ()) -> Iterator[str]:
    """JSONL: one event a line, then `trailer` (the signed checkpoints, bot.audit_verify); CSV: events only."""
    if fmt == "jsonl":
        for row in rows:
            yield json.dumps(export_dict(row), ensure_ascii=False, sort_keys=True)
        yield from trailer
        return
    fields = [*hashed_fields(AuditEvent(seq=0, at=utcnow(), action="", params="{}", params_hash="",
                                        outcome="", prev_hash="", hash="")), "hash"]
    yield _csv_line(fields)
    for row in rows:
        data = {**hashed_fields(row), "hash": row.hash}
        yield _csv_line([data[f] for f in fields])


def _csv_line(values: list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(values)
    return buffer.getvalue()
