"""Gate and cutover persistence on SQLite and PostgreSQL: migration 0003, evaluations with their audit row,
per-version attestations, observed version changes, and a stage entered at most once under a race."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, inspect

from bot.audit.log import SYSTEM, AuditLog, Entry
from bot.cutover.store import CutoverStore, Transition
from bot.gate.models import Attestation, GateEvaluation
from bot.gate.store import GateStore
from bot.storage.db import make_engine
from bot.storage.migrate import upgrade

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


def test_migration_creates_the_tables(engine: Engine) -> None:
    tables = set(inspect(engine).get_table_names())
    assert {"gate_evaluation", "attestation", "cutover_state", "backend_version_observation"} <= tables


def evaluation(n: int, verdict: str, version: str | None) -> GateEvaluation:
    return GateEvaluation(
        id=f"gate_{n}",
        started_at=T0 + timedelta(minutes=n),
        finished_at=T0 + timedelta(minutes=n),
        version=version,
        verdict=verdict,
        requested_by="UOP",
        channel="C1",
        request_id=f"ops-{n}",
        deadline_s=20,
        results=json.dumps([]),
    )


def test_evaluations_are_stored_with_their_audit_row(engine: Engine) -> None:
    audit = AuditLog(engine, replica="t")
    store = GateStore(engine, audit)
    for n, verdict, version in ((1, "go", "v1"), (2, "no_go", "v1"), (3, "go", "v2"), (4, "no_go", None)):
        store.save_evaluation(evaluation(n, verdict, version), Entry(SYSTEM, "gate.evaluated", verdict, {"n": n}))
    assert [r.id for r in store.recent(3)] == ["gate_4", "gate_3", "gate_2"]
    latest = store.latest_for_version("v1")
    assert latest is not None and latest.id == "gate_2"
    go = store.last_go()
    assert go is not None and go.id == "gate_3" and go.version == "v2"
    assert [e.id for e in store.since(T0 + timedelta(minutes=3))] == ["gate_4", "gate_3"]
    assert audit.count() == 4 and audit.verify().ok


def test_attestations_are_per_version_latest_wins(engine: Engine) -> None:
    store = GateStore(engine, AuditLog(engine, replica="t"))
    for n, (check, version, evidence) in enumerate((("a", "v1", "first"), ("a", "v1", "second"), ("b", "v2", "x"))):
        store.attest(
            Attestation(
                check_id=check,
                version=version,
                evidence=evidence,
                attested_by="UADMIN",
                attested_at=T0 + timedelta(minutes=n),
            ),
            Entry(SYSTEM, "gate.attested", "accepted", {}),
        )
    assert {k: v.evidence for k, v in store.attestations("v1").items()} == {"a": "second"}
    assert set(store.attestations("v2")) == {"b"} and store.attestations("v3") == {}


def test_only_version_changes_are_recorded(engine: Engine) -> None:
    store = GateStore(engine, AuditLog(engine, replica="t"))
    assert store.observe("v1", at=T0, source="gate") is None  # the first version ever seen is no change
    assert store.observe("v1", at=T0 + timedelta(minutes=1), source="gate") is None
    change = store.observe("v2", at=T0 + timedelta(minutes=2), source="cutover status")
    assert change is not None and (change.previous_version, change.version) == ("v1", "v2")
    store.observe("v1", at=T0 + timedelta(minutes=3), source="gate")  # rolled back: also a deploy cycle
    assert [(c.previous_version, c.version) for c in store.changes_since(T0)] == [("v1", "v2"), ("v2", "v1")]
    assert [c.version for c in store.changes_since(T0 + timedelta(minutes=2))] == ["v1"]


def transition(approval_id: str, from_stage: str = "one", to_stage: str = "two") -> Transition:
    return Transition(
        from_stage=from_stage,
        to_stage=to_stage,
        at=T0,
        version="v1",
        reason="ready",
        requested_by="UADMIN",
        approved_by="UADMIN2",
        approval_id=approval_id,
        gate_id="gate_1",
        evidence="[]",
    )


def test_a_stage_is_entered_at_most_once_even_under_a_race(engine: Engine) -> None:
    audit = AuditLog(engine, replica="t")
    store = CutoverStore(engine, audit)
    results: list[object] = []

    def enter(n: int) -> None:
        results.append(
            store.enter(
                transition(f"apr_{n}"),
                first_stage="one",
                entry=Entry(SYSTEM, "cutover.stage_entered", "applied", {"n": n}),
            )
        )

    threads = [threading.Thread(target=enter, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in results) == 1
    assert [(r.seq, r.stage_id) for r in store.history()] == [(1, "two")]
    assert [r.action for r in audit.rows()] == ["cutover.stage_entered"]
    current = store.current()
    assert current is not None and current.stage_id == "two"
    assert (
        store.enter(
            transition("apr_x", "two", "three"),
            first_stage="one",
            entry=Entry(SYSTEM, "cutover.stage_entered", "applied", {}),
        )
        is not None
    )
    entered = store.entered("two")
    assert entered is not None and entered.seq == 1
    assert audit.verify().ok
