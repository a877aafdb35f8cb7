"""What every replica's sweep does with approvals nobody is attending to: time out those whose TTL ran
out, and resume executions whose claimant died (its lease lapsed) with the same Idempotency-Key, so
the backend applies each at most once. Only after MAX_RESUMES is an execution given up as
interrupted, saying exactly what the bot knows."""

from __future__ import annotations

import logging
from datetime import datetime

from bot.approvals.flow import Flow
from bot.approvals.machine import MAX_RESUMES, status_command
from bot.approvals.messages import BROADCAST, card_note, thread_note
from bot.approvals.outbox import Note
from bot.audit.log import SYSTEM
from bot.storage.models import Approval

log = logging.getLogger("opsbot.flow")


def sweep(flow: Flow) -> int:
    """Safe to run in every replica at once: each step is a conditional UPDATE one of them wins."""
    now = flow.now()
    due = flow.approvals.due(now=now)
    for row in due:
        flow.time_out(row)
    lapsed = flow.approvals.lapsed(now=now)
    for row in lapsed:
        if row.resumes >= MAX_RESUMES:
            interrupt(flow, row, now=now)
        else:
            resume(flow, row, now=now)
    return len(due) + len(lapsed)


def resume(flow: Flow, row: Approval, *, now: datetime) -> bool:
    """Take over a lapsed execution and run it again; the thread says so."""
    key = f"{row.id}:{row.action}"
    text = (
        f":recycle: *Resumed* by replica `{flow.replica}`: the bot process that was executing this stopped "
        f"before recording the outcome, so it is sent again with the same idempotency key (`{key}`); the "
        f"backend applies it at most once."
    )
    if not flow.approvals.take_over(row=row, actor=SYSTEM, now=now, notes=lambda r: [thread_note(r, text)]):
        return False
    log.warning("resuming approval %s (resume %d)", row.id, row.resumes)
    flow.metrics.approvals.labels(row.action, "resumed").inc()
    approver = row.decided_by or row.requester
    flow.execute(row, approver=approver, request_id=row.request_id)
    return True


def interrupt(flow: Flow, row: Approval, *, now: datetime) -> None:
    """Fail an execution that was resumed MAX_RESUMES times without an outcome the bot could record."""
    check = status_command(row.action)
    who = f"Break-glass by <@{row.requester}>" if row.break_glass else f"Approved by <@{row.decided_by}>"
    text = (
        f":warning: *Interrupted, outcome unknown:* {who}. The bot sent it {row.resumes + 1} times with the "
        f"same idempotency key (`{row.id}:{row.action}`) and never got an answer it could record. At most one "
        f"of those took effect, but whether one did is unknown. Check `{check}` before acting again."
    )
    detail = f"interrupted after {row.resumes} resumes: outcome not recorded; check {check}"

    def notes(r: Approval) -> list[Note]:
        found = [
            card_note(flow.actions, r, status=text, buttons=False),
            thread_note(r, text, broadcast=r.action in BROADCAST),
        ]
        if r.break_glass:  # it may have halted with nobody confirming it
            found.append(flow.escalation_note(r, why="interrupted before its outcome was recorded"))
        return found

    if not flow.approvals.interrupt(row=row, actor=SYSTEM, now=now, outcome=text, detail=detail, notes=notes):
        return
    flow.metrics.approvals.labels(row.action, "interrupted").inc()
    if row.break_glass:
        flow.escalated(row, why="interrupted before its outcome was recorded")
