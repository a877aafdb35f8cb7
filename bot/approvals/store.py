"""Persistence of approvals. Every status change is one conditional UPDATE plus its audit row, in one
transaction: the UPDATE's row count decides the single winner across threads and processes."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from bot.approvals.machine import EXECUTION_LEASE, OPEN, ApprovalView, Status, Transition, earlier_attempts_note
from bot.approvals.outbox import Note, Outbox, add_notes
from bot.audit.log import Actor, AuditLog, Entry, canonical, sha256
from bot.storage.db import as_utc, transaction
from bot.storage.models import Approval, SeenRequest

# The Slack effects of a state change, built from the row as the winning UPDATE left it.
Notes = Callable[[Approval], Sequence[Note]]


def new_approval_id() -> str:
    # Opaque and unguessable: it is the only thing a button carries.
    return "apr_" + secrets.token_urlsafe(16)


def view_of(row: Approval) -> ApprovalView:
    return ApprovalView(
        id=row.id,
        action=row.action,
        requester=row.requester,
        status=Status(row.status),
        expires_at=as_utc(row.expires_at),
        break_glass=row.break_glass,
        decided_by=row.decided_by,
        decided_at=as_utc(row.decided_at) if row.decided_at else None,
    )


def params_of(row: Approval) -> dict[str, Any]:
    params: dict[str, Any] = json.loads(row.params)
    return params


def params_intact(row: Approval) -> bool:
    """An approval is bound to the hash of what was shown; anything else must not run."""
    return sha256(row.params) == row.params_hash


class ApprovalStore:
    def __init__(
        self,
        engine: Engine,
        audit: AuditLog,
        outbox: Outbox | None = None,
        *,
        replica: str = "",
        lease: timedelta = EXECUTION_LEASE,
    ) -> None:
        self._engine = engine
        self._audit = audit
        self.outbox = outbox or Outbox(engine)
        self.replica = replica
        self.lease = lease

    def _notes(self, session: Session, notes: Notes | None, row: Approval) -> None:
        if notes is not None:
            add_notes(session, notes(row), now=self.outbox.now())

    def create(
        self,
        *,
        action: str,
        params: Mapping[str, Any],
        actor: Actor,
        approve_role: str,
        channel: str,
        request_id: str,
        ttl_seconds: int,
        now: datetime,
        break_glass: bool = False,
        notes: Notes | None = None,
        approval_id: str | None = None,
        seen_key: str | None = None,
    ) -> Approval:
        """`seen_key`: the signed request's replay key (bot.audit.replays), taken in the same transaction, so a
        replay raises IntegrityError and nothing is created."""
        text = canonical(params)
        row = Approval(
            id=approval_id or new_approval_id(),
            action=action,
            params=text,
            params_hash=sha256(text),
            team_id=actor.team_id,
            requester=actor.user_id,
            approve_role=approve_role,
            channel=channel,
            status=(Status.EXECUTING if break_glass else Status.PENDING).value,
            request_id=request_id,
            break_glass=break_glass,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_seconds),
            decided_by=actor.user_id if break_glass else None,
            decided_at=now if break_glass else None,
            attempts=1 if break_glass else 0,
            lease_until=now + self.lease if break_glass else None,
            claimed_by=self.replica if break_glass else None,
        )
        step = "break_glass" if break_glass else "requested"
        with transaction(self._engine) as session:
            if seen_key is not None:
                session.add(SeenRequest(key=seen_key, seen_at=now, replays=0))
                session.flush()
            session.add(row)
            session.flush()
            entry = Entry(actor, f"{action}.{step}", "accepted", params, request_id, row.id, channel)
            self._audit.append(session, entry)
            self._notes(session, notes, row)
        self.outbox.wake()
        return row

    def get(self, *, approval_id: str) -> Approval | None:
        with Session(self._engine, expire_on_commit=False) as session:
            return session.get(Approval, approval_id)

    def attach_message(self, *, approval_id: str, message_ts: str) -> None:
        with transaction(self._engine) as session:
            session.execute(update(Approval).where(col(Approval.id) == approval_id).values(message_ts=message_ts))

    def apply(
        self,
        *,
        row: Approval,
        transition: Transition,
        actor: Actor,
        now: datetime,
        request_id: str,
        timed_out: bool = False,
        notes: Notes | None = None,
    ) -> bool:
        """Move `row` along `transition` if nobody else did first; audit it and queue its Slack effects
        in the same transaction. `row` is brought up to date in memory (no read after a claim)."""
        live = col(Approval.expires_at) <= now if timed_out else col(Approval.expires_at) > now
        values: dict[str, Any] = {"status": transition.to_status.value}
        if not timed_out:
            values.update(decided_by=actor.user_id, decided_at=now)
        if transition.executes:
            values.update(attempts=col(Approval.attempts) + 1, lease_until=now + self.lease, claimed_by=self.replica)
        if transition.to_status not in OPEN and transition.to_status is not Status.EXECUTING:
            values["finished_at"] = now
        with transaction(self._engine) as session:
            won = self._conditional(session, row.id, transition.from_status, live, values)
            if won:
                detail = self._closing_note(session, row, transition.to_status)
                entry = Entry(
                    actor,
                    f"{row.action}.{transition.audit_action}",
                    "accepted",
                    params_of(row),
                    request_id,
                    row.id,
                    row.channel,
                    detail,
                )
                self._audit.append(session, entry)
                _mirror(row, values, transition)
                self._notes(session, notes, row)
        if won:
            self.outbox.wake()
        return won

    @staticmethod
    def _closing_note(session: Session, row: Approval, to_status: Status) -> str:
        """For a request closed unrun: read its attempts under our UPDATE's lock (a click just before ours
        may have run it) into `row`, and say when an earlier attempt may have reached the backend."""
        if to_status not in (Status.REJECTED, Status.EXPIRED):
            return ""
        row.attempts = int(session.scalar(select(Approval.attempts).where(col(Approval.id) == row.id)) or 0)
        return earlier_attempts_note(row.action, row.attempts)

    def finish(
        self,
        *,
        row: Approval,
        to_status: Status,
        actor: Actor,
        now: datetime,
        request_id: str,
        outcome: str,
        audit_outcome: str,
        detail: str = "",
        uncertain: bool = False,
        notes: Notes | None = None,
    ) -> bool:
        """Record the result of an execution (only while it is executing), with its Slack effects."""
        values: dict[str, Any] = {"status": to_status.value, "outcome": outcome, "lease_until": None}
        if to_status is Status.PENDING:
            values.update(decided_by=None, decided_at=None)  # retryable: the request is open again
            if not uncertain:  # this attempt surely never took effect: it does not count as one that may have
                values["attempts"] = col(Approval.attempts) - 1
        elif to_status is Status.AWAITING_CONFIRMATION:
            pass  # the break-glass TTL keeps running until a second person confirms
        else:
            values["finished_at"] = now
        with transaction(self._engine) as session:
            won = self._conditional(session, row.id, Status.EXECUTING, None, values)
            if won:
                step = "executed" if audit_outcome == "applied" else "failed"
                entry = Entry(
                    actor,
                    f"{row.action}.{step}",
                    audit_outcome,
                    params_of(row),
                    request_id,
                    row.id,
                    row.channel,
                    detail,
                )
                self._audit.append(session, entry)
                row.status, row.outcome, row.lease_until = to_status.value, outcome, None
                if to_status is Status.PENDING:
                    row.decided_by, row.decided_at = None, None
                    row.attempts -= 0 if uncertain else 1
                self._notes(session, notes, row)
        if won:
            self.outbox.wake()
        return won

    def lapsed(self, *, now: datetime, limit: int = 50) -> list[Approval]:
        """Approvals `executing` whose claimant's lease has lapsed: its process died (or lost its store)."""
        with Session(self._engine, expire_on_commit=False) as session:
            query = select(Approval).where(col(Approval.status) == Status.EXECUTING.value, _lapsed(now, self.lease))
            return list(session.exec(query.order_by(col(Approval.decided_at)).limit(limit)))

    def renew(self, *, approval_id: str, now: datetime) -> bool:
        """Extend our lease on an execution still running here."""
        with transaction(self._engine) as session:
            result = session.execute(
                update(Approval)
                .where(
                    col(Approval.id) == approval_id,
                    col(Approval.status) == Status.EXECUTING.value,
                    col(Approval.claimed_by) == self.replica,
                )
                .values(lease_until=now + self.lease)
            )
            return int(getattr(result, "rowcount", 0)) == 1

    def take_over(self, *, row: Approval, actor: Actor, now: datetime, notes: Notes | None = None) -> bool:
        """Claim a lapsed execution to resume it (once across replicas), audited with its Slack note."""
        values: dict[str, Any] = {
            "lease_until": now + self.lease,
            "claimed_by": self.replica,
            "resumes": col(Approval.resumes) + 1,
        }
        with transaction(self._engine) as session:
            won = self._conditional(session, row.id, Status.EXECUTING, _lapsed(now, self.lease), values)
            if won:
                row.lease_until, row.claimed_by, row.resumes = now + self.lease, self.replica, row.resumes + 1
                entry = Entry(
                    actor,
                    f"{row.action}.resumed",
                    "accepted",
                    params_of(row),
                    row.request_id,
                    row.id,
                    row.channel,
                    f"resume {row.resumes}: the claimant's lease lapsed; re-sent with the same idempotency key",
                )
                self._audit.append(session, entry)
                self._notes(session, notes, row)
        if won:
            self.outbox.wake()
        return won

    def interrupt(
        self, *, row: Approval, actor: Actor, now: datetime, outcome: str, detail: str, notes: Notes | None = None
    ) -> bool:
        """Close a lapsed `executing` approval as failed, once across replicas (after bounded resumes)."""
        values: dict[str, Any] = {
            "status": Status.FAILED.value,
            "outcome": outcome,
            "finished_at": now,
            "lease_until": None,
        }
        with transaction(self._engine) as session:
            won = self._conditional(session, row.id, Status.EXECUTING, _lapsed(now, self.lease), values)
            if won:
                entry = Entry(
                    actor,
                    f"{row.action}.failed",
                    "interrupted",
                    params_of(row),
                    row.request_id,
                    row.id,
                    row.channel,
                    detail,
                )
                self._audit.append(session, entry)
                row.status, row.outcome = Status.FAILED.value, outcome
                self._notes(session, notes, row)
        if won:
            self.outbox.wake()
        return won

    @staticmethod
    def _conditional(
        session: Session, approval_id: str, from_status: Status, live: Any, values: dict[str, Any]
    ) -> bool:
        stmt = update(Approval).where(col(Approval.id) == approval_id, col(Approval.status) == from_status.value)
        if live is not None:
            stmt = stmt.where(live)
        result = session.execute(stmt.values(**values))
        return int(getattr(result, "rowcount", 0)) == 1

    def due(self, *, now: datetime, limit: int = 50) -> list[Approval]:
        """Open approvals whose TTL has run out (expiry for requests, escalation for break-glass)."""
        with Session(self._engine, expire_on_commit=False) as session:
            query = select(Approval).where(
                col(Approval.status).in_([s.value for s in OPEN]), col(Approval.expires_at) <= now
            )
            return list(session.exec(query.order_by(col(Approval.expires_at)).limit(limit)))

    def recent(self, *, action_prefix: str, limit: int = 20) -> list[Approval]:
        with Session(self._engine, expire_on_commit=False) as session:
            query = select(Approval).where(col(Approval.action).startswith(action_prefix))
            return list(session.exec(query.order_by(col(Approval.created_at).desc()).limit(limit)))


def _lapsed(now: datetime, lease: timedelta) -> Any:
    # Rows claimed before leases existed count from their claim.
    return (col(Approval.lease_until) < now) | (
        col(Approval.lease_until).is_(None) & (col(Approval.decided_at) <= now - lease)
    )


def _mirror(row: Approval, values: dict[str, Any], transition: Transition) -> None:
    """What the winning UPDATE wrote, on the caller's copy."""
    row.status = transition.to_status.value
    for key in ("decided_by", "decided_at", "lease_until", "claimed_by", "finished_at"):
        if key in values:
            setattr(row, key, values[key])
    if transition.executes:
        row.attempts += 1
