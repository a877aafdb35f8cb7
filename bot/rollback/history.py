"""Earlier rollbacks as they bear on a new one: pure functions over rows of the `rollback` table.

Two mistakes they guard against (docs/decisions.md):
- a plan whose target is the release an earlier rollback took production off (the contract's
  target rule, "the newest successful production deployment with another sha", picks exactly that
  release right after a rollback); the card warns, and approval is refused unless `--to` named it;
- a monitoring alert's "Propose rollback" for a breach that began before the last completed rollback
  closed: no request is opened; a breach still open is said not to be fixed by it (never to be the old
  release's), one that cleared since is about the release rolled back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from bot.clients.github import same_sha
from bot.rollback.models import Rollback, RollbackStatus
from bot.rollback.plan import SOURCE_EXPLICIT, RolledBackFrom, rolled_back_phrase, short
from bot.rollback.steps import REVERT, StepState, state_of
from bot.storage.db import as_utc
from bot.text import safe


def rolled_back_from(rows: Iterable[Rollback], sha: str) -> RolledBackFrom | None:
    """The newest rollback (rows newest first) that took production off `sha`: completed, running, or
    failed after its revert step was done; None when a newer completed rollback restored `sha`."""
    for row in rows:
        if same_sha(row.target, sha) and row.status == RollbackStatus.COMPLETED.value:
            return None  # a later rollback restored it on purpose: it is no longer a rolled-back release
        if not same_sha(row.deployed, sha):
            continue
        if row.status == RollbackStatus.COMPLETED.value:
            return RolledBackFrom(row.id, row.status, as_utc(row.closed_at or row.finished_at or row.updated_at))
        if row.status == RollbackStatus.RUNNING.value:
            return RolledBackFrom(row.id, row.status, as_utc(row.created_at))
        if state_of(row.steps, REVERT) is StepState.DONE:
            return RolledBackFrom(row.id, row.status, as_utc(row.finished_at or row.updated_at))
    return None


def redeploy_refusal(params: Mapping[str, Any], prior: RolledBackFrom | None) -> str | None:
    """Why an approved plan must not run (mrkdwn, safe): its target is a rolled-back release that was not
    named with `--to`. None when it may run."""
    if prior is None or params.get("target_source") == SOURCE_EXPLICIT:
        return None
    target = safe(short(str(params["target"])), 12)
    return (
        f"`{target}` is {rolled_back_phrase(prior.as_params())}, and re-deploying it was not asked for by "
        f"name; to re-deploy it on purpose request `/rollback <reason> --to {target}`, otherwise name another "
        "target with `--to <sha>`"
    )


def stale_alert(since: datetime, alert_status: str, last: Rollback | None) -> str | None:
    """The answer to "Propose rollback" on an alert whose breach began (`since`) before the last completed
    rollback closed (mrkdwn, safe), or None when a rollback may be proposed for it."""
    if last is None or last.closed_at is None or as_utc(since) >= as_utc(last.closed_at):
        return None
    when_closed = as_utc(last.closed_at).strftime("%Y-%m-%d %H:%M:%S UTC")
    began = as_utc(since).strftime("%Y-%m-%d %H:%M:%S UTC")
    head = (
        f":information_source: *No rollback request opened:* rollback `{safe(last.id, 32)}` already completed "
        f"(`{safe(short(last.deployed), 12)}` → `{safe(short(last.target), 12)}`, closed {when_closed}) since this "
        f"alert's breach began ({began})."
    )
    if alert_status == "open":
        return (
            f"{head} The breach is still open, so that rollback has not fixed it: the release running now "
            f"(`{safe(short(last.target), 12)}`) may breach too. To roll it back as well, type "
            "`/rollback <reason> --to <sha>` naming the release to go back to; to stop trading, `/halt`."
        )
    return (
        f"{head} It cleared after the rollback: the alert was about the release that was rolled back "
        f"(`{safe(short(last.deployed), 12)}`). A new breach after the rollback raises a new alert, whose button "
        "proposes a rollback."
    )
