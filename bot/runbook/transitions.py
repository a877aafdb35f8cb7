"""The cutover's transitions as events other parts of the bot subscribe to (monitoring windows).

Cutover code calls `notify(deps.on_cutover_transition, transition)` once a stage has been entered;
a subscriber that fails is logged and never undoes or delays the transition itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

log = logging.getLogger("opsbot.transitions")


@dataclass(frozen=True)
class CutoverTransition:
    seq: int  # the cutover_state row: one per transition
    from_stage: str
    to_stage: str
    entered_at: datetime
    version: str | None
    requested_by: str
    approved_by: str
    approval_id: str
    request_id: str
    channel: str  # where the advance was requested


Hook = Callable[[CutoverTransition], None]


def notify(hooks: Iterable[Hook], transition: CutoverTransition) -> None:
    for hook in hooks:
        try:
            hook(transition)
        except Exception:
            log.exception("a cutover-transition subscriber failed (the transition stands)")
