"""`/rollback`: the runbook's rollback, planned before approval, approved by a rollback owner, run step
by step (bot.rollback.runner), and `/rollback status`."""

from __future__ import annotations

from collections.abc import Callable

from slack_bolt import App, Respond

from bot.approvals.machine import Status
from bot.approvals.policy import Role, check_request
from bot.approvals.store import view_of
from bot.audit.log import Entry
from bot.rollback.actions import RollbackSpec
from bot.rollback.history import redeploy_refusal, rolled_back_from
from bot.rollback.plan import Observation, RollbackRefused, plan_params
from bot.rollback.runner import RollbackRunner
from bot.rollback.steps import progress_text
from bot.rollback.store import RollbackStore
from bot.rollback.world import observe
from bot.storage.models import Approval
from bot.text import safe, when
from commands.common import Invocation, ephemeral, guarded, register_command
from commands.deps import Deps
from commands.grammar.rollback import RollbackCommand, RollbackRequest, StatusRequest, parse
from commands.views.blocks import as_dicts, notice_blocks


def plan(deps: Deps, inv: Invocation) -> RollbackCommand:
    """Parse and authorise; pure and fast, so the ack and the work after it agree."""
    command = parse(inv.text)
    action = "rollback.status" if isinstance(command, StatusRequest) else "rollback"
    check_request(deps.directory, user_id=inv.actor.user_id, action=action, channel=inv.channel)
    return command


def halt_problem(deps: Deps) -> str | None:
    """Why a /halt could not be approved right now, or None. Nothing of the rollback's is consulted."""
    if "halt" not in deps.actions:
        return "the `/halt` command is not registered in this bot"
    if not deps.directory.holders(Role.HALT_AUTHORITY):
        return "no halt authorities are configured (OPSBOT_HALT_AUTHORITIES), so no halt could be approved"
    return None


def register(app: App, deps: Deps) -> RollbackRunner:
    spec = deps.actions["rollback"]
    assert isinstance(spec, RollbackSpec)
    store, runner = spec.store, spec.runner

    register_command(
        app,
        deps,
        name="/rollback",
        action="rollback",
        plan=lambda inv: plan(deps, inv),
        work=lambda inv, respond: _work(deps, inv, respond, store, runner),
    )
    return runner


def propose(
    deps: Deps, inv: Invocation, respond: Respond, precheck: Callable[[RollbackStore], str | None] | None = None
) -> None:
    """`/rollback <inv.text>` started by a click elsewhere (a monitoring alert's "Propose rollback"):
    the same parsing, permission checks, refusals and plan as the typed command. `precheck`, run once
    the clicker is authorised, may refuse (its text, mrkdwn and safe, is the answer) before anything else."""
    spec = deps.actions["rollback"]
    assert isinstance(spec, RollbackSpec)

    def work() -> None:
        plan(deps, inv)
        refusal = precheck(spec.store) if precheck is not None else None
        if refusal is not None:
            _refuse(deps, inv, respond, refusal, "stale")
            return
        _work(deps, inv, respond, spec.store, spec.runner)

    guarded(deps, inv, respond, "rollback", work)


def _work(deps: Deps, inv: Invocation, respond: Respond, store: RollbackStore, runner: RollbackRunner) -> None:
    command = plan(deps, inv)
    store.reap(now=deps.now(), older_than=runner.config.budget)
    if isinstance(command, StatusRequest):
        _status(deps, respond, store, runner)
        deps.metrics.commands.labels("/rollback", "status").inc()
        return
    refusal = _refusal(deps, store)
    if refusal is not None:
        _refuse(deps, inv, respond, refusal, "busy")
        return
    _request(deps, inv, command, respond, store)


def _refuse(deps: Deps, inv: Invocation, respond: Respond, text: str, outcome: str) -> None:
    deps.audit.record(
        Entry(inv.actor, "rollback.refused", "denied", {"text": inv.text[:200]}, inv.request_id, "", inv.channel, text)
    )
    deps.metrics.commands.labels("/rollback", outcome).inc()
    ephemeral(respond, text)


