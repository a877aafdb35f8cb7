"""The tamper-evident audit log: every step, allowed or refused, as a hash-chained row."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import secrets
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, text
from sqlmodel import Session, col, select

from bot.storage.db import as_utc, is_postgres, transaction, utcnow
from bot.storage.models import AuditEvent

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


# The hashed form of `at`, as `iso_at` makes it, rendered by PostgreSQL (microseconds, UTC, "+00:00").
_PG_AT = """to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""

COLUMNS = (
    "seq",
    "at",
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
    "hash",
)


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

    def chain_rows(self, *, since: datetime | None = None, batch: int = 2_000) -> Iterator[tuple[dict[str, Any], str]]:
        """Every event in order as (its hashed fields, its stored hash), streamed in flat memory through
        the driver's own cursor (plain tuples, no ORM object or result row per event): a server-side
        cursor on PostgreSQL, which also renders `at` in its hashed form, so no datetime is built,
        converted and formatted per event; SQLite holds it as text already. One statement, one snapshot;
        on SQLite it reads without taking the writers' lock, so the bot keeps appending meanwhile."""
        pg = is_postgres(self._engine)
        sql, params = _select(since, pg)
        with self._engine.connect() as conn:
            driver = conn.connection.driver_connection
            assert driver is not None
            cursor = driver.cursor(name=f"audit_rows_{secrets.token_hex(4)}") if pg else driver.cursor()
            try:
                cursor.execute(sql, params)
                while part := cursor.fetchmany(batch):
                    for v in part:
                        yield (
                            {
                                "seq": v[0],
                                "at": v[1] if pg else iso_at(v[1]),
                                "team_id": v[2],
                                "user_id": v[3],
                                "action": v[4],
                                "params": v[5],
                                "params_hash": v[6],
                                "outcome": v[7],
                                "detail": v[8],
                                "request_id": v[9],
                                "approval_id": v[10],
                                "channel": v[11],
                                "replica": v[12],
                                "prev_hash": v[13],
                            },
                            v[14],
                        )
            finally:
                cursor.close()

    def table_rows(self, *, since: datetime | None = None) -> Iterator[dict[str, Any]]:
        """Every event in order as its hashed fields plus "hash" (see `chain_rows`)."""
        for fields, stored_hash in self.chain_rows(since=since):
            fields["hash"] = stored_hash
            yield fields

    def verify(self) -> Verification:
        expected_prev, expected_seq, checked = GENESIS, 1, 0
        for fields, stored in self.chain_rows():
            problem = chain_problem(fields, stored, expected_prev, expected_seq)
            if problem:
                return Verification(ok=False, checked=checked, first_bad_seq=fields["seq"], reason=problem)
            expected_prev, expected_seq, checked = stored, fields["seq"] + 1, checked + 1
        return Verification(ok=True, checked=checked)

    def count(self) -> int:
        with Session(self._engine) as session:
            return int(session.exec(select(func.count()).select_from(AuditEvent)).one())

    def for_approval(self, approval_id: str) -> list[AuditEvent]:
        with Session(self._engine) as session:
            query = select(AuditEvent).where(AuditEvent.approval_id == approval_id)
            return list(session.exec(query.order_by(col(AuditEvent.seq))))


def _select(since: datetime | None, pg: bool) -> tuple[str, dict[str, Any]]:
    """The events' query in the driver's own parameter style, and its parameters."""
    columns = ", ".join(_PG_AT if pg and c == "at" else c for c in COLUMNS)
    sql = f"SELECT {columns} FROM audit_event"  # noqa: S608 (constant column names)
    if since is None:
        return sql + " ORDER BY seq", {}
    # SQLite compares the stored UTC text, so the bound is that text, whatever the offset given.
    bound: Any = as_utc(since) if pg else f"{as_utc(since):%Y-%m-%d %H:%M:%S.%f}"
    return sql + (" WHERE at >= %(since)s" if pg else " WHERE at >= :since") + " ORDER BY seq", {"since": bound}


def iso_at(value: Any) -> str:
    """The hashed form of `at`. SQLite hands back its stored text ("YYYY-MM-DD HH:MM:SS.ffffff", UTC)."""
    if isinstance(value, str):
        if len(value) == 26 and value[10] == " ":
            return f"{value[:10]}T{value[11:]}+00:00"
        value = datetime.fromisoformat(value)
    return as_utc(value).isoformat(timespec="microseconds")


def chain_problem(fields: dict[str, Any], stored_hash: str, expected_prev: str | None, expected_seq: int) -> str:
    """Why a row (its hashed fields) does not continue the chain; empty when it does. `expected_prev`
    None: the first row of a partial export, whose link back cannot be checked."""
    if fields["seq"] != expected_seq:
        return f"sequence gap: expected {expected_seq}, found {fields['seq']}"
    if expected_prev is not None and fields["prev_hash"] != expected_prev:
        return "prev_hash does not match the previous row's hash"
    if fields["params_hash"] != sha256(fields["params"]):
        return "params do not match params_hash"
    if stored_hash != sha256(canonical(fields)):
        return "row content does not match its hash"
    return ""


def export_dict(row: AuditEvent) -> dict[str, Any]:
    data = hashed_fields(row)
    data["params"] = json.loads(row.params)
    data["hash"] = row.hash
    return data


_PARAMS_SLOT = "params-" + secrets.token_hex(16)  # unguessable: no user text can hold it


def export_lines(rows: Iterable[dict[str, Any]], fmt: str, trailer: Iterable[str] = ()) -> Iterator[str]:
    """`table_rows` as JSONL (then `trailer`: the signed checkpoints, bot.audit.cli) or CSV (events only)."""
    if fmt == "jsonl":
        # The stored params are canonical JSON already: spliced in as they are, not parsed and re-encoded.
        slot = json.dumps(_PARAMS_SLOT)
        for row in rows:
            params, row["params"] = row["params"], _PARAMS_SLOT
            yield json.dumps(row, ensure_ascii=False, sort_keys=True).replace(slot, params, 1)
        yield from trailer
        return
    yield _csv_line(list(COLUMNS))
    for row in rows:
        yield _csv_line([row[f] for f in COLUMNS])


def _csv_line(values: list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(values)
    return buffer.getvalue()
