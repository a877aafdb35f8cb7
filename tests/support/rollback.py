"""Shared by the /rollback tests: a stack with two rollback owners, production deployments in the
GitHub stand-in, a revert workflow that makes the simulated backend report the target, and helpers
to request, approve and wait for a rollback."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from bot.rollback.actions import RollbackSpec
from bot.rollback.models import Rollback, RollbackStatus
from bot.rollback.store import RollbackStore
from bot.storage.models import AuditEvent
from rehearsal.sim.stack import Stack
from rehearsal.slack.calls import ApiCall
from tests.support.common import CHANNEL, OPERATOR, OWNER, ROLES, approval_id_of, text_of, wait_until

OWNER2 = "UOWNER2"
ANNOUNCE = "C0ANNOUNCE"
DEPLOYED = "abc1234" + "0" * 33  # what SimBackend reports by default (`abc1234`)
TARGET = "9f8e7d6" + "1" * 33
WORKFLOW_PATH = "/repos/acme/trading/actions/workflows/rollback.yml/dispatches"


def overrides(incident_dir: Path, **extra: str) -> dict[str, str]:
    return {
        **ROLES,
        "OPSBOT_ROLLBACK_OWNERS": f"{OWNER},{OWNER2}",
        "OPSBOT_ANNOUNCE_CHANNEL": ANNOUNCE,
        "OPSBOT_INCIDENT_DIR": str(incident_dir),
        "OPSBOT_ROLLBACK_RUN_TIMEOUT_SECONDS": "5",
        "OPSBOT_ROLLBACK_VERSION_TIMEOUT_SECONDS": "2",
        "OPSBOT_ROLLBACK_POLL_SECONDS": "0.05",
        **extra,
    }


def seed(stack: Stack, *, deployed: bool = True) -> None:
    """Two successful production deployments (the target, then the deployed one, unless a test places
    that itself); a successful revert run makes the backend report the sha it was given, as a real
    deploy would."""
    stack.github.add_deployment(TARGET)
    if deployed:
        stack.github.add_deployment(DEPLOYED)
    stack.github.on_run_completed = lambda inputs: stack.backend.set_version(inputs["target_sha"][:7])


class running_stack:  # lower case: used like a function in `with`
    """A started, seeded stack that, on exit, stops any rollback still running before it stops."""

    def __init__(
        self,
        database_url: str,
        incident_dir: Path,
        *,
        seed_deployed: bool = True,
        settings: Mapping[str, str] | None = None,
        **extra: str,
    ) -> None:
        self.stack = Stack(database_url=database_url, overrides=overrides(incident_dir, **(settings or {}), **extra))
        self.seed_deployed = seed_deployed

    def __enter__(self) -> Stack:
        self.stack.start()
        seed(self.stack, deployed=self.seed_deployed)
        return self.stack

    def __exit__(self, *_: object) -> None:
        try:
            spec(self.stack).runner.stop(timeout=10)
        finally:
            self.stack.stop()


def spec(stack: Stack) -> RollbackSpec:
    return cast(RollbackSpec, stack.deps.actions["rollback"])


def store(stack: Stack) -> RollbackStore:
    return spec(stack).store


def request(
    stack: Stack, *, user: str = OPERATOR, text: str = "logins fail for everyone --trigger auth"
) -> tuple[str, ApiCall]:
    """Ask for a rollback; the approval id and the posted request message."""

    def is_request(call: ApiCall) -> bool:
        return any(b.get("type") == "actions" for b in call.args.get("blocks") or [])

    before = len([c for c in stack.peer.calls_to("chat.postMessage") if is_request(c)])
    response = stack.sender.command(user=user, command="/rollback", text=text, channel=CHANNEL)
    assert response.status_code == 200, response.text
    posted = stack.peer.wait_for_call("chat.postMessage", count=before + 1, where=is_request)[-1]
    approval_id = approval_id_of(posted)
    wait_until(lambda: (row := stack.deps.approvals.get(approval_id=approval_id)) is not None and bool(row.message_ts))
    return approval_id, posted


def command(stack: Stack, text: str, *, user: str = OPERATOR) -> str:
    """Run `/rollback <text>` and return the ephemeral answer's text."""
    before = len(stack.peer.calls_to("response_url"))
    response = stack.sender.command(user=user, command="/rollback", text=text, channel=CHANNEL)
    assert response.status_code == 200, response.text
    if response.text.strip():  # refused in the ack
        return str(response.json().get("text", ""))
    return text_of(stack.peer.wait_for_call("response_url", count=before + 1)[-1].args)


def finished(stack: Stack, timeout: float = 15.0, *, after: str | None = None) -> Rollback:
    """Wait until the latest rollback (one other than `after`) has ended, its thread too; return it."""
    wait_until(
        lambda: (
            (row := store(stack).latest()) is not None
            and row.id != after
            and row.status != RollbackStatus.RUNNING.value
            and not spec(stack).runner.busy
        ),
        timeout=timeout,
    )
    row = store(stack).latest()
    assert row is not None
    return row


def dispatches(stack: Stack) -> list[Any]:
    return stack.github.calls("POST", WORKFLOW_PATH)


def progress_updates(stack: Stack, row: Rollback) -> list[str]:
    if not row.progress_ts:  # the progress message's ts is known once the notifier posted it
        stored = RollbackStore(stack.deps.engine, stack.deps.audit).get(row.id)
        row.progress_ts = stored.progress_ts if stored else None
    return [text_of(c.args) for c in stack.peer.calls_to("chat.update") if c.args.get("ts") == row.progress_ts]


def audit_actions(stack: Stack) -> list[str]:
    return [f"{e.action}:{e.outcome}" for e in stack.deps.audit.rows()]


def audit_rows(stack: Stack, action: str) -> list[AuditEvent]:
    return [e for e in stack.deps.audit.rows() if e.action == action]


def bundle_lines(path: str) -> tuple[list[dict[str, Any]], str]:
    data = Path(path).read_bytes()
    return [json.loads(line) for line in data.decode().splitlines()], hashlib.sha256(data).hexdigest()


def steps_of(row: Rollback) -> dict[str, str]:
    return {s["id"]: s["state"] for s in json.loads(row.steps)}


def announced(stack: Stack, *needles: str, channel: str = ANNOUNCE) -> str:
    """Wait for a message in `channel` containing every needle; return its text."""

    def found() -> str | None:
        texts = [str(m.get("text", "")) for m in stack.peer.channel_messages(channel)]
        return next((t for t in texts if all(n in t for n in needles)), None)

    wait_until(lambda: found() is not None)
    return found() or ""


def final_progress(stack: Stack, row: Rollback, needle: str) -> str:
    """Wait until the progress message's latest update contains `needle`; return it."""
    wait_until(lambda: bool(progress_updates(stack, row)) and needle in progress_updates(stack, row)[-1])
    return progress_updates(stack, row)[-1]
