"""ApprovalStore against SQLite and PostgreSQL: conditional UPDATE claims, expiry, retries, hash binding."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, update
from sqlmodel import col

from bot.approvals.machine import Status, Transition, Verb, decide, on_timeout
from bot.approvals.policy import Directory, Role
from bot.approvals.store import ApprovalStore, params_intact, view_of
from bot.audit.log import Actor, AuditLog
from bot.storage.db import make_engine, transaction
from bot.storage.migrate import upgrade
from bot.storage.models import Approval
from tests.support.common import CHANNEL, HALT_A, HALT_B, HALT_C, OPERATOR

TTL = 900
DIRECTORY = Directory(
    members={
        Role.OPERATOR: frozenset({OPERATOR, HALT_A, HALT_B, HALT_C}),
        Role.HALT_AUTHORITY: frozenset({HALT_A, HALT_B, HALT_C}),
    }
)


def actor(user_id: str) -> Actor:
    return Actor(team_id="T1", user_id=user_id)


@dataclass
class Env:
    engine: Engine
    audit: AuditLog
    store: ApprovalStore
    now: datetime

    def request(
        self,
        *,
        requester: str = OPERATOR,
        break_glass: bool = False,
        ttl: int = TTL,
        params: dict[str, str] | None = None,
    ) -> Approval:
        return self.store.create(
            action="halt",
            params=params or {"scope": "global", "reason": "fat finger"},
            actor=actor(requester),
            approve_role="halt_authority",
            channel=CHANNEL,
            request_id="ops-req",
            ttl_seconds=ttl,
            now=self.now,
            break_glass=break_glass,
        )

    def reload(self, row: Approval) -> Approval:
        fresh = self.store.get(approval_id=row.id)
        assert fresh is not None
        return fresh

    def approve(self, row: Approval, user: str, *, at: datetime | None = None) -> bool:
        now = at or self.now
        transition = decide(view_of(self.reload(row)), actor=user, verb=Verb.APPROVE, now=now, directory=DIRECTORY)
        return self.store.apply(row=row, transition=transition, actor=actor(user), now=now, request_id="ops-click")

    def finish(
        self, row: Approval, to_status: Status, audit_outcome: str = "applied", *, uncertain: bool = False
    ) -> bool:
        return self.store.finish(
            row=row,
            to_status=to_status,
            actor=actor("opsbot"),
            now=self.now,
            request_id="ops-click",
            outcome=audit_outcome,
            audit_outcome=audit_outcome,
            uncertain=uncertain,
        )

    def steps(self, row: Approval) -> list[str]:
        return [f"{e.action}:{e.outcome}" for e in self.audit.for_approval(row.id)]


@pytest.fixture
def env(db_url: str) -> Iterator[Env]:
    engine = make_engine(db_url)
    upgrade(engine)
    audit = AuditLog(engine, replica="test")
    yield Env(engine, audit, ApprovalStore(engine, audit), datetime.now(UTC).replace(microsecond=0))
    engine.dispose()


APPROVE = Transition(Status.PENDING, Status.EXECUTING, "approved", executes=True)


def test_create_then_get_round_trips_and_is_audited(env: Env) -> None:
    row = env.request()
    got = env.reload(row)
    assert got.id.startswith("apr_") and len(got.id) > 20
    assert (got.status, got.requester, got.action, got.channel) == ("pending", OPERATOR, "halt", CHANNEL)
    assert got.expires_at.astimezone(UTC) == env.now + timedelta(seconds=TTL)
    assert got.decided_by is None and got.attempts == 0
    assert params_intact(got)
    assert env.steps(row) == ["halt.requested:accepted"]
    assert env.store.get(approval_id="apr_nope") is None


def test_break_glass_starts_executing_and_is_audited_as_such(env: Env) -> None:
    row = env.reload(env.request(requester=HALT_A, break_glass=True))
    assert (row.status, row.decided_by, row.attempts, row.break_glass) == ("executing", HALT_A, 1, True)
    assert env.steps(row) == ["halt.break_glass:accepted"]


def test_fifty_threads_racing_approve_have_exactly_one_winner(env: Env) -> None:
    row = env.request()
    racers = 50
    barrier = threading.Barrier(racers)
    results: list[bool] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def click(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            won = env.store.apply(
                row=row,
                transition=APPROVE,
                actor=actor((HALT_A, HALT_B, HALT_C)[i % 3]),
                now=env.now,
                request_id=f"ops-{i}",
            )
            with lock:
                results.append(won)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=click, args=(i,)) for i in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors[:3]
    assert len(results) == racers
    assert results.count(True) == 1
    final = env.reload(row)
    assert final.status == "executing" and final.attempts == 1
    approved = [e for e in env.audit.for_approval(row.id) if e.action == "halt.approved"]
    assert len(approved) == 1
    assert approved[0].user_id == final.decided_by
    assert env.audit.verify().ok


def test_timeout_only_applies_after_expiry(env: Env) -> None:
    row = env.request(ttl=60)
    expire = Transition(Status.PENDING, Status.EXPIRED, "expired", executes=False)
    early = env.now + timedelta(seconds=59)
    assert on_timeout(view_of(env.reload(row)), now=early) is None
    assert not env.store.apply(
        row=row, transition=expire, actor=actor("opsbot"), now=early, request_id="sweep", timed_out=True
    )
    assert env.reload(row).status == "pending"
    late = env.now + timedelta(seconds=61)
    assert on_timeout(view_of(env.reload(row)), now=late) == expire
    assert env.store.apply(
        row=row, transition=expire, actor=actor("opsbot"), now=late, request_id="sweep", timed_out=True
    )
    final = env.reload(row)
    assert final.status == "expired" and final.finished_at is not None and final.decided_by is None
    assert env.steps(row) == ["halt.requested:accepted", "halt.expired:accepted"]


def test_approve_after_expiry_loses_even_without_the_sweeper(env: Env) -> None:
    row = env.request(ttl=60)
    for at in (env.now + timedelta(seconds=60), env.now + timedelta(seconds=61)):
        # The click raced the sweeper: decide() still saw it open, but the store re-checks the TTL.
        assert not env.store.apply(row=row, transition=APPROVE, actor=actor(HALT_A), now=at, request_id="late")
    assert env.reload(row).status == "pending"
    assert env.steps(row) == ["halt.requested:accepted"]


def test_finish_only_from_executing(env: Env) -> None:
    row = env.request()
    assert not env.finish(row, Status.EXECUTED)
    assert env.reload(row).status == "pending"
    assert env.approve(row, HALT_A)
    assert env.finish(row, Status.EXECUTED)
    assert not env.finish(row, Status.FAILED, "failed")
    final = env.reload(row)
    assert final.status == "executed" and final.outcome == "applied" and final.finished_at is not None
    assert env.steps(row) == ["halt.requested:accepted", "halt.approved:accepted", "halt.executed:applied"]


def test_retryable_failure_reopens_and_a_second_approve_wins(env: Env) -> None:
    row = env.request()
    assert env.approve(row, HALT_A)
    # The attempt may have reached the backend (a timeout, a 5xx): it counts, so a later close says so.
    assert env.finish(row, Status.PENDING, "unavailable", uncertain=True)
    reopened = env.reload(row)
    assert (reopened.status, reopened.decided_by, reopened.decided_at, reopened.attempts) == ("pending", None, None, 1)
    assert env.approve(row, HALT_B)
    # A stale click (rendered while it was pending) loses against the second winner.
    assert not env.store.apply(row=row, transition=APPROVE, actor=actor(HALT_C), now=env.now, request_id="stale")
    again = env.reload(row)
    assert (again.status, again.decided_by, again.attempts) == ("executing", HALT_B, 2)
    assert env.finish(row, Status.EXECUTED)
    assert env.steps(row) == [
        "halt.requested:accepted",
        "halt.approved:accepted",
        "halt.failed:unavailable",
        "halt.approved:accepted",
        "halt.executed:applied",
    ]


def test_an_attempt_that_surely_never_reached_the_backend_is_not_counted(env: Env) -> None:
    row = env.request()
    assert env.approve(row, HALT_A)
    assert env.finish(row, Status.PENDING, "unavailable")  # refused at connect: nothing can have applied
    assert (env.reload(row).status, env.reload(row).attempts) == ("pending", 0)


def test_due_lists_only_open_expired_approvals(env: Env) -> None:
    expired_pending = env.request(ttl=60)
    fresh_pending = env.request(ttl=3600)
    done = env.request(ttl=60)
    assert env.approve(done, HALT_A) and env.finish(done, Status.EXECUTED)
    glass = env.request(requester=HALT_A, break_glass=True, ttl=60)
    assert env.finish(glass, Status.AWAITING_CONFIRMATION)
    executing = env.request(ttl=60)
    assert env.approve(executing, HALT_B)

    assert env.store.due(now=env.now) == []
    due = env.store.due(now=env.now + timedelta(seconds=61))
    assert {a.id for a in due} == {expired_pending.id, glass.id}
    assert fresh_pending.id not in {a.id for a in due}
    assert {a.id for a in env.store.due(now=env.now + timedelta(hours=2))} == {
        expired_pending.id,
        glass.id,
        fresh_pending.id,
    }
    assert len(env.store.due(now=env.now + timedelta(hours=2), limit=1)) == 1


def test_params_hash_binding_detects_edited_params(env: Env) -> None:
    row = env.request(params={"scope": "tenant:acme", "reason": "bad quotes"})
    assert params_intact(env.reload(row))
    with transaction(env.engine) as session:
        session.execute(
            update(Approval).where(col(Approval.id) == row.id).values(params='{"reason":"bad quotes","scope":"global"}')
        )
    assert not params_intact(env.reload(row))
