"""After an execution is recorded: sign the audit chain's head and show the checkpoint on the card
(`audit #1234 · 9f3a…, signed`), and escalate an approval refused for not matching its request.
Both go through the outbox like every other Slack effect; nothing here delays the action."""

from __future__ import annotations

import logging

from bot.approvals.binding import Binding
from bot.approvals.messages import Actions, card_note
from bot.approvals.outbox import Note
from bot.approvals.store import ApprovalStore
from bot.audit.checkpointer import Checkpointer
from bot.storage.errors import StoreUnavailable
from bot.storage.models import Approval

log = logging.getLogger("opsbot.flow")


class AuditNotes:
    def __init__(
        self, approvals: ApprovalStore, actions: Actions, binding: Binding, checkpoints: Checkpointer | None
    ) -> None:
        self._approvals, self._actions, self._binding, self._checkpoints = approvals, actions, binding, checkpoints

    def after_execution(self, row: Approval, *, status: str, buttons: bool | None, unbound: str) -> None:
        notes: list[Note] = []
        checkpoint = self._checkpoints.after_action() if self._checkpoints is not None else None  # never raises
        try:
            if checkpoint is not None:
                latest = self._approvals.get(approval_id=row.id) or row  # the card as recorded, now with its witness
                notes.append(
                    card_note(self._actions, latest, status=status, buttons=buttons, audit=checkpoint.compact())
                )
            if unbound:
                notes.append(self._binding.escalation_note(row, why=unbound))
            if notes:
                self._approvals.outbox.enqueue(notes)
        except StoreUnavailable as exc:  # the outcome itself is recorded and queued already
            log.warning("could not queue the audit notes of %s: %s", row.id, exc)
