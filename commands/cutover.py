"""`/cutover`: status (read-only) and advance (an admin requests, another admin approves)."""

from __future__ import annotations

import json

from slack_bolt import App, Respond

from bot.approvals.policy import Role, check_request, people_of
from bot.audit.log import Entry
from bot.clients.backend_errors import BackendError
from bot.cutover.actions import NAME, missing_text
from bot.cutover.engine import CheckState, stage_statuses
from bot.cutover.entry import entry_summary
from bot.cutover.rules import blockers, next_stage
from bot.cutover.service import CutoverService, Position
from bot.cutover.words import gate_summary
from bot.drift.check import UNKNOWN, drift_line
from bot.gate.composite import Evidence
from bot.gate.context import plain
from bot.gate.store import evaluation_view
from bot.runbook.model import Stage
from bot.text import safe, when
from commands.common import Invocation, ephemeral, register_command
from commands.deps import Deps
from commands.errors import operator_message
from commands.grammar.cutover import Advance, CutoverCommand, Status, parse
from commands.views.blocks import as_dicts, notice_blocks
from commands.views.gate import check_line, status_line


def plan(deps: Deps, inv: Invocation) -> CutoverCommand:
    command = parse(inv.text)
    action = "cutover.status" if isinstance(command, Status) else "cutover.advance"
    check_request(deps.directory, user_id=inv.actor.user_id, action=action, channel=inv.channel)
    return command


def register(app: App, deps: Deps) -> None:
    service = deps.cutover

    register_command(
        app,
        deps,
        name="/cutover",
        action="cutover",
        plan=lambda inv: plan(deps, inv),
        work=lambda inv, respond: _work(deps, service, inv, respond),
    )


def _work(deps: Deps, service: CutoverService, inv: Invocation, respond: Respond) -> None:
    command = plan(deps, inv)
    if isinstance(command, Status):
        text = status_text(deps, service, inv.request_id)
        ephemeral(respond, text, blocks=as_dicts(notice_blocks(text, context=[f"Request id `{inv.request_id}`"])))
        deps.metrics.commands.labels("/cutover", "status").inc()
    else:
        _request(deps, service, inv, command, respond)


def _request(deps: Deps, service: CutoverService, inv: Invocation, command: Advance, respond: Respond) -> None:
    facts = service.facts(inv.request_id, source="cutover advance")
    missing = blockers(facts)
    target = next_stage(facts.runbook, facts.current)
    if missing and (note := service.rollback_blocker(facts.evidence.version)) is not None:
        missing = [note, *missing]
    if missing or target is None:
        refused = {"from_stage": facts.current.id, "missing": missing, "reason": command.reason}
        deps.audit.record(
            Entry(
                inv.actor,
                f"{NAME}.refused",
                "denied",
                refused,
                inv.request_id,
                "",
                inv.channel,
                "; ".join(missing)[:2000],
            )
        )
        deps.metrics.commands.labels("/cutover", "refused").inc()
        ephemeral(respond, missing_text(facts, missing, heading="Cannot advance", people=people_of(deps.directory)))
        return
    index = facts.runbook.stage_index(facts.current.id) + 1
    summary = entry_summary(facts.runbook, target, deps.settings.soak_seconds)
    params: dict[str, object] = {
        "from_stage": facts.current.id,
        "to_stage": target.id,
        "from_name": facts.current.name,
        "to_name": target.name,
        "from_index": index,
        "reason": command.reason,
        "channel": inv.channel,
        "version": facts.evidence.version,
        "gate_id": facts.last_go.id if facts.last_go else None,
    }
    deps.flow.open_request(
        spec=deps.actions[NAME],
        params=params,
        actor=inv.actor,
        channel=inv.channel,
        request_id=inv.request_id,
        approve_role=Role.ADMIN,
        answer_to=respond.response_url,
        status=f":white_check_mark: Entry conditions hold now: {safe(summary, 900)}. Checked again on approval.",
    )
    deps.metrics.commands.labels("/cutover", "requested").inc()


def status_text(deps: Deps, service: CutoverService, request_id: str) -> str:
    """The five stages, the current one, each checklist with its state, the last gate, drift. Read-only."""
    version, problem = service.gate.deployed_version(request_id, source="cutover status")
    evidence = service.gate.evidence(version, problem)
    position = service.position()
    lines = [_headline(deps, position), _version_line(version, problem)]
    if (rolled := service.rollback_warning(position, version)) is not None:
        lines.insert(1, rolled)
    recent = service.gate.store.recent(1)
    lines.append(gate_summary(evaluation_view(recent[0]) if recent else None, deps.now(), version))
    if (frozen := service.freeze_text()) is not None:
        lines.append(f":ice_cube: *Frozen:* rollback in progress ({safe(frozen, 300)}); `/cutover advance` is refused.")
    lines.append(_drift(deps, request_id))
    snapshots = _snapshots(service)
    for index, stage in enumerate(deps.runbook.stages):
        lines += _stage_lines(deps, stage, index, position, evidence, snapshots.get(stage.id))
    return "\n".join(lines)


def _headline(deps: Deps, position: Position) -> str:
    total = len(deps.runbook.stages)
    head = f"*Cutover: stage {position.index + 1} of {total}, {safe(position.stage.name, 100)}*"
    entry = position.entry
    if entry is not None:
        head += (
            f" (since {when(entry.entered_at)}; requested by <@{entry.requested_by}>, approved by "
            f"<@{entry.approved_by}>)"
        )
    return head


def _version_line(version: str | None, problem: str) -> str:
    if version is None:
        return f"*Deployed backend:* unknown ({safe(problem, 300)})"
    return f"*Deployed backend:* `{safe(version, 64)}`"


def _drift(deps: Deps, request_id: str) -> str:
    try:
        control = deps.backend.trading_control(request_id=request_id)
    except BackendError as exc:
        return f"{UNKNOWN} the backend's trading-control did not answer ({plain(operator_message(exc))})"
    return drift_line(deps.cosmos, deps.settings, control.data)


def _snapshots(service: CutoverService) -> dict[str, list[dict[str, str]]]:
    """The checklist of each stage already left, as it stood when the cutover moved on."""
    found: dict[str, list[dict[str, str]]] = {}
    for row in service.store.history():
        if row.from_stage:
            found[row.from_stage] = json.loads(row.evidence)
    return found


def _stage_lines(
    deps: Deps, stage: Stage, index: int, position: Position, evidence: Evidence, snapshot: list[dict[str, str]] | None
) -> list[str]:
    if index < position.index:
        lines = [f"*{index + 1}. {safe(stage.name, 100)}*: :white_check_mark: done"]
        lines += [f"    {_snapshot_line(deps, doc)}" for doc in snapshot or []]
        return lines
    marker = ":arrow_right: *current*" if index == position.index else "upcoming"
    lines = [f"*{index + 1}. {safe(stage.name, 100)}*: {marker}"]
    people = people_of(deps.directory)
    lines += [f"    {status_line(s, people)}" for s in stage_statuses(deps.runbook, stage, evidence)]
    if index == position.index + 1:
        needs = entry_summary(deps.runbook, stage, deps.settings.soak_seconds)
        lines.append(f"    :door: entering needs {safe(needs, 900)}")
    return lines


def _snapshot_line(deps: Deps, doc: dict[str, str]) -> str:
    item_id = str(doc.get("id", "?"))
    item = deps.runbook.find_item(item_id)
    state = CheckState(doc.get("state", CheckState.PENDING.value))
    return check_line(
        state,
        item_id,
        item.text if item else "",
        doc.get("detail", ""),
        doc.get("evidence", ""),
        people_of(deps.directory),
    )
