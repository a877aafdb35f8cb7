"""The approval flow: open a request, decide clicks, execute once (bot.approvals.execution). Decide, act,
then tell: a claim goes straight to the action, and every Slack effect is an outbox note committed with
the state change it follows (bot.approvals.outbox), delivered afterwards by the notifier. Expiry and
crash recovery: bot.approvals.sweep; Slack refusing a card: bot.approvals.refused."""

from __future__ import annotations

from dataclasses import dataclass, replace

from bot.approvals.actions import ActionSpec
from bot.approvals.errors import AlreadyHandled, ApprovalExpired, NotAllowed, UnknownApproval
from bot.approvals.execution import Execution
from bot.approvals.machine import Status, Transition, Verb, decide, on_timeout
from bot.approvals.messages import card_note, status_text
from bot.approvals.outbox import Note
from bot.approvals.policy import Role
from bot.approvals.store import view_of
from bot.audit.log import SYSTEM, Actor, Entry
from bot.storage.models import Approval


@dataclass
class Flow(Execution):
    """Built once at start-up (the wiring) and shared by every command and click."""

    ttl_seconds: int
    replica: str

    def open_request(
        self,
        *,
        spec: ActionSpec,
        params: dict[str, object],
        actor: Actor,
        channel: str,
        request_id: str,
        approve_role: Role,
        break_glass: bool = False,
        status: str | None = None,
        answer_to: str | None = None,
        approval_id: str | None = None,
        seen_key: str | None = None,
    ) -> Approval:
        """Store the request and queue its card in one transaction; Slack is told by the notifier.
        `answer_to` (the command's response_url) is where the requester hears if Slack refuses the card;
        `approval_id` and `seen_key` come from a break-glass that chose its id and checks replays
        (bot.halt.breakglass)."""
        if break_glass:
            status = status or f":gear: Break-glass by <@{actor.user_id}>: executing now…"
        extra = {"answer_to": answer_to} if answer_to else {}
        row = self.approvals.create(
            action=spec.name,
            params=params,
            actor=actor,
            approve_role=approve_role.value,
            channel=channel,
            request_id=request_id,
            ttl_seconds=self.ttl_seconds,
            now=self.now(),
            break_glass=break_glass,
            approval_id=approval_id,
            seen_key=seen_key,
            notes=lambda r: [
                replace(card_note(self.actions, r, status=status, buttons=not break_glass, kind="post"), extra=extra)
            ],
        )
        self.metrics.approvals.labels(spec.name, "break_glass" if break_glass else "requested").inc()
        return row

    def decide_click(self, *, approval_id: str, verb: Verb, actor: Actor, request_id: str) -> None:
        """Apply one button click. Raises a typed error for the clicker when it is refused."""
        row = self.approvals.get(approval_id=approval_id)
        if row is None:
            raise UnknownApproval(approval_id)
        now = self.now()
        try:
            transition = decide(view_of(row), actor=actor.user_id, verb=verb, now=now, directory=self.directory)
        except ApprovalExpired:
            self.time_out(row)
            raise
        except NotAllowed as exc:
            self._refused(row, actor, request_id, exc.reason)
            raise
        if not self.approvals.apply(
            row=row,
            transition=transition,
            actor=actor,
            now=now,
            request_id=request_id,
            notes=lambda r: self._decided_notes(r, transition, actor.user_id),
        ):
            latest = self.approvals.get(approval_id=approval_id) or row
            view = view_of(latest)
            raise AlreadyHandled(view.status.value, view.decided_by, view.decided_at)
        # Claimed (the row is up to date in memory): straight to the backend, nothing read or posted first.
        if transition.executes:
            self.execute(row, approver=actor.user_id, request_id=request_id)
        self.metrics.approvals.labels(row.action, transition.audit_action).inc()
        if transition.to_status is Status.DISPUTED:
            self.escalated(row, why=f"disputed by <@{actor.user_id}>")

    def _decided_notes(self, row: Approval, transition: Transition, by: str) -> list[Note]:
        if transition.executes:
            return [card_note(self.actions, row, status=f":gear: Approved by <@{by}>; executing…", buttons=False)]
        notes = [card_note(self.actions, row, status=status_text(row, by))]
        if transition.to_status is Status.DISPUTED:
            notes.append(self.escalation_note(row, why=f"disputed by <@{by}>"))
        return notes

    def _refused(self, row: Approval, actor: Actor, request_id: str, reason: str) -> None:
        what = {"approval_id": row.id}
        self.audit.record(
            Entry(actor, f"{row.action}.approval_refused", "denied", what, request_id, row.id, row.channel, reason)
        )

    def time_out(self, row: Approval) -> None:
        """Expire a request, or escalate an unconfirmed break-glass, once (conditional UPDATE)."""
        now = self.now()
        transition = on_timeout(view_of(row), now=now)
        if transition is None:
            return
        why = "not confirmed within the TTL"
        escalates = transition.to_status is Status.ESCALATED

        def notes(r: Approval) -> list[Note]:
            card = card_note(self.actions, r, status=status_text(r, SYSTEM.user_id))
            return [card, self.escalation_note(r, why=why)] if escalates else [card]

        if not self.approvals.apply(
            row=row,
            transition=transition,
            actor=SYSTEM,
            now=now,
            request_id=row.request_id,
            timed_out=True,
            notes=notes,
        ):
            return
        self.metrics.approvals.labels(row.action, transition.audit_action).inc()
        if escalates:
            self.escalated(row, why=why)
