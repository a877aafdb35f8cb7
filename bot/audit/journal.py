"""The local audit journal: where audit rows go when the store cannot take them.

Only a halt authority's break-glass halt runs without the store (the safe direction, see docs/halt.md,
"When the store is down"). Its audit rows are appended here, one JSON line each, fsync'd before the
call they describe proceeds, and hash-chained like the audit table (each line carries the hash of
the one before). When the store answers again, `merge` appends every pending line to the audit
table, in journal order, in one transaction, and only then moves the journal's merged mark, so a
crash mid-merge repeats nothing: a line whose step is already in the table is not added twice.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from bot.audit.log import GENESIS, Actor, AuditLog, Entry, canonical, sha256
from bot.storage.db import transaction, utcnow
from bot.storage.models import Approval, AuditEvent


class JournalCorrupt(Exception):
    """A line of the journal does not chain to the one before: it is not merged, and an operator must look."""


@dataclass(frozen=True)
class Merged:
    rows: int
    channels: tuple[str, ...]
    first_seq: int = 0
    last_seq: int = 0
    approvals: tuple[str, ...] = ()  # approval rows the merge created (journaled break-glass halts)
    settled: tuple[str, ...] = ()  # existing rows (a claim that landed late) the merge moved on


def _line_hash(record: Mapping[str, Any]) -> str:
    return sha256(canonical({k: v for k, v in record.items() if k != "hash"}))


class Journal:
    def __init__(self, path: Path, *, replica: str) -> None:
        self.path = path
        self._mark = path.with_name(path.name + ".merged")
        self._replica = replica

    def append(self, entry: Entry, *, approval: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Append one row and fsync it; `approval` carries what the store needs to recreate the request."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # other processes on this host append to the same file
            f.seek(0)
            lines = [line for line in f.read().splitlines() if line.strip()]
            last = json.loads(lines[-1]) if lines else None
            record: dict[str, Any] = {
                "n": (last["n"] + 1) if last else 1,
                "at": utcnow().isoformat(timespec="microseconds"),
                "team_id": entry.actor.team_id,
                "user_id": entry.actor.user_id,
                "action": entry.action,
                "outcome": entry.outcome,
                "params": dict(entry.params),
                "detail": entry.detail,
                "request_id": entry.request_id,
                "approval_id": entry.approval_id,
                "channel": entry.channel,
                "replica": self._replica,
                "approval": dict(approval or {}),
                "prev": last["hash"] if last else GENESIS,
            }
            record["hash"] = _line_hash(record)
            f.write(json.dumps(record, sort_keys=True, default=str) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return record

    def records(self) -> list[dict[str, Any]]:
        """Every line, checked: JournalCorrupt names the first that does not chain."""
        if not self.path.exists():
            return []
        prev, out = GENESIS, []
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            record = json.loads(line)
            if record.get("prev") != prev or record.get("hash") != _line_hash(record) or record.get("n") != number:
                raise JournalCorrupt(f"{self.path}: line {number} does not chain to the one before")
            prev = record["hash"]
            out.append(record)
        return out

    def merged_up_to(self) -> int:
        try:
            return int(self._mark.read_text().strip() or 0)
        except FileNotFoundError:
            return 0

    def pending(self) -> list[dict[str, Any]]:
        done = self.merged_up_to()
        return [r for r in self.records() if r["n"] > done]

    def _set_mark(self, n: int) -> None:
        tmp = self._mark.with_name(self._mark.name + ".tmp")
        with open(tmp, "w") as f:
            f.write(str(n))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._mark)

    def merge(self, engine: Engine, audit: AuditLog) -> Merged:
        """Append the pending lines to the audit table (StoreUnavailable while the store is still out)."""
        pending = self.pending()
        if not pending:
            return Merged(0, ())
        seqs: list[int] = []
        created: list[str] = []
        settled: list[str] = []
        with transaction(engine) as session:
            for record in pending:
                if not _already_in_table(session, record):
                    seqs.append(audit.append(session, _entry_of(record)).seq)
                moved = _settle_approval(session, record)
                if moved == "created":
                    created.append(record["approval_id"])
                elif moved == "settled" and record["approval_id"] not in created:
                    settled.append(record["approval_id"])
        self._set_mark(pending[-1]["n"])
        channels = tuple(dict.fromkeys(r["channel"] for r in pending if r["channel"]))
        return Merged(
            len(seqs), channels, seqs[0] if seqs else 0, seqs[-1] if seqs else 0, tuple(created), tuple(settled)
        )


def _entry_of(record: Mapping[str, Any]) -> Entry:
    note = (
        f"journaled at {record['at']} on {record['replica']} while the store was unavailable (journal line "
        f"{record['n']}, hash {record['hash'][:12]})"
    )
    detail = f"{record['detail']}; {note}" if record["detail"] else note
    return Entry(
        Actor(record["team_id"], record["user_id"]),
        record["action"],
        record["outcome"],
        record["params"],
        record["request_id"],
        record["approval_id"],
        record["channel"],
        detail,
    )


def _already_in_table(session: Session, record: Mapping[str, Any]) -> bool:
    """A step the store took itself (a claim that landed after the halt gave up waiting for it)."""
    if not record["approval_id"]:
        return False
    query = select(AuditEvent.seq).where(
        col(AuditEvent.approval_id) == record["approval_id"], col(AuditEvent.action) == record["action"]
    )
    return session.exec(query.limit(1)).first() is not None


def _settle_approval(session: Session, record: Mapping[str, Any]) -> str:
    """Give the journaled break-glass its approval row, so confirmation and escalation work as usual;
    "created", "settled" (an executing row moved to the journaled outcome) or ""."""
    info = record.get("approval") or {}
    if not info or not record["approval_id"]:
        return ""
    status = info.get("status")
    existing = session.get(Approval, record["approval_id"])
    if existing is None and info.get("create"):
        at = _parse_at(record["at"])
        text = canonical(record["params"])
        session.add(
            Approval(
                id=record["approval_id"],
                action=info["action"],
                params=text,
                params_hash=sha256(text),
                team_id=record["team_id"],
                requester=record["user_id"],
                approve_role=info["approve_role"],
                channel=record["channel"],
                status="executing",
                request_id=record["request_id"],
                break_glass=True,
                created_at=at,
                expires_at=at + timedelta(seconds=int(info["ttl_seconds"])),
                decided_by=record["user_id"],
                decided_at=at,
                attempts=1,
            )
        )
        session.flush()
        return "created"
    if status:
        values: dict[str, Any] = {"status": status, "outcome": info.get("outcome", "")}
        if status not in ("awaiting_confirmation", "executing"):
            values["finished_at"] = _parse_at(record["at"])
        result = session.execute(
            update(Approval)
            .where(col(Approval.id) == record["approval_id"], col(Approval.status) == "executing")
            .values(**values)
        )
        return "settled" if int(getattr(result, "rowcount", 0)) == 1 else ""
    return ""


def _parse_at(text: str) -> datetime:
    return datetime.fromisoformat(text)
