"""What every replica's sweep does with approvals nobody is attending to: time out those whose TTL ran
out, and resume executions whose claimant died (its lease lapsed) with the same Idempotency-Key, so
the backend applies each at most once. Only after MAX_RESUMES is an execution given up as
interrupted, saying exactly what the bot knows."""

from __future__ import annotations

import logging
from datetime import datetime

from bot.approvals.flow import escalated, escalation_note, execute, time_out
from bot.approvals.machine import MAX_RESUMES, status_command
from bot.approvals.messages import BROADCAST, card_note, thread_note
from bot.approvals.outbox import Note
from bot.audit.log import SYSTEM
from bot.storage.models import Approval
from commands.deps import Deps

log = logging.getLogger("opsbot.flow")


def sweep(deps: Deps) -> int:
    """Safe to run in every replica at once: each step is a conditional UPDATE one of them wins."""
    now = deps.now()
    due = deps.approvals.due(now=now)
    for row in due:
        time_out(deps, row)
    lapsed = deps.approvals.lapsed(now=now)
    for row in lapsed:
        if row.resumes >= MAX_RESUMES:
            interrupt(deps, row, now=now)
        else:
            resume(deps, row, now=now)
    return len(due) + len(lapsed)


def resume(deps: Deps, row: Approval, *, now: datetime) -> bool:
    """Take over a lapsed execution and run it again; the thread says so."""
    key = f"{row.id}:{row.action}"
    text = (
        f":recycle: *Resumed* by replica `{deps.replica}`: the bot process that was executing this stopped "
        f"before recording the outcome, so it is sent again with the same idempotency key (`{key}`); the "
        f"backend applies it at most once."
    )
    if not deps.approvals.take_over(row=row, actor=SYSTEM, now=now, notes=lambda r: [thread_note(r, text)]):
        return False
    log.warning("resuming approval %s (resume %d)", row.id, row.resumes)
    deps.metrics.approvals.labels(row.action, "resumed").inc()
    approver = row.decided_by or row.requester
    execute(deps, row, approver=approver, request_id=row.request_id)
    return True


def interrupt(deps: Deps, row: Approval, *, now: datetime) -> None:
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
        found = [card_note(deps, r, status=text, buttons=False), thread_note(r, text, broadcast=r.action in BROADCAST)]
        if r.break_glass:  # it may have halted with nobody confirming it
            found.append(escalation_note(deps, r, why="interrupted before its outcome was recorded"))
        return found

    if not deps.approvals.interrupt(row=row, actor=SYSTEM, now=now, outcome=text, detail=detail, notes=notes):
        return
    deps.metrics.approvals.labels(row.action, "interrupted").inc()
    if row.break_glass:
        escalated(deps, row, why="interrupted before its outcome was recorded")
