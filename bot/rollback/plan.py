"""The rollback plan (runbook "Rollback rules"), as pure functions over what the bot observed.

At request time the plan is built from the backend's health (the deployed version) and GitHub's
production deployments (the target), and shown before anyone approves. The approval is bound to
these params by their hash (bot.approvals.store); at approval time the world is observed again
and `revalidate` refuses when the deployed version or the target moved in between.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.clients.github import same_sha
from bot.errors import OpsbotError
from bot.runbook.model import TRIGGER_IDS, Runbook
from bot.text import safe

DATA_RULE = "Cosmos control-plane state is not rewritten or deleted"
# How the bot carries out each runbook action (keyed by the runbook's action ids).
HOW: Mapping[str, str] = {
    "stop-rollout": "the cutover is frozen (`/cutover advance` refused) and the freeze is announced",
    "revert-deployment": "dispatch `{workflow}` with the target sha, reason and request id, and follow the run",
    "restore-previous-release": "confirm `GET /api/health` reports the target version on every surface",
    "keep-halt-authority": "`GET /api/trading-control` and `/halt` confirmed before every step; never locked",
    "preserve-audit": "incident bundle (JSONL) written; its SHA-256 recorded in the audit log",
}
_SHA_LIKE = re.compile(r"[0-9a-fA-F]{7,40}")
SOURCE_DEPLOYMENT = "deployment"
SOURCE_EXPLICIT = "explicit"


class RollbackRefused(OpsbotError):
    """A rollback cannot be requested or run as asked; `text` (mrkdwn, safe) says why and what to do."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass(frozen=True)
class Target:
    sha: str
    source: str  # SOURCE_DEPLOYMENT (found in GitHub) or SOURCE_EXPLICIT (`--to`)
    deployment_id: int | None = None  # the successful production deployment of this sha, when known
    deployed_at: datetime | None = None


@dataclass(frozen=True)
class RolledBackFrom:
    """An earlier rollback that took production off the sha a new plan targets (bot.rollback.history)."""

    rollback_id: str
    status: str  # "completed", "running", or "failed" after its revert step was done
    at: datetime  # when it closed (completed), started (running) or stopped (failed)

    def as_params(self) -> dict[str, str]:
        return {"rollback_id": self.rollback_id, "status": self.status, "at": self.at.isoformat()}


@dataclass(frozen=True)
class Observation:
    """The world as the bot saw it: the backend's health and GitHub's production deployments."""

    deployed: str  # GET /api/health `version`
    health_status: str
    surfaces: Mapping[str, str] = field(default_factory=dict)
    release_started_at: datetime | None = None  # when the deployed sha's deployment was created
    target: Target | None = None


def plan_params(
    *,
    reason: str,
    trigger: str | None,
    to: str | None,
    seen: Observation,
    workflow: str | None,
    rolled_back: RolledBackFrom | None = None,
) -> dict[str, Any]:
    """The approval's params (hash-bound); RollbackRefused when no rollback can be planned."""
    if not workflow:
        raise RollbackRefused(
            ":gear: OPSBOT_ROLLBACK_WORKFLOW is not set: the bot has no workflow to revert the "
            "deployment with. Configure it (e.g. `rollback.yml`) and request again."
        )
    target = seen.target
    if target is None:
        raise RollbackRefused(
            f":mag: GitHub lists no successful production deployment with a sha other than the deployed "
            f"`{safe(seen.deployed, 40)}`. Name the commit to roll back to with `--to <sha>`."
        )
    if same_sha(target.sha, seen.deployed):
        raise RollbackRefused(
            f":information_source: `{safe(target.sha, 40)}` is the deployed version already; "
            "there is nothing to roll back to. Name another commit with `--to <sha>`."
        )
    return {
        "reason": reason,
        "trigger": trigger or "",
        "to": to or "",
        "deployed": seen.deployed,
        "surfaces": dict(seen.surfaces),
        "target": target.sha,
        "target_source": target.source,
        "target_deployment_id": target.deployment_id,
        "target_deployed_at": _iso(target.deployed_at),
        "release_started_at": _iso(seen.release_started_at),
        "workflow": workflow,
        "rolled_back_from": rolled_back.as_params() if rolled_back else None,
    }


def revalidate(params: Mapping[str, Any], seen: Observation) -> str | None:
    """Why an approved plan must not run now (mrkdwn, safe), or None when the world still matches it."""
    deployed, target = str(params["deployed"]), str(params["target"])
    if not same_sha(seen.deployed, deployed):
        return (
            f"the deployed version changed from `{safe(deployed, 40)}` to `{safe(seen.deployed, 40)}` since the request"
        )
    now_target = seen.target.sha if seen.target else None
    if now_target is None or not same_sha(now_target, target):
        shown = f"`{safe(now_target, 40)}`" if now_target else "nothing"
        return f"the rollback target changed from `{safe(target, 40)}` to {shown} since the request"
    return None


