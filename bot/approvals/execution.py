"""Executing a claimed approval: run the action once under a renewed lease, then record where it ended
up, with its Slack notes in the same transaction. When the store refuses the outcome, or another replica
closed the approval first, the channel is told what the bot knows (never "nothing was done")."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime

from bot.approvals.actions import ExecutionContext, Outcome
from bot.approvals.audit_notes import AuditNotes
from bot.approvals.binding import Binding
from bot.approvals.machine import Status, after_execution, status_command
from bot.approvals.messages import BROADCAST, Actions, after_text, card_note, escalation_note, outcome_note, thread_note
from bot.approvals.outbox import Direct, NotDelivered, Note
from bot.approvals.policy import Directory
from bot.approvals.store import ApprovalStore, params_intact, params_of, view_of
from bot.audit.log import SYSTEM, Actor, AuditLog, Entry
from bot.metrics import Metrics
from bot.storage.errors import StoreUnavailable
from bot.storage.models import Approval

log = logging.getLogger("opsbot.flow")

# Waits before retrying to record an outcome the store refused. Each try already waits out SQLite's
# 5 s busy timeout, so three tries span about 16 s: a lock held by a burst passes, a dead store does not.
RECORD_RETRY_DELAYS_S = (0.5, 1.0)
UNCONFIRMED = "failed with an unknown outcome: it may have applied with nobody confirming it"


@dataclass
class Execution:
    """The collaborators an execution uses; `actions` is the registry the command modules fill in."""

    approvals: ApprovalStore
    audit: AuditLog
    directory: Directory
    actions: Actions
    metrics: Metrics
    clock: Callable[[], datetime]
    binding: Binding
    audit_notes: AuditNotes
    direct: Direct  # only for when the store will not take even a note

    def now(self) -> datetime:
        return self.clock()

    def execute(self, row: Approval, *, approver: str, request_id: str) -> Outcome:
        """Run a claimed (executing) approval and record where it ends up, with its Slack notes."""
        unbound = self.binding.check(row)  # what runs is what the audit chain recorded at the request
        if unbound:
            outcome = self.binding.refused(row, approver=approver, request_id=request_id, why=unbound)
        elif not params_intact(row):
            outcome = Outcome(
                False,
                ":no_entry: The stored request does not match what was approved; not run.",
                "failed",
                detail="params hash mismatch",
            )
        else:
            ctx = ExecutionContext(row.id, params_of(row), row.requester, approver, request_id)
            with self.keep_lease(row):
                outcome = self.actions[row.action].execute(ctx)
        now = self.now()
        target = after_execution(
            break_glass=row.break_glass,
            succeeded=outcome.applied,
            retryable=outcome.retryable,
            ttl_left=now < view_of(row).expires_at,
        )
        recorded = self._record(row, target, Actor(row.team_id, approver), now, request_id, outcome)
        if not recorded:  # None: the store refused it; False: another replica resumed or closed it first
            if recorded is None:
                return self._unrecorded(row, approver, outcome)
            return self._late(row, approver, outcome, request_id)
        self.metrics.approvals.labels(row.action, outcome.audit_outcome).inc()
        # Sign the chain's head now and show it on the card, a witness outside the database (docs/audit.md).
        self.audit_notes.after_execution(
            row,
            status=after_text(row, approver, outcome, target, at=now),
            buttons=None if target is not Status.FAILED else False,
            unbound=unbound,
        )
        if row.break_glass and target is Status.FAILED and outcome.uncertain:  # may have halted, unconfirmed
            self.escalated(row, why=UNCONFIRMED)
        return outcome

    def _outcome_notes(
        self, row: Approval, approver: str, outcome: Outcome, target: Status, at: datetime
    ) -> list[Note]:
        status = after_text(row, approver, outcome, target, at=at)
        buttons = None if target is not Status.FAILED else False
        notes = [card_note(self.actions, row, status=status, buttons=buttons), outcome_note(row, approver, outcome)]
        if row.break_glass and target is Status.FAILED and outcome.uncertain:
            notes.append(self.escalation_note(row, why=UNCONFIRMED))
        return notes

    @contextmanager
    def keep_lease(self, row: Approval) -> Iterator[None]:
        """Renew our lease while the action runs, so no sweep resumes an execution that is alive."""
        stop = threading.Event()
        period = self.approvals.lease.total_seconds() / 3

        def renew() -> None:
            while not stop.wait(period):
                try:
                    self.approvals.renew(approval_id=row.id, now=self.now())
                except StoreUnavailable as exc:
                    log.warning("could not renew the lease of %s: %s", row.id, exc)

        threading.Thread(target=renew, name=f"opsbot-lease-{row.id[-6:]}", daemon=True).start()
        try:
            yield
        finally:
            stop.set()

    def _record(
        self, row: Approval, target: Status, actor: Actor, now: datetime, request_id: str, outcome: Outcome
    ) -> bool | None:
        """True: recorded; False: a sweep closed it meanwhile; None: the store refused every try."""
        for delay in (*RECORD_RETRY_DELAYS_S, None):
            try:
                return self.approvals.finish(
                    row=row,
                    to_status=target,
                    actor=actor,
                    now=now,
                    request_id=request_id,
                    outcome=outcome.summary,
                    audit_outcome=outcome.audit_outcome,
                    detail=outcome.detail,
                    uncertain=outcome.uncertain,
                    notes=lambda r: self._outcome_notes(r, actor.user_id, outcome, target, now),
                )
            except StoreUnavailable as exc:
                log.warning("could not record the outcome of %s: %s", row.id, exc)
                if delay is None:
                    return None
                time.sleep(delay)
        return None

    def _unrecorded(self, row: Approval, approver: str, outcome: Outcome) -> Outcome:
        """The action ran but the store will not take its result: say so, never "nothing was done"."""
        log.error("outcome %s of approval %s NOT recorded; a sweep marks it interrupted", outcome.audit_outcome, row.id)
        self.metrics.approvals.labels(row.action, "unrecorded").inc()
        who = "Break-glass" if row.break_glass else f"Approved by <@{approver}>"
        text = (
            f"{who}. {outcome.summary}\n:warning: *Outcome NOT recorded:* the bot's store is unavailable, so "
            f"this is not in the audit log yet. Once the store answers, the bot re-sends it with the same "
            f"idempotency key (the backend applies it at most once) and records the outcome. Until then check "
            f"`{status_command(row.action)}` before acting again."
        )
        note = card_note(self.actions, row, status=text, buttons=False)
        try:
            self.approvals.outbox.enqueue([note])
        except StoreUnavailable:
            self._tell_directly(row, note)
        return replace(outcome, summary=text)

    def _tell_directly(self, row: Approval, note: Note) -> None:
        """The outbox lives in the store: when the store will not take even the note, say it straight to
        Slack, once and best-effort. The action already ran; nothing waits on this."""
        try:
            if row.message_ts:
                self.direct.update(note, ts=row.message_ts)
            else:
                self.direct.post(note)
        except NotDelivered as exc:
            log.error("approval %s: the store is down and Slack did not take the note either: %s", row.id, exc)

    def _late(self, row: Approval, approver: str, outcome: Outcome, request_id: str) -> Outcome:
        """Our outcome arrived after another replica resumed and recorded this approval, or closed it."""
        try:
            latest = self.approvals.get(approval_id=row.id) or row
        except StoreUnavailable:  # say what came back all the same
            latest = row
        log.warning("approval %s finished here after it was marked %s elsewhere", row.id, latest.status)
        actor, what = Actor(row.team_id, approver), f"{row.action}.outcome_late"
        try:
            self.audit.record(
                Entry(
                    actor, what, outcome.audit_outcome, params_of(row), request_id, row.id, row.channel, outcome.detail
                )
            )
        except StoreUnavailable:
            log.exception("could not audit the late outcome of %s", row.id)
        if latest.status != Status.FAILED.value:  # a resume recorded it: the channel heard from that one
            return outcome
        text = (
            f"{outcome.summary}\n:information_source: This result arrived after the request had been marked "
            f"{latest.status}; check `{status_command(row.action)}`."
        )
        try:
            self.approvals.outbox.enqueue([thread_note(latest, text, broadcast=row.action in BROADCAST)])
        except StoreUnavailable:
            log.exception("could not queue the late outcome of %s", row.id)
        return replace(outcome, summary=text)

    def escalation_note(self, row: Approval, *, why: str) -> Note:
        return escalation_note(self.actions, self.directory, row, why=why)

    def escalated(self, row: Approval, *, why: str) -> None:
        """Audit an escalation queued with its state change (its delivery is the notifier's)."""
        self.audit.record(
            Entry(
                SYSTEM, f"{row.action}.escalation_posted", "accepted", {"why": why}, row.request_id, row.id, row.channel
            )
        )
