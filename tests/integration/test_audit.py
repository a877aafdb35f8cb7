"""The hash-chained audit log: concurrent writers, tampering caught by `opsbot audit verify`, append-only
PostgreSQL, and `opsbot audit export`."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from bot.approvals.machine import Status, Transition
from bot.approvals.store import ApprovalStore
from bot.audit.log import Actor, AuditLog, Entry, row_hash
from bot.storage.db import make_engine
from bot.storage.migrate import upgrade
from tests.support.audit import unguarded
from tests.support.common import CHANNEL, HALT_A, OPERATOR

APPROVE = Transition(Status.PENDING, Status.EXECUTING, "approved", executes=True)
REJECT = Transition(Status.PENDING, Status.REJECTED, "rejected", executes=False)
ACTOR = Actor(team_id="T1", user_id=OPERATOR)


@dataclass
class Log:
    url: str
    engine: Engine
    audit: AuditLog
    store: ApprovalStore

    def record(self, n: int, *, action: str = "halt.status", **params: object) -> None:
        for i in range(n):
            self.audit.record(Entry(ACTOR, action, "accepted", {"i": i, **params}, f"ops-{i}", channel=CHANNEL))

    def seqs(self) -> list[int]:
        return [row.seq for row in self.audit.rows()]


def open_log(url: str) -> Log:
    engine = make_engine(url)
    upgrade(engine)
    audit = AuditLog(engine, replica="test")
    return Log(url, engine, audit, ApprovalStore(engine, audit))


@pytest.fixture
def log(db_url: str) -> Iterator[Log]:
    opened = open_log(db_url)
    yield opened
    opened.engine.dispose()


@pytest.fixture
def sqlite_log(sqlite_url: str) -> Iterator[Log]:
    opened = open_log(sqlite_url)
    yield opened
    opened.engine.dispose()


@pytest.fixture
def pg_log(pg_url: str) -> Iterator[Log]:
    opened = open_log(pg_url)
    yield opened
    opened.engine.dispose()


def assert_chain_intact(log: Log, expected: int) -> None:
    result = log.audit.verify()
    assert result.ok, result
    assert result.checked == expected == log.audit.count()
    assert log.seqs() == list(range(1, expected + 1))


def switches(owners: list[object]) -> int:
    return sum(1 for a, b in pairwise(owners) if a != b)


def cli(url: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the real `opsbot` entry point as an operator would, against `url`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSBOT_", "SLACK_", "JWT_"))}
    env.update(OPSBOT_DATABASE_URL=url, OPSBOT_ENV="development")
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# --- concurrency ---------------------------------------------------------------------------------------


def test_mixed_steps_from_eight_threads_keep_a_gap_free_verified_chain(log: Log) -> None:
    threads, rounds = 8, 11
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []
    now = datetime.now(UTC)

    def worker(t: int) -> None:
        try:
            barrier.wait(timeout=30)
            for r in range(rounds):
                log.audit.record(Entry(ACTOR, "halt.status", "accepted", {"t": t, "r": r}, f"ops-{t}-{r}"))
                row = log.store.create(
                    action="halt",
                    params={"scope": f"tenant:t{t}", "reason": f"r{r}"},
                    actor=ACTOR,
                    approve_role="halt_authority",
                    channel=CHANNEL,
                    request_id=f"ops-{t}-{r}",
                    ttl_seconds=900,
                    now=now,
                )
                if r % 3 == 2:
                    assert log.store.apply(
                        row=row, transition=REJECT, actor=Actor("T1", HALT_A), now=now, request_id=f"ops-{t}-{r}-x"
                    )
                    continue
                assert log.store.apply(
                    row=row, transition=APPROVE, actor=Actor("T1", HALT_A), now=now, request_id=f"ops-{t}-{r}-a"
                )
                assert log.store.finish(
                    row=row,
                    to_status=Status.EXECUTED,
                    actor=Actor("T1", HALT_A),
                    now=now,
                    request_id=f"ops-{t}-{r}-a",
                    outcome="applied",
                    audit_outcome="applied",
                )
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert not errors, errors[:3]
    rejects_per_thread = len([r for r in range(rounds) if r % 3 == 2])
    per_thread = rounds * 4 - rejects_per_thread  # record+create+approve+finish, or record+create+reject
    assert threads * per_thread >= 300
    assert_chain_intact(log, threads * per_thread)
    # The writers really did interleave (one after another would change owner only threads - 1 times).
    owners = [json.loads(row.params)["t"] for row in log.audit.rows() if row.action == "halt.status"]
    assert switches(owners) > threads - 1


WRITER = """
import sys, time
from bot.audit.log import Actor, AuditLog, Entry, row_hash
from bot.storage.db import make_engine
url, name, start, n = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
audit = AuditLog(make_engine(url), replica=name)
time.sleep(max(0.0, start - time.time()))
for i in range(n):
    audit.record(Entry(Actor("T1", "UWRITER"), "halt.status", "accepted", {"writer": name, "i": i}))
