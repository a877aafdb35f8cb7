"""The incident bundle (runbook rollback action 5: preserve audit logs and operational events).

One JSONL document per rollback, completed or failed, kept in the bot's store (`incident_bundle`, read
back with `opsbot incident export <rollback id>`) and, when OPSBOT_INCIDENT_DIR is set, copied there as
a file. One JSON object per line, each with a `kind`:
`rollback` (the plan, the people, the request ids), `audit` (every audit row since the release
began, exactly as `opsbot audit export` writes it, chain hashes included), `gate_evaluation`
(the /gate table's rows since then, verbatim), `cosmos_control` (the Cosmos control documents,
read only) and `steps`. A copy is written to a temporary name and renamed; the SHA-256 of the document
is recorded in the audit log, so the bundle can later be proven unchanged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, Table, inspect, select
from sqlmodel import Session

from bot.audit.log import AuditLog, export_dict
from bot.clients.cosmos import CosmosReader
from bot.clients.cosmos_errors import CosmosError
from bot.rollback.models import IncidentBundle, Rollback
from bot.rollback.plan import DATA_RULE
from bot.rollback.steps import loads
from bot.storage.db import as_utc, transaction

GATE_TABLE = "gate_evaluation"
MAX_GATE_ROWS = 10_000


@dataclass(frozen=True)
class Bundle:
    path: Path | None  # the optional copy in OPSBOT_INCIDENT_DIR
    sha256: str
    lines: int
    size: int
    audit_rows: int
    last_seq: int | None
    gate_rows: int
    copy_problem: str = ""  # why the optional copy was not written (the stored bundle is the evidence)


def records(
    row: Rollback,
    *,
    audit: AuditLog,
    engine: Engine,
    cosmos: CosmosReader | None,
    since: datetime,
    generated_at: datetime,
) -> Iterator[dict[str, Any]]:
    """Every line of the bundle, in order."""
    yield {
        "kind": "rollback",
        "rollback_id": row.id,
        "approval_id": row.approval_id,
        "trigger": row.trigger,
        "reason": row.reason,
        "requester": row.requester,
        "approver": row.approver,
        "deployed": row.deployed,
        "target": row.target,
        "release_started_at": _iso(row.release_started_at),
        "since": _iso(since),
        "run_id": row.run_id,
        "run_url": row.run_url,
        "request_ids": request_ids(row, audit),
        "generated_at": _iso(generated_at),
        "data_rule": DATA_RULE,
    }
    for event in audit.rows(since=since):
        yield {"kind": "audit", **export_dict(event)}
    for gate in gate_evaluations(engine, since):
        yield {"kind": "gate_evaluation", **gate}
    yield cosmos_snapshot(cosmos)
    yield {"kind": "steps", "steps": loads(row.steps)}


def request_ids(row: Rollback, audit: AuditLog) -> list[str]:
    """The command's, every click's on its approval (refused ones too), and the one the revert carries."""
    seen = [row.request_id, *(e.request_id for e in audit.for_approval(row.approval_id)), row.run_request_id]
    return list(dict.fromkeys(r for r in seen if r))


def gate_evaluations(engine: Engine, since: datetime) -> list[dict[str, Any]]:
    """Rows of the /gate table (when it exists) started since `since`, verbatim."""
    if not inspect(engine).has_table(GATE_TABLE):
        return []
    table = Table(GATE_TABLE, MetaData(), autoload_with=engine)
    query = select(table)
    if "started_at" in table.c:
        query = query.where(table.c.started_at >= as_utc(since)).order_by(table.c.started_at)
    with engine.connect() as conn:
        rows = conn.execute(query.limit(MAX_GATE_ROWS)).mappings().all()
    return [{str(k): _plain(v) for k, v in r.items()} for r in rows]


def cosmos_snapshot(cosmos: CosmosReader | None) -> dict[str, Any]:
    """The control-plane documents as they are now: read, never written (the data rule)."""
    if cosmos is None:
        return {"kind": "cosmos_control", "configured": False}
    try:
        control = cosmos.read_control_documents()
    except CosmosError as exc:
        return {"kind": "cosmos_control", "configured": True, "error": exc.detail}
    return {"kind": "cosmos_control", "configured": True, "documents": dataclasses.asdict(control)}


def write(directory: Path, name: str, lines: Iterable[dict[str, Any]]) -> tuple[Path, str, int, int]:
    """Write the JSONL atomically (temporary file, fsync, rename); returns path, SHA-256, lines, bytes."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"{name}.jsonl"
    temporary = directory / f".{name}.jsonl.tmp"
    data = b"".join(dumps_line(line) for line in lines)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return final, hashlib.sha256(data).hexdigest(), data.count(b"\n"), len(data)


def build(
    row: Rollback,
    *,
    directory: Path | None,
    audit: AuditLog,
    engine: Engine,
    cosmos: CosmosReader | None,
    since: datetime,
    generated_at: datetime,
) -> Bundle:
    """Collect the bundle, store it in the bot's database (raises the store's error), then copy it."""
    lines = list(records(row, audit=audit, engine=engine, cosmos=cosmos, since=since, generated_at=generated_at))
    data = b"".join(dumps_line(line) for line in lines)
    digest = hashlib.sha256(data).hexdigest()
    with transaction(engine) as session:
        session.merge(
            IncidentBundle(
                rollback_id=row.id,
                created_at=generated_at,
                sha256=digest,
                lines=len(lines),
                content=data.decode("utf-8"),
            )
        )
    path, problem = None, ""
    if directory is not None:
        try:
            path = write(directory, row.id, lines)[0]
        except OSError as exc:
            problem = f"the copy in {directory} was not written ({exc.strerror or type(exc).__name__})"
    seqs = [int(line["seq"]) for line in lines if line["kind"] == "audit"]
    gates = sum(1 for line in lines if line["kind"] == "gate_evaluation")
    return Bundle(path, digest, len(lines), len(data), len(seqs), max(seqs, default=None), gates, problem)


def stored(engine: Engine, rollback_id: str) -> IncidentBundle | None:
    """A rollback's stored bundle, as `opsbot incident export` prints it."""
    with Session(engine, expire_on_commit=False) as session:
        return session.get(IncidentBundle, rollback_id)


def dumps_line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, sort_keys=True, ensure_ascii=False, default=str) + "\n").encode("utf-8")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


def _iso(at: datetime | None) -> str | None:
    return as_utc(at).isoformat() if at is not None else None