def restore_problem(version: str, surfaces: Mapping[str, str], target: str) -> str | None:
    """Why `GET /api/health` does not show the target yet (mrkdwn, safe), or None once it does.

    Surfaces that report a sha (backend, web) must match the target; others (a mobile build number)
    cannot be compared and are only shown."""
    if not same_sha(version, target):
        return f"the backend reports `{safe(version, 40)}`, not the target `{safe(short(target), 40)}`"
    behind = [
        f"{safe(k, 20)} `{safe(v, 40)}`"
        for k, v in sorted(surfaces.items())
        if _SHA_LIKE.fullmatch(v) and not same_sha(v, target)
    ]
    if behind:
        return "surfaces still on another version: " + ", ".join(behind)
    return None


def title(params: Mapping[str, Any]) -> str:
    move = f"Rollback production: {short(str(params['deployed']))} → {short(str(params['target']))}"
    return move + (" :warning: re-deploys a rolled-back release" if params.get("rolled_back_from") else "")


def redeploy_warning(params: Mapping[str, Any]) -> str | None:
    """The card's warning when the target is a release an earlier rollback took production off (mrkdwn, safe)."""
    prior = params.get("rolled_back_from")
    if not isinstance(prior, Mapping):
        return None
    target = f"`{safe(short(str(params['target'])), 12)}`"
    lines = [
        f":warning: *{target} is {rolled_back_phrase(prior)}; this would re-deploy it.* "
        "Use `--to <sha>` to choose another target."
    ]
    if params.get("target_source") == SOURCE_EXPLICIT:
        lines.append(f":information_source: {target} was named with `--to`, so approving re-deploys it on purpose.")
    else:
        lines.append(
            f":no_entry: *Approving this is refused:* a rolled-back release is re-deployed only when it is "
            f"named with `--to {safe(short(str(params['target'])), 12)}`. Reject this request (its requester "
            "can withdraw it) and request again with `--to`."
        )
    return "\n".join(lines)


def rolled_back_phrase(prior: Mapping[str, Any]) -> str:
    """ "the release that rollback `rb-…` took production off at <time>" (mrkdwn, safe)."""
    rid, at = safe(str(prior.get("rollback_id") or "?"), 32), str(prior.get("at") or "")[:19].replace("T", " ")
    if prior.get("status") == "running":
        return f"the release that rollback `{rid}` is taking production off right now (started {at} UTC)"
    if prior.get("status") == "failed":
        return (
            f"the release that rollback `{rid}` took production off (its revert ran; the rollback then failed "
            f"at {at} UTC)"
        )
    return f"the release that rollback `{rid}` took production off at {at} UTC"


def trigger_line(runbook: Runbook, trigger_id: str) -> str:
    if not trigger_id:
        return (
            "*Trigger:* none named (`--trigger` was not given); the approver judges the reason against the "
            "runbook's hard rollback triggers"
        )
    trigger = runbook.trigger(trigger_id)
    number = TRIGGER_IDS.index(trigger_id) + 1 if trigger_id in TRIGGER_IDS else "?"
    return f"*Trigger {number} of {len(TRIGGER_IDS)}:* {trigger.name}: _{trigger.text}_"


def effect(runbook: Runbook, params: Mapping[str, Any]) -> str:
    """The plan as the approval card shows it (mrkdwn, safe)."""
    workflow = safe(str(params.get("workflow") or "?"), 80)
    actions = [
        f"{i}. {a.text}: {HOW.get(a.id, 'as the runbook says').format(workflow=workflow)}"
        for i, a in enumerate(runbook.rollback.actions, start=1)
    ]
    warning = redeploy_warning(params)
    lines = [
        "the deployment is rolled back, step by step, with progress in this channel.",
        *([warning] if warning else []),
        trigger_line(runbook, str(params.get("trigger") or "")),
        f"*Deployed version:* `{safe(str(params['deployed']), 40)}`{_surfaces(params.get('surfaces'))}",
        f"*Target version:* `{safe(str(params['target']), 40)}`: {target_source(params)}",
        "*Runbook actions, in order:*",
        *actions,
        f"*Data rule:* {DATA_RULE}. Runbook: _{safe(' '.join(runbook.rollback.data_rule.split()), 600)}_",
    ]
    return "\n".join(lines)


def target_source(params: Mapping[str, Any]) -> str:
    deployment = params.get("target_deployment_id")
    when = str(params.get("target_deployed_at") or "")[:19].replace("T", " ")
    if params.get("target_source") == SOURCE_EXPLICIT:
        if deployment:
            return f"named with `--to`; successful production deployment {deployment} ({when} UTC)"
        return "named with `--to`; :warning: not a successful production deployment on record"
    return f"newest successful production deployment with another sha (deployment {deployment}, {when} UTC)"


def short(sha: str) -> str:
    return sha[:12]


def _surfaces(surfaces: Any) -> str:
    if not isinstance(surfaces, Mapping) or not surfaces:
        return ""
    shown = ", ".join(f"{safe(str(k), 20)} `{safe(str(v), 40)}`" for k, v in sorted(surfaces.items()))
    return f" ({shown})"


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None
