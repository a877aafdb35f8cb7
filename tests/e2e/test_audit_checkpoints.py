"""Signed checkpoints make the audit chain prove itself: truncation, emptying and edit-and-re-hash are
named by `opsbot audit verify` (stored checkpoints, a witness file, stdin) and offline from an export."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bot.audit import checkpointer
from bot.audit import keys as audit_keys
from bot.audit.checkpoint import signed
from bot.audit.checkpointer import Checkpointer
from bot.audit.log import GENESIS, canonical, sha256
from bot.storage.db import as_utc
from rehearsal.sim.stack import Stack
from tests.integration.test_audit import Log, cli, open_log
from tests.support.audit import unguarded
from tests.support.common import HALT_A, click, request_halt, text_of


@pytest.fixture
def signed_log(sqlite_url: str) -> Iterator[tuple[Log, Checkpointer]]:
    log = open_log(sqlite_url)
    key = audit_keys.load_or_create(audit_keys.key_path_for(sqlite_url))
    yield log, Checkpointer(log.engine, key, replica="test-replica")
    log.engine.dispose()


def rehash_from(url: str, seq: int, **changes: str) -> None:
    """Edit row `seq` and recompute every hash from there to the head, as a careful forger would."""
    with unguarded(url) as conn:
        conn.row_factory = sqlite3.Row
        rows = [dict(r) for r in conn.execute("SELECT * FROM audit_event WHERE seq >= ? ORDER BY seq", (seq - 1,))]
        prev = rows[0]["hash"] if rows[0]["seq"] < seq else GENESIS
        for row in rows:
            if row["seq"] < seq:
                continue
            row.update(changes if row["seq"] == seq else {})
            row["prev_hash"] = prev
            row["hash"] = recompute(row)
            conn.execute(
                "UPDATE audit_event SET outcome = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                (row["outcome"], row["prev_hash"], row["hash"], row["seq"]),
            )
            prev = row["hash"]


def recompute(row: dict[str, object]) -> str:
    fields = {
        k: row[k]
        for k in (
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
    }
    fields["at"] = as_utc(datetime.fromisoformat(str(row["at"]))).isoformat(timespec="microseconds")
    return sha256(canonical(fields))


def test_sqlite_refuses_update_and_delete_of_audit_rows_and_checkpoints(signed_log: tuple[Log, Checkpointer]) -> None:
    log, signer = signed_log
    log.record(3)
    assert signer.sign_head() is not None
    for statement in (
        "UPDATE audit_event SET outcome = 'x' WHERE seq = 2",
        "DELETE FROM audit_event WHERE seq = 3",
        "DELETE FROM audit_checkpoint",
        "UPDATE audit_checkpoint SET hash = 'x'",
    ):
        with pytest.raises(DBAPIError, match="append-only"), log.engine.begin() as conn:
            conn.execute(text(statement))
    assert log.audit.verify().ok and log.audit.count() == 3


def test_a_checkpoint_is_signed_once_per_head_logged_and_made_again_after_the_interval(
    signed_log: tuple[Log, Checkpointer], caplog: pytest.LogCaptureFixture
) -> None:
    log, signer = signed_log
    assert signer.sign_head() is None  # nothing to sign yet
    log.record(4)
    with caplog.at_level(logging.INFO, logger="opsbot.audit"):
        first = signer.sign_head()
    assert first is not None and first.seq == 4 and first.hash == list(log.audit.rows())[-1].hash
    assert signer.sign_head() == first  # the head did not move: no second checkpoint
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("audit checkpoint ")]
    assert json.loads(logged[0].removeprefix("audit checkpoint ")) == first.as_json()
    log.record(1)
    assert signer.tick() is None  # the last checkpoint is younger than the interval
    later = Checkpointer(
        log.engine,
        audit_keys.load_or_create(audit_keys.key_path_for(log.url)),
        replica="test-replica",
        clock=lambda: first.at + timedelta(minutes=3),
    )
    assert (tick := later.tick()) is not None and tick.seq == 5
    assert [c.seq for c in checkpointer.stored(log.engine)] == [4, 5]
    assert first.compact() == f"audit #4 · {first.hash[:16]}…, signed"


def test_verify_names_truncation_past_a_checkpoint(signed_log: tuple[Log, Checkpointer], tmp_path: Path) -> None:
    log, signer = signed_log
    log.record(10)
    signer.sign_head()
    log.record(2)
    ok = cli(log.url, "audit", "verify", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "12 events verified; 1 signed checkpoint(s) hold; 2 newest event(s) not yet covered" in ok.stdout
    with unguarded(log.url) as conn:
        conn.execute("DELETE FROM audit_event WHERE seq > 7")
    done = cli(log.url, "audit", "verify", cwd=tmp_path)
    assert done.returncode == 1
    assert "TRUNCATED: checkpoint #10 · " in done.stderr and "beyond the chain's end at seq 7" in done.stderr
    assert "stored in the database" in done.stderr and "intact" not in done.stdout


def test_an_emptied_table_and_its_checkpoints_are_caught_by_the_witness(
    signed_log: tuple[Log, Checkpointer], tmp_path: Path
) -> None:
    log, signer = signed_log
    log.record(5)
    witness = tmp_path / "witness.jsonl"
    checkpoint = signer.sign_head()
    assert checkpoint is not None
    witness.write_text(
        json.dumps({"at": "…", "level": "info", "msg": "audit checkpoint " + checkpoint.line()})
        + "\n"
        + json.dumps({"msg": "something else"})
        + "\n"
    )
    with unguarded(log.url) as conn:
        conn.execute("DELETE FROM audit_event")
        conn.execute("DELETE FROM audit_checkpoint")
    alone = cli(log.url, "audit", "verify", cwd=tmp_path)
    assert alone.returncode == 0 and "0 events verified" in alone.stdout  # the limit without a witness
    done = cli(log.url, "audit", "verify", "--witness", str(witness), cwd=tmp_path)
    assert done.returncode == 1
    assert f"EMPTIED: the audit table holds no events, but checkpoint #5 · {checkpoint.hash[:16]}…" in done.stderr
    assert f"{witness} line 1" in done.stderr


def test_edit_and_rehash_is_caught_by_the_channel_line_on_stdin(
    signed_log: tuple[Log, Checkpointer], tmp_path: Path
) -> None:
    log, signer = signed_log
    log.record(6)
    checkpoint = signer.sign_head()
    assert checkpoint is not None
    rehash_from(log.url, 3, outcome="refused")
    stored = cli(log.url, "audit", "verify", cwd=tmp_path)  # the chain is consistent again; the checkpoint is not
    assert stored.returncode == 1 and "REWRITTEN: at seq 6" in stored.stderr
    with unguarded(log.url) as conn:
        conn.execute("DELETE FROM audit_checkpoint")
    assert cli(log.url, "audit", "verify", cwd=tmp_path).returncode == 0  # nothing left to compare with
    channel_line = f"Approval `apr_x` {checkpoint.compact()}\n"
    env = {**os.environ, "OPSBOT_DATABASE_URL": log.url, "OPSBOT_ENV": "development"}
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "audit", "verify", "--witness", "-"],
        input=channel_line,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
        env=env,
    )
    assert done.returncode == 1
    assert "REWRITTEN: at seq 6 the chain's hash is" in done.stderr
    assert f"checkpoint #6 · {checkpoint.hash[:16]}… (unsigned short form), stdin line 1" in done.stderr


def test_a_checkpoint_signed_with_another_key_is_named_forged(
    signed_log: tuple[Log, Checkpointer], tmp_path: Path
) -> None:
    log, _ = signed_log
    log.record(3)
    head = list(log.audit.rows())[-1]
    forged = signed(audit_keys.Ed25519PrivateKey.generate(), seq=3, hash_=head.hash, at=head.at, replica="x")
    Checkpointer(log.engine, audit_keys.Ed25519PrivateKey.generate(), replica="forger").sign_head()
    done = cli(log.url, "audit", "verify", cwd=tmp_path)
    assert done.returncode == 1 and "FORGED: checkpoint #3" in done.stderr
    assert "not one of the public keys" in done.stderr
    assert forged.key_id not in done.stdout


def test_export_verifies_offline_with_the_public_key_and_names_tampering(
    signed_log: tuple[Log, Checkpointer], tmp_path: Path
) -> None:
    log, signer = signed_log
    log.record(8, scope="tenant:acme", note="ünïcode, 1.5")
    signer.sign_head()
    exported = cli(log.url, "audit", "export", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    lines = exported.stdout.splitlines()
    assert len(lines) == 9 and json.loads(lines[-1])["checkpoint"]["seq"] == 8
    export = tmp_path / "audit.jsonl"
    export.write_text(exported.stdout)
    public = tmp_path / "audit.pub"
    shown = cli(log.url, "audit", "public-key", cwd=tmp_path)
    public.write_text(shown.stdout)
    elsewhere = tmp_path / "auditor"
    elsewhere.mkdir()
    ok = cli(
        "sqlite:////nonexistent/none.db",
        "audit",
        "verify",
        "--export",
        str(export),
        "--public-key",
        str(public),
        cwd=elsewhere,
    )
    assert ok.returncode == 0, ok.stderr
    assert "8 events verified; 1 signed checkpoint(s) hold" in ok.stdout

    truncated = tmp_path / "truncated.jsonl"
    truncated.write_text("\n".join(lines[:5] + lines[-1:]) + "\n")
    done = cli(log.url, "audit", "verify", "--export", str(truncated), "--public-key", str(public), cwd=elsewhere)
    assert done.returncode == 1 and "TRUNCATED: checkpoint #8" in done.stderr
    other = audit_keys.public_pem(audit_keys.Ed25519PrivateKey.generate().public_key())
    wrong = cli(log.url, "audit", "verify", "--export", str(export), "--public-key", other, cwd=elsewhere)
    assert wrong.returncode == 1 and "FORGED" in wrong.stderr
    unsigned = cli("sqlite:////nonexistent/none.db", "audit", "verify", "--export", str(export), cwd=elsewhere)
    assert unsigned.returncode == 2 and "needs --public-key" in unsigned.stderr


def test_checkpoint_command_prints_the_latest_signed_checkpoint(
    signed_log: tuple[Log, Checkpointer], tmp_path: Path
) -> None:
    log, _ = signed_log
    assert cli(log.url, "audit", "checkpoint", cwd=tmp_path).returncode == 1  # empty log: nothing to sign
    log.record(4)
    done = cli(log.url, "audit", "checkpoint", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed["seq"] == 4 and printed["hash"] == list(log.audit.rows())[-1].hash and printed["signature"]
    assert [c.seq for c in checkpointer.stored(log.engine)] == [4]


# --- through the bot: the outcome message witnesses a checkpoint; approvals are bound to the chain --------


def test_the_outcome_message_carries_the_signed_checkpoint_right_after_the_action(stack: Stack) -> None:
    approval_id, posted = request_halt(stack)
    click(stack, user=HALT_A, approval_id=approval_id, posted=posted)
    update = stack.peer.wait_for_call("chat.update", where=lambda c: "audit #" in text_of(c.args))[-1]
    assert "Applied" in text_of(update.args)  # the outcome, now with its witness
    newest = checkpointer.latest(stack.deps.engine)
    executed = next(r for r in stack.deps.audit.for_approval(approval_id) if r.action == "halt.executed")
    assert newest is not None and newest.seq == executed.seq and newest.hash == executed.hash
    context = update.args["blocks"][-1]
    assert context["type"] == "context"
    assert f"audit #{newest.seq} · {newest.hash[:16]}…, signed" in text_of({"blocks": [context]})


def test_an_approval_rewritten_in_the_table_is_refused_escalated_and_audited(stack: Stack) -> None:
    approval_id, posted = request_halt(stack, text="tenant:acme fat-finger storm")
    forged = canonical({"scope": "global", "reason": "fat-finger storm"})
    with stack.deps.engine.begin() as conn:  # someone with the database's credentials
        conn.execute(
            text("UPDATE approval SET action = 'resume', params = :p, params_hash = :h WHERE id = :id"),
            {"p": forged, "h": sha256(forged), "id": approval_id},
        )
    click(stack, user=HALT_A, approval_id=approval_id, posted=posted)
    update = stack.peer.wait_for_call("chat.update", where=lambda c: "Not run" in text_of(c.args))[-1]
    assert "no longer matches what was requested" in text_of(update.args)
    escalation = stack.peer.wait_for_call("chat.postMessage", where=lambda c: "Escalation" in text_of(c.args))[-1]
    assert approval_id in text_of(escalation.args) and "`halt.requested`" in text_of(escalation.args)
    assert not stack.backend.calls("POST", "/api/trading-control/resume")
    assert not stack.backend.calls("POST", "/api/trading-control/halt")
    steps = [f"{r.action}:{r.outcome}" for r in stack.deps.audit.for_approval(approval_id)]
    assert steps == [
        "halt.requested:accepted",
        "resume.approved:accepted",
        "resume.binding_refused:denied",
        "resume.failed:failed",
    ]
    assert stack.deps.audit.verify().ok
