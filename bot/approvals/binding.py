"""Approvals bound to the audit chain: what runs is what the chain recorded when it was requested.

The approval row is ordinary, writable state; its own `requested` audit row is hash-chained and
covered by signed checkpoints. So an approval whose action or parameters differ from that row (say,
a pending "halt tenant:acme" rewritten to "resume global" with its params_hash recomputed) is
refused, audited and escalated, and the backend is never called."""

from __future__ import annotations

import logging

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session, col, select

from bot.approvals.actions import Outcome
from bot.approvals.messages import thread_note
from bot.approvals.outbox import Note
from bot.approvals.policy import Directory, Role
from bot.audit.log import Actor, AuditLog, Entry, row_hash, sha256
from bot.storage.models import Approval, AuditEvent
from bot.text import safe

log = logging.getLogger("opsbot.flow")


def requested_row(engine: Engine, approval_id: str) -> AuditEvent | None:
    """The approval's first audit row: its `requested` (or `break_glass`) step."""
    with Session(engine) as session:
        query = select(AuditEvent).where(col(AuditEvent.approval_id) == approval_id)
        return session.exec(query.order_by(col(AuditEvent.seq)).limit(1)).first()


def mismatch(row: Approval, recorded: AuditEvent | None) -> str:
    """Empty when `row` asks for exactly what its requested audit row recorded; else what differs."""
    if recorded is None:
        return "the audit log has no request row for it"
    if recorded.hash != row_hash(recorded) or recorded.params_hash != sha256(recorded.params):
        return "its request row in the audit log was altered"
    step = "break_glass" if row.break_glass else "requested"
    if recorded.action != f"{row.action}.{step}":
        return f"the audit log recorded `{recorded.action}`, the approval now says `{row.action}.{step}`"
    if recorded.params != row.params:
        return "its parameters differ from the ones the audit log recorded at the request"
    return ""


class Binding:
    """Checks an approval against its request row before it runs; audits and escalates a mismatch."""

    def __init__(self, engine: Engine, audit: AuditLog, directory: Directory) -> None:
        self._engine, self._audit, self._directory = engine, audit, directory

    def check(self, row: Approval) -> str:
        try:
            recorded = requested_row(self._engine, row.id)
        except (OperationalError, DBAPIError) as exc:
            if row.action == "halt":  # fail safe in the safe direction: a halt must happen
                log.warning(
                    "could not read the request row of %s (%s); halting all the same", row.id, type(exc).__name__
                )
                return ""
            return "the audit log could not be read to confirm what was requested"
        return mismatch(row, recorded)

    def refused(self, row: Approval, *, approver: str, request_id: str, why: str) -> Outcome:
        """Audit the refusal (before anything else); the caller records the failure and then escalates."""
        log.error("approval %s refused: it does not match its request in the audit log: %s", row.id, why)
        self._audit.record(
            Entry(
                Actor(row.team_id, approver),
                f"{row.action}.binding_refused",
                "denied",
                {"approval_id": row.id, "action": row.action, "params_hash": row.params_hash},
                request_id,
                row.id,
                row.channel,
                why,
            )
        )
        return Outcome(
            False,
            ":no_entry: *Not run:* this approval no longer matches what was requested "
            f"({safe(why, 300)}). It was changed outside the bot; escalated.",
            "failed",
            detail=f"approval does not match its request row: {why}",
        )

    def escalation_note(self, row: Approval, *, why: str) -> Note:
        holders = sorted(self._directory.holders(Role.HALT_AUTHORITY) | self._directory.holders(Role.ADMIN))
        text = (
            f":rotating_light: *Escalation:* approval `{row.id}` was refused at execution: {safe(why, 300)}. "
            f"The approvals table was changed outside the bot; nothing was sent to the backend. "
            f"{' '.join(f'<@{u}>' for u in holders) or 'No halt authorities or admins are configured.'} "
            "please review, and run `opsbot audit verify`."
        )
        return thread_note(row, text, broadcast=True)