"""


def test_three_processes_writing_at_once_keep_the_chain(log: Log, tmp_path: Path) -> None:
    per_process, names = 100, ["proc-a", "proc-b", "proc-c"]
    start = time.time() + 2.0  # every process imports first, then they all write at the same moment
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, log.url, name, str(start), str(per_process)],
            cwd=tmp_path,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in names
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err
    assert_chain_intact(log, per_process * len(names))
    rows = list(log.audit.rows())
    assert {row.replica for row in rows} == set(names)
    if log.engine.dialect.name == "postgresql":  # SQLite's busy back-off may legitimately let one run first
        assert switches([row.replica for row in rows]) > len(names) - 1  # they did write at the same time


# --- tampering, seen through `opsbot audit verify` ------------------------------------------------------


def tamper(url: str, *statements: tuple[str, tuple[object, ...]]) -> None:
    with unguarded(url) as conn:  # what someone with shell access to the host could do
        for sql, args in statements:
            conn.execute(sql, args)


def verify_fails_at(log: Log, tmp_path: Path, seq: int, reason: str) -> None:
    result = cli(log.url, "audit", "verify", cwd=tmp_path)
    assert result.returncode != 0
    assert f"BROKEN at seq {seq}:" in result.stderr
    assert reason in result.stderr
    assert "intact" not in result.stdout


def test_intact_chain_verifies_through_the_cli(sqlite_log: Log, tmp_path: Path) -> None:
    sqlite_log.record(30)
    result = cli(sqlite_log.url, "audit", "verify", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "audit chain intact: 30 events verified" in result.stdout


def test_editing_an_outcome_by_hand_is_named(sqlite_log: Log, tmp_path: Path) -> None:
    sqlite_log.record(30)
    tamper(sqlite_log.url, ("UPDATE audit_event SET outcome = 'refused' WHERE seq = 17", ()))
    verify_fails_at(sqlite_log, tmp_path, 17, "row content does not match its hash")


def test_editing_params_by_hand_is_named(sqlite_log: Log, tmp_path: Path) -> None:
    sqlite_log.record(30, scope="tenant:acme")
    tamper(sqlite_log.url, ("UPDATE audit_event SET params = replace(params, 'acme', 'evil') WHERE seq = 17", ()))
    verify_fails_at(sqlite_log, tmp_path, 17, "params do not match params_hash")


def test_rehashing_an_edited_row_breaks_the_link_to_the_next(sqlite_log: Log, tmp_path: Path) -> None:
    sqlite_log.record(30)
    row = next(r for r in sqlite_log.audit.rows() if r.seq == 17)
    row.outcome = "refused"
    tamper(sqlite_log.url, ("UPDATE audit_event SET outcome = 'refused', hash = ? WHERE seq = 17", (row_hash(row),)))
    verify_fails_at(sqlite_log, tmp_path, 18, "prev_hash does not match")


def test_deleting_a_row_by_hand_is_named(sqlite_log: Log, tmp_path: Path) -> None:
    sqlite_log.record(30)
    tamper(sqlite_log.url, ("DELETE FROM audit_event WHERE seq = 17", ()))
    verify_fails_at(sqlite_log, tmp_path, 18, "expected 17, found 18")


# --- PostgreSQL refuses to rewrite history -------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_event SET outcome = 'refused' WHERE seq = 2",
        "DELETE FROM audit_event WHERE seq = 2",
        "TRUNCATE audit_event",
    ],
)
def test_postgres_refuses_update_delete_truncate(pg_log: Log, statement: str) -> None:
    pg_log.record(3)
    with pytest.raises(DBAPIError, match="append-only"), pg_log.engine.begin() as conn:
        conn.execute(text(statement))
    assert_chain_intact(pg_log, 3)
    assert next(r for r in pg_log.audit.rows() if r.seq == 2).outcome == "accepted"


# --- `opsbot audit export` ----------------------------------------------------------------------------


def test_export_jsonl_one_parsable_line_per_event(log: Log, tmp_path: Path) -> None:
    log.record(5, scope="tenant:acme", note="<!channel> ünïcode")
    result = cli(log.url, "audit", "export", "--format", "jsonl", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 5
    events = [json.loads(line) for line in lines]
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5]
    for i, event in enumerate(events):
        assert event["params"] == {"i": i, "scope": "tenant:acme", "note": "<!channel> ünïcode"}
        assert len(event["hash"]) == 64 and len(event["params_hash"]) == 64
    assert events[0]["prev_hash"] == "0" * 64
    assert all(b["prev_hash"] == a["hash"] for a, b in pairwise(events))


def test_export_csv_has_a_header_and_one_row_per_event(sqlite_log: Log, tmp_path: Path) -> None:
    sqlite_log.record(4, reason='comma, "quote"\nnewline')
    result = cli(sqlite_log.url, "audit", "export", "--format", "csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(result.stdout.splitlines(keepends=True)))
    assert [int(r["seq"]) for r in rows] == [1, 2, 3, 4]
    assert {"seq", "at", "user_id", "action", "params", "outcome", "prev_hash", "hash"} <= set(rows[0])
    assert json.loads(rows[0]["params"])["reason"] == 'comma, "quote"\nnewline'
    stored = {r.seq: r.hash for r in sqlite_log.audit.rows()}
    assert all(stored[int(r["seq"])] == r["hash"] for r in rows)


@pytest.mark.parametrize("offset_hours", [0, 2, -5])
def test_export_since_filters_by_time_in_any_offset(sqlite_log: Log, tmp_path: Path, offset_hours: int) -> None:
    sqlite_log.record(3, phase="before")
    time.sleep(0.01)
    cut = datetime.now(UTC)
    time.sleep(0.01)
    sqlite_log.record(2, phase="after")
    since = cut.astimezone(timezone(timedelta(hours=offset_hours))).isoformat()
    result = cli(sqlite_log.url, "audit", "export", "--since", since, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(e["seq"], e["params"]["phase"]) for e in events] == [(4, "after"), (5, "after")]


def test_export_since_rejects_garbage(sqlite_log: Log, tmp_path: Path) -> None:
    result = cli(sqlite_log.url, "audit", "export", "--since", "yesterday", cwd=tmp_path)
    assert result.returncode == 2
    assert "not an ISO time" in result.stderr


def test_reading_the_chain_leaves_writers_free_and_sees_one_snapshot(log: Log) -> None:
    """A long verify or export must not hold up the bot's own audit rows, nor mix in rows added meanwhile."""
    log.record(3)
    reading = log.audit.chain_rows(batch=1)
    first, _ = next(reading)
    log.record(1, phase="during")  # on SQLite this waited for the reader's write lock and failed
    assert [first["seq"], *(fields["seq"] for fields, _ in reading)] == [1, 2, 3]
    assert_chain_intact(log, 4)


def test_export_since_is_applied_on_each_backend(log: Log) -> None:
    log.record(2, phase="before")
    time.sleep(0.01)
    cut = datetime.now(timezone(timedelta(hours=-5)))
    log.record(2, phase="after")
    assert [(r["seq"], json.loads(r["params"])["phase"]) for r in log.audit.table_rows(since=cut)] == [
        (3, "after"),
        (4, "after"),
    ]
