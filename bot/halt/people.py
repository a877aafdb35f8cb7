"""Who stands behind each halt in force: the requester and the approver (or, for a break-glass halt, who
confirmed it), read from the approvals the bot executed. `/halt status` names them per halted scope."""

from __future__ import annotations

from collections.abc import Iterable

from bot.approvals.machine import Status
from bot.approvals.store import params_of
from bot.storage.models import Approval

# Statuses of a halt approval whose halt was applied (break-glass ones run before their confirmation).
RAN = frozenset({Status.EXECUTED, Status.AWAITING_CONFIRMATION, Status.CONFIRMED, Status.DISPUTED, Status.ESCALATED})
LOOKED_AT = 200  # the newest halt approvals searched; older halts say "not found in the bot's records"


def who(row: Approval) -> str:
    """mrkdwn: `requested by <@U1>, approved by <@U2>`, or the break-glass wording."""
    status = Status(row.status)
    if not row.break_glass:
        return f"requested by <@{row.requester}>, approved by <@{row.decided_by or 'unknown'}>"
    head = f"break-glass by <@{row.requester}>"
    if status is Status.CONFIRMED:
        return f"{head}, confirmed by <@{row.decided_by}>"
    if status is Status.DISPUTED:
        return f"{head}, *disputed* by <@{row.decided_by}>"
    if status is Status.ESCALATED:
        return f"{head}, *not confirmed* (escalated)"
    return f"{head}, awaiting a second halt authority's confirmation"


def halt_origins(rows: Iterable[Approval]) -> dict[str, str]:
    """Scope -> who (see `who`), from halt approvals newest first; the newest applied one per scope wins."""
    found: dict[str, str] = {}
    for row in rows:
        if row.action != "halt" or Status(row.status) not in RAN:
            continue
        scope = str(params_of(row).get("scope", ""))
        found.setdefault(scope, f"{who(row)}, approval `{row.id}`")
    return found
