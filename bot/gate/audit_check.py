"""No-go "admin/runtime-control actions are not fully audited": the chain verifies, and every
executed approval has its requested, approved and executed rows (break-glass: break_glass and executed)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.approvals.machine import Status
from bot.audit.log import AuditLog
from bot.storage.models import Approval, AuditEvent

# Statuses an approval only reaches after its action ran.
EXECUTED = frozenset(
    {Status.EXECUTED, Status.AWAITING_CONFIRMATION, Status.CONFIRMED, Status.DISPUTED, Status.ESCALATED}
)
STEPS = ("requested", "approved", "executed")
BREAK_GLASS_STEPS = ("break_glass", "executed")


@dataclass(frozen=True)
class Gap:
    approval_id: str
    action: str
    missing: tuple[str, ...]


@dataclass(frozen=True)
class AuditFinding:
    chain_ok: bool
    rows: int
    bad_seq: int | None
    problem: str
    executed: int  # executed approvals looked at
    gaps: tuple[Gap, ...]


def audit_finding(audit: AuditLog, engine: Engine) -> AuditFinding:
    """Raises StoreUnavailable (an OpsbotError) when the store cannot be read."""
    verification = audit.verify()
    if not verification.ok:
        return AuditFinding(False, verification.checked, verification.first_bad_seq, verification.reason, 0, ())
    approvals, steps = _executed_with_steps(engine)
    gaps = []
    for approval in approvals:
        wanted = BREAK_GLASS_STEPS if approval.break_glass else STEPS
        missing = tuple(s for s in wanted if f"{approval.action}.{s}" not in steps[approval.id])
        if missing:
            gaps.append(Gap(approval.id, approval.action, missing))
    return AuditFinding(True, verification.checked, None, "", len(approvals), tuple(gaps))


def _executed_with_steps(engine: Engine) -> tuple[list[Approval], dict[str, set[str]]]:
    with Session(engine, expire_on_commit=False) as session:
        approvals = list(session.exec(select(Approval).where(col(Approval.status).in_([s.value for s in EXECUTED]))))
        steps: dict[str, set[str]] = defaultdict(set)
        ids = [a.id for a in approvals]
        for start in range(0, len(ids), 500):  # bounded IN lists
            query = select(AuditEvent.approval_id, AuditEvent.action).where(
                col(AuditEvent.approval_id).in_(ids[start : start + 500])
            )
            for approval_id, action in session.exec(query):
                steps[approval_id].add(action)
    return approvals, steps
