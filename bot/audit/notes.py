"""After an execution is recorded: sign the audit chain's head and show the checkpoint on the card
(`audit #1234 · 9f3a…, signed`), and escalate an approval refused for not matching its request.
Both go through the outbox like every other Slack effect; nothing here delays the action."""

from __future__ import annotations

import logging

from bot.approvals.messages import card_note
from bot.approvals.outbox import Note
from bot.audit import binding as audit_binding
from bot.storage.errors import StoreUnavailable
from bot.storage.models import Approval
from commands.deps import Deps

log = logging.getLogger("opsbot.flow")


def after_execution(deps: Deps, row: Approval, *, status: str, buttons: bool | None, unbound: str) -> None:
    notes: list[Note] = []
    checkpoint = deps.checkpoints.after_action() if deps.checkpoints is not None else None  # never raises
    try:
        if checkpoint is not None:
            latest = deps.approvals.get(approval_id=row.id) or row  # the card as recorded, now with its witness
            notes.append(card_note(deps, latest, status=status, buttons=buttons, audit=checkpoint.compact()))
        if unbound:
            notes.append(audit_binding.escalation_note(deps, row, why=unbound))
        if notes:
            deps.approvals.outbox.enqueue(notes)
    except StoreUnavailable as exc:  # the outcome itself is recorded and queued already
        log.warning("could not queue the audit notes of %s: %s", row.id, exc)
