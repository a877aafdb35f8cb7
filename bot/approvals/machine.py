"""The two-person approval state machine, as pure functions over an approval's current state.

    pending ──approve──▶ executing ──▶ executed | failed
       │                    ├─(backend unavailable, TTL left)─▶ pending   (retry with the same key)
       │                    ├─(claimant's lease lapsed: its process died)─▶ executing again, resumed by any
       │                    │        replica with the same Idempotency-Key (at most MAX_RESUMES times)
       │                    └─(still unrecorded after MAX_RESUMES)─▶ failed ("interrupted", what is known)
       ├──reject──▶ rejected          (by an approver, or withdrawn by the requester)
       └──TTL─────▶ expired
    break-glass: executing ──▶ awaiting_confirmation ──confirm──▶ confirmed
                                        ├──dispute──▶ disputed (escalated at once)
                                        └──TTL──────▶ escalated
The store applies a transition with one conditional UPDATE on `from_status`, so of any number of
clicks, retries or replicas exactly one wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot.approvals.errors import AlreadyHandled, ApprovalExpired, SelfApproval
from bot.approvals.policy import Directory, check_approver


class Status(StrEnum):
    PENDING = "pending"
    EXECUTING = "executing"
    EXECUTED = "executed"
    FAILED = "failed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    CONFIRMED = "confirmed"
    DISPUTED = "disputed"
    ESCALATED = "escalated"


class Verb(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


OPEN = frozenset({Status.PENDING, Status.AWAITING_CONFIRMATION})

# The claimant of an execution holds a lease it renews while it runs; once the lease lapses (its
# process died, or cannot reach the store) any replica's sweep resumes the execution with the same
# Idempotency-Key, so the backend applies it at most once. Seconds, so a crash costs seconds.
EXECUTION_LEASE = timedelta(seconds=10)
# Resumes of one execution before the bot stops re-sending and says the outcome is unknown.
MAX_RESUMES = 3


@dataclass(frozen=True)
class ApprovalView:
    """The fields the rules look at; built from the stored row."""

    id: str
    action: str
    requester: str
    status: Status
    expires_at: datetime
    break_glass: bool = False
    decided_by: str | None = None
    decided_at: datetime | None = None


@dataclass(frozen=True)
class Transition:
    from_status: Status
    to_status: Status
    audit_action: str  # the step name written to the audit log
    executes: bool  # whether the winner must now run the action


def decide(view: ApprovalView, *, actor: str, verb: Verb, now: datetime, directory: Directory) -> Transition:
    """The transition a click asks for, or a typed error saying why it is refused."""
    if view.status not in OPEN:
        raise AlreadyHandled(view.status.value, view.decided_by, view.decided_at)
    if now >= view.expires_at:
        raise ApprovalExpired(view.expires_at)
    withdrawing = verb is Verb.REJECT and actor == view.requester and view.status is Status.PENDING
    if withdrawing:
        return Transition(Status.PENDING, Status.REJECTED, "withdrawn", executes=False)
    if actor == view.requester:
        raise SelfApproval()
    check_approver(directory, user_id=actor, action=view.action)
    if view.status is Status.AWAITING_CONFIRMATION:
        if verb is Verb.APPROVE:
            return Transition(Status.AWAITING_CONFIRMATION, Status.CONFIRMED, "confirmed", executes=False)
        return Transition(Status.AWAITING_CONFIRMATION, Status.DISPUTED, "disputed", executes=False)
    if verb is Verb.APPROVE:
        return Transition(Status.PENDING, Status.EXECUTING, "approved", executes=True)
    return Transition(Status.PENDING, Status.REJECTED, "rejected", executes=False)


def on_timeout(view: ApprovalView, *, now: datetime) -> Transition | None:
    """What the sweeper does with an approval whose TTL has run out; None when nothing is due."""
    if now < view.expires_at:
        return None
    if view.status is Status.PENDING:
        return Transition(Status.PENDING, Status.EXPIRED, "expired", executes=False)
    if view.status is Status.AWAITING_CONFIRMATION:
        return Transition(Status.AWAITING_CONFIRMATION, Status.ESCALATED, "escalated", executes=False)
    return None


def status_command(action: str) -> str:
    """The command that shows the live state an action changes, e.g. `/halt status` for a resume."""
    family = action.split(".")[0]
    return "/halt status" if family == "resume" else f"/{family} status"


def earlier_attempts_note(action: str, attempts: int) -> str:
    """Why "nothing was done" would be false for a request closed after an execution whose result was
    unknown (e.g. a write that timed out may still land); empty when it never ran."""
    if attempts <= 0:
        return ""
    check = status_command(action)
    return f"not run again, but an earlier attempt ({attempts}) may have reached the backend; check {check}"


def after_execution(*, break_glass: bool, succeeded: bool, retryable: bool, ttl_left: bool) -> Status:
    """Where an executing approval goes once the action ran (or could not run)."""
    if succeeded:
        return Status.AWAITING_CONFIRMATION if break_glass else Status.EXECUTED
    if retryable and ttl_left and not break_glass:
        return Status.PENDING
    return Status.FAILED


__all__ = [
    "EXECUTION_LEASE",
    "MAX_RESUMES",
    "OPEN",
    "ApprovalView",
    "Status",
    "Transition",
    "Verb",
    "after_execution",
    "decide",
    "earlier_attempts_note",
    "on_timeout",
    "status_command",
]
