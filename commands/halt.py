"""`/halt`: status, two-person halt and resume, and break-glass halt (`--now`)."""

from __future__ import annotations

import logging
from concurrent.futures import TimeoutError as FutureTimeout

from slack_bolt import App, Respond
from sqlalchemy.exc import SQLAlchemyError

from bot.approvals.policy import Role, check_request
from bot.audit.log import Entry
from bot.clients.backend_errors import BackendError, backend_audit_detail
from bot.drift.check import drift_line
from bot.gate.warnings import gate_warnings
from bot.halt.actions import status_text, trace_line
from bot.halt.breakglass import BreakGlass
from bot.halt.people import LOOKED_AT, halt_origins
from commands.common import Invocation, ephemeral, register_command
from commands.deps import Deps
from commands.errors import operator_message
from commands.grammar.halt import ControlRequest, HaltCommand, StatusRequest, parse
from commands.views.blocks import as_dicts, notice_blocks

log = logging.getLogger("opsbot.halt")


def plan(deps: Deps, inv: Invocation) -> HaltCommand:
    """Parse and authorise; pure and fast, so the ack and the work after it agree."""
    command = parse(inv.text)
    if isinstance(command, StatusRequest):
        check_request(deps.directory, user_id=inv.actor.user_id, action="halt.status", channel=inv.channel)
    else:
        check_request(
            deps.directory,
            user_id=inv.actor.user_id,
            action=command.action,
            channel=inv.channel,
            break_glass=command.break_glass,
        )
    return command


def register(app: App, deps: Deps) -> None:
    register_command(
        app,
        deps,
        name="/halt",
        action="halt",
        plan=lambda inv: plan(deps, inv),
        work=lambda inv, respond: _work(deps, inv, respond),
        critical=lambda command: isinstance(command, ControlRequest),
        claims_replay=lambda command: isinstance(command, ControlRequest) and command.break_glass,
    )


def _work(deps: Deps, inv: Invocation, respond: Respond) -> None:
    command = plan(deps, inv)
    if isinstance(command, StatusRequest):
        _status(deps, inv, respond)
        return
    _request(deps, inv, command, respond)
    deps.metrics.commands.labels("/halt", "requested").inc()


def _status(deps: Deps, inv: Invocation, respond: Respond) -> None:
    try:
        reply = deps.backend.trading_control(request_id=inv.request_id)
    except BackendError as exc:
        deps.metrics.commands.labels("/halt", "backend_error").inc()
        ephemeral(respond, operator_message(exc))  # first: the operator hears even if the audit write fails
        deps.audit.record(
            Entry(
                inv.actor,
                "halt.status_failed",
                "failed",
                {"command": "status"},
                inv.request_id,
                "",
                inv.channel,
                backend_audit_detail(exc),
            )
        )
        return
    try:
        origins = halt_origins(deps.approvals.recent(action_prefix="halt", limit=LOOKED_AT))
    except SQLAlchemyError as exc:  # the backend's state is what matters; the names are a help
        log.warning("halt approvals not read for /halt status: %s", type(exc).__name__)
        origins = {}
    text = status_text(reply, origins) + "\n" + drift_line(deps.cosmos, deps.settings, reply.data)
    ephemeral(respond, text, blocks=as_dicts(notice_blocks(text, context=[trace_line(reply)])))
    deps.metrics.commands.labels("/halt", "status").inc()


# How long the request waits for the current state before posting without it: the approval
# message must not wait for a slow backend.
CURRENT_STATE_WAIT_S = 1.0


def _current_state(deps: Deps, inv: Invocation, scope: str) -> str:
    future = deps.workers.submit(deps.backend.trading_control, request_id=inv.request_id)
    try:
        reply = future.result(timeout=CURRENT_STATE_WAIT_S)
    except FutureTimeout:
        wait = f"{CURRENT_STATE_WAIT_S:.0f} s"
        return f":grey_question: Current state not known yet: the backend did not answer within {wait}."
    except BackendError as exc:
        return f":grey_question: Current state unknown: {operator_message(exc)}"
    state = "halted" if reply.data.is_halted(scope) else "trading"
    return f":information_source: Right now `{scope}` is *{state}* (control revision {reply.data.revision})."


def _request(deps: Deps, inv: Invocation, command: ControlRequest, respond: Respond) -> None:
    if command.break_glass:
        # Break-glass: the requester's own authority executes now, with or without the store; a second
        # person confirms afterwards.
        req = BreakGlass(
            inv.actor, inv.channel, inv.request_id, command.scope, command.reason, inv.replay_key, respond.response_url
        )
        deps.breakglass.halt_now(req, tell=lambda text: ephemeral(respond, text))
        return
    spec = deps.actions[command.action]
    params: dict[str, object] = {"scope": command.scope, "reason": command.reason}
    if command.action == "resume":  # what monitoring knows that argues against trading again
        params["warnings"] = list(gate_warnings(deps.engine, deps.audit, deps.runbook, deps.now()))
    deps.flow.open_request(
        spec=spec,
        params=params,
        actor=inv.actor,
        channel=inv.channel,
        request_id=inv.request_id,
        approve_role=Role.HALT_AUTHORITY,
        status=_current_state(deps, inv, command.scope),
        answer_to=respond.response_url,
    )
