"""Audit benchmark: append, verify and export rates on a long chain, against the floor of hashing the
same rows in memory in the same run, with each phase's peak memory.

1. Append: `--append-rows` events through `AuditLog.record`, one transaction each, as the bot writes them.
2. Fill the chain to `--rows` with correctly chained rows (bulk inserts; not a figure).
3. Verify (`AuditLog.verify`, what `opsbot audit verify` runs) and export (`opsbot audit export`'s
   JSONL to a file), each in a fresh process so its peak RSS is its own, once at a tenth of the rows
   and once at all of them: memory must stay flat as the chain grows. Right after its phase, each
   process hashes the first 100,000 rows again from memory: the floor its rate is compared with
   (measured in the same process and minute, since a shared machine's load drifts).

    python bench/audit.py [--rows 1000000] [--append-rows 5000] [--backends sqlite,postgresql] [--pg-url URL]

PostgreSQL runs in a fresh database created through `--pg-url` (default: $OPSBOT_TEST_PG_URL) and
dropped afterwards; it is skipped with a note when no URL is given. Prints a table, then as its LAST
line one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Table, create_engine, text
from sqlalchemy.engine import make_url

from bot.audit.log import GENESIS, Actor, AuditLog, Entry, canonical, export_lines, sha256
from bot.storage.db import make_engine, normalise_url
from bot.storage.migrate import upgrade
from bot.storage.models import AuditEvent

TARGET = 0.5  # verify and export at least half the in-memory hashing floor
FILL_BATCH = 5_000
FLOOR_SAMPLE = 100_000
ACTOR = Actor("T0123456", "U0123ABCD")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# --- the child processes: one phase each, so each peak RSS is that phase's own ------------------------


def child(phase: str, url: str) -> None:
    """One phase, its peak RSS, then the floor measured right after in the same process (the machine's
    load drifts; a floor taken minutes earlier would not compare)."""
    audit = AuditLog(make_engine(url), replica="bench")
    start = time.perf_counter()
    if phase == "verify":
        result = audit.verify()
        assert result.ok, result
        rows = result.checked
    else:
        rows = 0
        with open(os.devnull, "w", encoding="utf-8") as sink:
            for line in export_lines(audit.table_rows(), "jsonl"):
                sink.write(line + "\n")
                rows += 1
    seconds, peak = time.perf_counter() - start, peak_mb()
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_mb": peak, "floor": floor(audit)}))


def floor(audit: AuditLog) -> float:
    """Rows/s of hashing rows already in memory: the first FLOOR_SAMPLE rows, hashed as verify hashes them."""
    sample = [row for _, row in zip(range(FLOOR_SAMPLE), audit.table_rows(), strict=False)]
    start = time.perf_counter()
    for row in sample:
        stored = row.pop("hash")
        assert sha256(canonical(row)) == stored
    return len(sample) / (time.perf_counter() - start)


def run_child(phase: str, url: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", phase, "--url", url], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"bench child {phase} failed:\n{done.stderr[-3000:]}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    figures["rate"] = figures["rows"] / figures["seconds"]
    return figures


# --- filling the chain ---------------------------------------------------------------------------------


def fields_of(seq: int, at: datetime, prev: str) -> dict[str, Any]:
    params = canonical({"scope": f"tenant:t{seq % 97}", "reason": f"bench row {seq}", "i": seq})
    return {
        "seq": seq,
        "at": at.isoformat(timespec="microseconds"),
        "team_id": ACTOR.team_id,
        "user_id": ACTOR.user_id,
        "action": "halt.status",
        "params": params,
        "params_hash": sha256(params),
        "outcome": "accepted",
        "detail": "",
        "request_id": f"ops-{seq:016x}",
        "approval_id": "",
        "channel": "C0INCIDENT",
        "replica": "bench-fill",
        "prev_hash": prev,
    }


class Filler:
    """Appends correctly chained rows in bulk (their hashing in memory is timed too, for the table)."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.table: Table = AuditEvent.__table__  # type: ignore[attr-defined]
        with self.engine.connect() as conn:
            last = conn.execute(text("SELECT seq, hash, at FROM audit_event ORDER BY seq DESC LIMIT 1")).first()
        self.seq, self.prev = (int(last[0]), str(last[1])) if last else (0, GENESIS)
        self.at = datetime.now(UTC)
        self.hash_seconds = 0.0
        self.hashed = 0

    def fill_to(self, total: int) -> None:
        while self.seq < total:
            batch = []
            count = min(FILL_BATCH, total - self.seq)
            built = [
                fields_of(self.seq + i + 1, self.at + timedelta(microseconds=self.seq + i), "") for i in range(count)
            ]
            start = time.perf_counter()
            for fields in built:  # the floor: exactly the verifier's hashing, no database
                fields["prev_hash"] = self.prev
                fields["hash"] = self.prev = sha256(canonical({k: v for k, v in fields.items() if k != "hash"}))
            self.hash_seconds += time.perf_counter() - start
            self.hashed += count
            for fields in built:
                batch.append({**fields, "at": datetime.fromisoformat(fields["at"])})
            with self.engine.begin() as conn:
                conn.execute(self.table.insert(), batch)
            self.seq += count

    @property
    def floor_rate(self) -> float:
        return self.hashed / self.hash_seconds


