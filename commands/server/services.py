"""The approval machinery and the break-glass halt, built once from the deps' parts: each service gets
the few collaborators it uses, never the Deps bag."""

from __future__ import annotations

from bot.approvals.audit_notes import AuditNotes
from bot.approvals.binding import Binding
from bot.approvals.flow import Flow
from bot.halt.breakglass import BreakGlassHalts
from commands.deps import Deps
from commands.slack_direct import SlackDirect


def attach_services(deps: Deps) -> None:
    binding = Binding(deps.engine, deps.audit, deps.directory)
    deps.flow = Flow(
        approvals=deps.approvals,
        audit=deps.audit,
        directory=deps.directory,
        actions=deps.actions,  # the same dict: the command modules register their actions into it
        metrics=deps.metrics,
        clock=deps.now,  # through the deps, whose clock the tests move
        binding=binding,
        audit_notes=AuditNotes(deps.approvals, deps.actions, binding, deps.checkpoints),
        direct=SlackDirect(deps.slack),
        ttl_seconds=deps.settings.approval_ttl_seconds,
        replica=deps.replica,
    )
    deps.breakglass = BreakGlassHalts(
        deps.flow, engine=deps.engine, journal=deps.journal, replays=deps.replays, store_calls=deps.store_calls
    )