def _refusal(deps: Deps, store: RollbackStore) -> str | None:
    """A second rollback while one runs, or while one waits for approval, is refused with a pointer."""
    running = store.running()
    if running is not None:
        return (
            f":no_entry: Rollback `{running.id}` is already running (requested by <@{running.requester}>, "
            f"approved by <@{running.approver}>). Follow its progress message or `/rollback status`."
        )
    pending = _pending(deps)
    if pending is not None:
        return (
            f":no_entry: A rollback request is already waiting for a rollback owner (approval `{pending.id}`, "
            f"requested by <@{pending.requester}>, expires {when(pending.expires_at)}). Approve or reject "
            "that one first; its requester can withdraw it with Reject."
        )
    return None


def _pending(deps: Deps) -> Approval | None:
    now = deps.now()
    for row in deps.approvals.recent(action_prefix="rollback", limit=20):
        view = view_of(row)
        if row.action == "rollback" and view.status is Status.PENDING and view.expires_at > now:
            return row
    return None


def _request(deps: Deps, inv: Invocation, command: RollbackRequest, respond: Respond, store: RollbackStore) -> None:
    seen = observe(deps.backend, deps.github, request_id=inv.request_id, to=command.to)
    prior = rolled_back_from(store.recent(), seen.target.sha) if seen.target else None
    try:
        params = plan_params(
            reason=command.reason,
            trigger=command.trigger,
            to=command.to,
            seen=seen,
            workflow=deps.settings.rollback_workflow,
            rolled_back=prior,
        )
    except RollbackRefused as exc:
        deps.metrics.commands.labels("/rollback", "refused").inc()
        ephemeral(respond, exc.text)
        return
    refusal = redeploy_refusal(params, prior)
    if refusal is not None:  # a card nobody could approve would only block the next request
        _refuse(deps, inv, respond, f":no_entry: Not requested: {refusal}.", "refused")
        return
    deps.flow.open_request(
        spec=deps.actions["rollback"],
        params=params,
        actor=inv.actor,
        channel=inv.channel,
        request_id=inv.request_id,
        approve_role=Role.ROLLBACK_OWNER,
        status=_context(seen, store),
        answer_to=respond.response_url,
    )
    deps.metrics.commands.labels("/rollback", "requested").inc()


def _context(seen: Observation, store: RollbackStore) -> str:
    lines = [
        ":hourglass: Waiting for a rollback owner (not the requester). On approval the bot re-reads the "
        "deployed version and the target, and refuses if either changed."
    ]
    if seen.health_status != "ok":
        lines.append(f":warning: The backend reports `{safe(seen.health_status, 20)}` health.")
    for failed in store.open_failed():
        lines.append(
            f":information_source: Failed rollback `{failed.id}` (stopped at {safe(failed.failed_step, 40)}) "
            "still holds the cutover freeze; this one closes it when it completes."
        )
    return "\n".join(lines)


def _status(deps: Deps, respond: Respond, store: RollbackStore, runner: RollbackRunner) -> None:
    row = store.running() or store.latest()
    lines: list[str] = []
    if row is None:
        lines.append(":information_source: No rollback has run yet.")
    else:
        lines.append(progress_text(row, runner.trigger_name(row.trigger)))
    pending = _pending(deps)
    if pending is not None:
        lines.append(f":hourglass: A rollback request waits for approval: `{pending.id}` by <@{pending.requester}>.")
    freeze = deps.freeze.active()
    lines.append(f":ice_cube: Cutover frozen: {safe(freeze.reason, 300)}" if freeze else "Cutover: not frozen.")
    text = "\n".join(lines)
    ephemeral(respond, text, blocks=as_dicts(notice_blocks(text)))
