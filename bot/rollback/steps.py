"""A rollback's steps as data, and how they read in Slack: pure functions, no I/O.

Steps are stored as a JSON list, one entry per runbook rollback action, in the runbook's order:
`{"id", "text", "state", "detail", "at"}`. The progress message and `/rollback status` render the
same text, so what the channel sees and what the store holds cannot disagree.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.rollback.models import Rollback, RollbackStatus
from bot.rollback.plan import DATA_RULE, short
from bot.text import clip, safe

STOP, REVERT, RESTORE, HALT, EVIDENCE = (
    "stop-rollout",
    "revert-deployment",
    "restore-previous-release",
    "keep-halt-authority",
    "preserve-audit",
)
DETAIL_MAX = 600


class StepState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    NOT_RUN = "not_run"  # after an earlier step failed


ICONS = {
    StepState.PENDING: ":white_circle:",
    StepState.RUNNING: ":hourglass_flowing_sand:",
    StepState.DONE: ":white_check_mark:",
    StepState.FAILED: ":x:",
    StepState.NOT_RUN: ":heavy_minus_sign:",
}


def initial_steps(actions: Iterable[tuple[str, str]]) -> str:
    """The JSON of a new rollback's steps: every runbook action pending."""
    return dumps([{"id": a, "text": t, "state": StepState.PENDING.value, "detail": "", "at": None} for a, t in actions])


def loads(steps: str) -> list[dict[str, Any]]:
    value = json.loads(steps)
    return value if isinstance(value, list) else []


def dumps(steps: list[dict[str, Any]]) -> str:
    return json.dumps(steps, sort_keys=True, separators=(",", ":"))


def with_step(steps: str, step_id: str, state: StepState, detail: str | None, at: datetime) -> str:
    """`steps` with one step moved to `state`; `detail` None keeps the step's current detail."""
    out = []
    for step in loads(steps):
        if step["id"] == step_id:
            step = {**step, "state": state.value, "at": at.isoformat()}
            if detail is not None:
                step["detail"] = clip(detail, DETAIL_MAX)
        out.append(step)
    return dumps(out)


def not_run(steps: str, at: datetime) -> str:
    """After a failure: every step still pending (or still checking) is marked not run."""
    out = []
    for step in loads(steps):
        if step["state"] in (StepState.PENDING.value, StepState.RUNNING.value):
            step = {**step, "state": StepState.NOT_RUN.value, "at": at.isoformat()}
        out.append(step)
    return dumps(out)


def current_step(steps: str) -> str:
    """The step a rollback was on: the first one running that is not the halt checks, else the first pending."""
    parsed = loads(steps)
    for wanted in (StepState.RUNNING.value, StepState.PENDING.value):
        for step in parsed:
            if step["state"] == wanted and step["id"] != HALT:
                return str(step["id"])
    return "unknown"


def state_of(steps: str, step_id: str) -> StepState | None:
    return next((StepState(s["state"]) for s in loads(steps) if s["id"] == step_id), None)


def headline(row: Rollback) -> str:
    move = f"`{safe(short(row.deployed), 12)}` → `{safe(short(row.target), 12)}`"
    if row.status == RollbackStatus.RUNNING.value:
        state = ":hourglass_flowing_sand: *running*"
    elif row.status == RollbackStatus.COMPLETED.value:
        state = ":white_check_mark: *completed and closed*"
    else:
        state = f":x: *failed at {safe(row.failed_step or '?', 40)}*"
        if row.closed_at is not None:
            state += f" (closed by `{safe(row.closed_by or '?', 32)}`)"
    return f":leftwards_arrow_with_hook: *Rollback `{row.id}`* {move}: {state}"


def progress_text(row: Rollback, trigger_name: str) -> str:
    """The whole state of one rollback (mrkdwn, safe)."""
    lines = [
        headline(row),
        f"*Trigger:* {safe(trigger_name, 120)} · *Reason:* {safe(row.reason, 500)}",
        f"*From* `{safe(row.deployed, 64)}` *to* `{safe(row.target, 64)}`",
        f"Requested by <@{row.requester}> (request id `{safe(row.request_id, 64)}`, as on the request card), "
        f"approved by <@{row.approver}> (the approval click's request id `{safe(row.run_request_id, 64)}`, "
        "sent to the revert workflow)",
    ]
    for number, step in enumerate(loads(row.steps), start=1):
        icon = ICONS.get(StepState(step["state"]), ":grey_question:")
        detail = f": {step['detail']}" if step.get("detail") else ""
        lines.append(f"{number}. {icon} {safe(str(step['text']), 200)}{detail}")
    if row.run_url:
        lines.append(f"Workflow run: <{safe(row.run_url, 300)}|{row.run_id or 'run'}>")
    if row.bundle_sha256:
        copy = f"; copy `{safe(row.bundle_path, 300)}`" if row.bundle_path else ""
        lines.append(
            f"Incident bundle: stored in the bot's database, `opsbot incident export {row.id}` "
            f"(SHA-256 `{row.bundle_sha256[:12]}…`{copy})"
        )
    if row.status == RollbackStatus.FAILED.value:
        lines.append(f":rotating_light: *Stopped:* {row.failure}")
        lines.append(f":point_right: *Next:* {row.next_action}")
        if row.closed_at is None:
            lines.append(":ice_cube: The cutover stays frozen until a rollback completes.")
    elif row.status == RollbackStatus.COMPLETED.value:
        lines.append(":sunny: Closed; the cutover freeze is lifted.")
    else:
        lines.append(":ice_cube: The cutover is frozen while this runs. `/halt` stays available throughout.")
    lines.append(f"_Data rule: {DATA_RULE}._")
    return "\n".join(lines)


class StepFailed(Exception):
    """A step could not be done: `failure` says why and `next_action` what a person should do (mrkdwn, safe).

    `step` names the step that failed when it is not the one running (a halt-authority check)."""

    def __init__(self, failure: str, next_action: str, *, step: str | None = None) -> None:
        super().__init__(failure)
        self.failure = failure
        self.next_action = next_action
        self.step = step