# --- one backend -------------------------------------------------------------------------------------


@contextmanager
def database(kind: str, pg_url: str | None) -> Iterator[str | None]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="opsbot-bench-audit-") as tmp:
            yield f"sqlite:///{tmp}/audit.db"
        return
    if not pg_url:
        yield None
        return
    admin_url = normalise_url(pg_url)
    name = f"opsbot_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def measure(url: str, rows: int, append_rows: int) -> dict[str, Any]:
    engine = make_engine(url)
    upgrade(engine)
    audit = AuditLog(engine, replica="bench")
    start = time.perf_counter()
    for i in range(append_rows):
        audit.record(Entry(ACTOR, "halt.status", "accepted", {"i": i, "scope": "global"}, f"ops-{i}"))
    append_rate = append_rows / (time.perf_counter() - start)
    engine.dispose()
    filler = Filler(url)
    figures: dict[str, Any] = {"append_rows_per_s": round(append_rate)}
    for label, total in (("tenth", max(rows // 10, append_rows + 1)), ("all", rows)):
        filler.fill_to(total)
        verify, export = run_child("verify", url), run_child("export", url)
        figures[label] = {
            "rows": int(verify["rows"]),
            "verify_rows_per_s": round(verify["rate"]),
            "verify_peak_mb": round(verify["peak_mb"], 1),
            "export_rows_per_s": round(export["rate"]),
            "export_peak_mb": round(export["peak_mb"], 1),
            "verify_vs_floor": round(verify["rate"] / verify["floor"], 2),
            "export_vs_floor": round(export["rate"] / export["floor"], 2),
            "floor_rows_per_s": round((verify["floor"] + export["floor"]) / 2),
        }
    filler.engine.dispose()
    figures["floor_hash_rows_per_s"] = figures["all"]["floor_rows_per_s"]
    figures["fill_hash_rows_per_s"] = round(filler.floor_rate)
    figures["verify_vs_floor"] = figures["all"]["verify_vs_floor"]
    figures["export_vs_floor"] = figures["all"]["export_vs_floor"]
    return figures


def table(kind: str, f: dict[str, Any]) -> list[str]:
    lines = [
        f"{kind}: append {f['append_rows_per_s']:,} rows/s (one transaction each); "
        f"hashing in memory while filling {f['fill_hash_rows_per_s']:,} rows/s"
    ]
    for label in ("tenth", "all"):
        p = f[label]
        lines.append(
            f"  {p['rows']:>9,} rows: verify {p['verify_rows_per_s']:>7,} rows/s {p['verify_vs_floor']}x "
            f"({p['verify_peak_mb']} MB), export {p['export_rows_per_s']:>7,} rows/s {p['export_vs_floor']}x "
            f"({p['export_peak_mb']} MB), floor {p['floor_rows_per_s']:,} rows/s"
        )
    lines.append(f"  verify {f['verify_vs_floor']}x the floor, export {f['export_vs_floor']}x (target >= {TARGET}x)")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--append-rows", type=int, default=5_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg-url", default=os.environ.get("OPSBOT_TEST_PG_URL"))
    parser.add_argument("--child", choices=["verify", "export"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.url)
        return 0
    results: dict[str, Any] = {"rows": args.rows, "target_vs_floor": TARGET}
    for kind in args.backends.split(","):
        with database(kind, args.pg_url) as url:
            if url is None:
                print(f"{kind}: skipped (no --pg-url and no OPSBOT_TEST_PG_URL)")
                continue
            results[kind] = measure(url, args.rows, args.append_rows)
            print("\n".join(table(kind, results[kind])), flush=True)
    print(json.dumps(results, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
