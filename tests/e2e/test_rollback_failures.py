"""`/rollback` failure modes over signed requests on loopback: each stops the sequence, names the step
and why, keeps the freeze, leaves a next action and retries nothing; approvals whose world changed
are refused."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest

from bot import cli
from bot.rollback.evidence import stored
from bot.rollback.models import RollbackStatus
from rehearsal.sim.stack import Stack
from tests.support.common import CHANNEL, OPERATOR, OWNER, click, text_of, wait_until
from tests.support.rollback import (
    DEPLOYED,
    OWNER2,
    TARGET,
    WORKFLOW_PATH,
    announced,
    audit_actions,
    command,
    dispatches,
    final_progress,
    finished,
    request,
    running_stack,
    steps_of,
    store,
)

pytest_plugins = ["tests.support.rollback_fixture"]  # the `rb` fixture


def approve_and_finish(stack: Stack, *, text: str = "logins fail --trigger auth") -> str:
    approval_id, posted = request(stack, text=text)
    click(stack, user=OWNER, approval_id=approval_id, posted=posted)
    return approval_id


def test_failed_run_stops_keeps_the_freeze_shows_the_link_and_is_not_retried(rb: Stack) -> None:
    rb.github.faults.fail_next_run = True
    approve_and_finish(rb)
    row = finished(rb)
    assert row.status == RollbackStatus.FAILED.value and row.failed_step == "revert-deployment"
    # The evidence is preserved even so (the runbook's step 5), in the bot's store.
    assert steps_of(row) == {
        "stop-rollout": "done",
        "revert-deployment": "failed",
        "restore-previous-release": "not_run",
        "keep-halt-authority": "not_run",
        "preserve-audit": "done",
    }
    assert "concluded `failure`" in row.failure and row.run_url and row.run_url in row.failure
    assert "Read the run's log" in row.next_action
    freeze = rb.deps.freeze.active()
    assert freeze is not None and freeze.owner == f"rollback:{row.id}"
    shown = final_progress(rb, row, "Stopped:")
    assert "Next:" in shown and "stays frozen" in shown and row.run_url in shown
    announced(rb, "stopped at revert-deployment", row.id)
    announced(rb, "stopped at revert-deployment", row.id, channel=CHANNEL)
    time.sleep(0.3)
    assert len(dispatches(rb)) == 1 and len(rb.github.runs()) == 1  # nothing retried blindly
    assert "rollback.failed:failed" in audit_actions(rb)
    status = command(rb, "status")
    assert "failed at revert-deployment" in status and "Next:" in status and "Cutover frozen" in status

    # The next rollback may be requested; its completion closes the failed one and lifts both freezes.
    approval_id, posted = request(rb, text="second try --trigger auth")
    assert f"Failed rollback `{row.id}`" in text_of(posted.args)
    click(rb, user=OWNER2, approval_id=approval_id, posted=posted)
    second = finished(rb, after=row.id)
    assert second.status == RollbackStatus.COMPLETED.value, (second.failed_step, second.failure)
    first = store(rb).get(row.id)
    assert first is not None and first.closed_by == second.id
    assert rb.deps.freeze.active() is None


def test_run_that_never_finishes_fails_within_the_bound(tmp_path: Path, sqlite_url: str) -> None:
    with running_stack(sqlite_url, tmp_path / "inc", OPSBOT_ROLLBACK_RUN_TIMEOUT_SECONDS="1") as stack:
        stack.github.faults.hang_runs = True
        approve_and_finish(stack)
        row = finished(stack)
        assert row.failed_step == "revert-deployment"
        assert "did not finish within 1 s" in row.failure and "in_progress" in row.failure
        assert row.run_url and row.run_url in row.failure and "may still be going" in row.next_action
        assert stack.deps.freeze.active() is not None
        assert len(dispatches(stack)) == 1


@pytest.mark.parametrize(("status", "said"), [(401, "check GITHUB_TOKEN"), (404, "workflow name")])
def test_github_refusing_the_dispatch_fails_the_revert_step(rb: Stack, status: int, said: str) -> None:
    rb.github.status_for(WORKFLOW_PATH, status)
    approve_and_finish(rb)
    row = finished(rb)
    assert row.failed_step == "revert-deployment"
    assert "GitHub refused the revert dispatch" in row.failure and said in row.failure
    assert "Nothing was reverted" in row.next_action
    assert rb.github.runs() == [] and rb.deps.freeze.active() is not None


@pytest.mark.parametrize(
    ("status", "said"), [(401, "GitHub refused the bot's token (HTTP 401"), (404, "GitHub has no such resource")]
)
def test_github_refusing_deployments_at_request_time_posts_nothing(rb: Stack, status: int, said: str) -> None:
    rb.github.status_for("/repos/acme/trading/deployments", status)
    answer = command(rb, "logins fail --trigger auth")
    assert said in answer
    assert rb.peer.channel_messages(CHANNEL) == [] and rb.deps.approvals.recent(action_prefix="rollback") == []
    assert len(rb.github.calls("GET", "/repos/acme/trading/deployments")) == 1  # a refusal is not retried


def test_backend_never_reporting_the_target_fails_the_restore_step(rb: Stack) -> None:
    rb.github.on_run_completed = None  # the run "succeeds" but nothing changes
    approve_and_finish(rb)
    row = finished(rb)
    assert row.failed_step == "restore-previous-release"
    assert "after 2 s" in row.failure and "reports `abc1234`, not the target" in row.failure
    assert steps_of(row)["revert-deployment"] == "done" and rb.deps.freeze.active() is not None


def test_trade_halt_authority_lost_mid_rollback_stops_before_the_next_step(rb: Stack) -> None:
    rb.github.faults.hang_runs = True
    approve_and_finish(rb)
    wait_until(lambda: (r := store(rb).latest()) is not None and r.run_id is not None)
    rb.backend.faults.fail_status = 503  # the backend stops answering, trading-control included
    rb.github.faults.hang_runs = False
    row = finished(rb)
    assert row.failed_step == "keep-halt-authority"
    assert "trade-halt authority could not be confirmed before restore-previous-release" in row.failure
    assert "halt through the backend directly" in row.next_action
    assert steps_of(row)["restore-previous-release"] == "not_run"


def test_no_halt_authority_means_no_rollback_starts(tmp_path: Path, sqlite_url: str) -> None:
    with running_stack(sqlite_url, tmp_path / "inc", OPSBOT_HALT_AUTHORITIES="") as stack:
        approve_and_finish(stack)
        row = finished(stack)
        assert row.failed_step == "keep-halt-authority" and "before stop-rollout" in row.failure
        assert "no halt authorities are configured" in row.failure
        assert dispatches(stack) == [] and stack.deps.freeze.active() is None


def test_an_unwritable_incident_dir_only_loses_the_optional_copy(tmp_path: Path, sqlite_url: str) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the directory should be")
    with running_stack(sqlite_url, blocker / "incidents") as stack:
        approve_and_finish(stack)
        row = finished(stack)
        assert row.status == RollbackStatus.COMPLETED.value and row.bundle_path is None and row.bundle_sha256
        detail = next(s["detail"] for s in json.loads(row.steps) if s["id"] == "preserve-audit")
        assert "stored in the bot's database" in detail and "was not written" in detail
        assert stored(stack.deps.engine, row.id) is not None and stack.deps.freeze.active() is None


def test_a_failed_rollback_stores_its_evidence_and_it_is_exported_by_id(
    rb: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rb.github.faults.fail_next_run = True
    approve_and_finish(rb)
    row = finished(rb)
    assert row.status == RollbackStatus.FAILED.value and steps_of(row)["preserve-audit"] == "done"
    (evidence,) = [e for e in rb.deps.audit.rows() if e.action == "rollback.evidence_preserved"]
    assert json.loads(evidence.params)["stored"] is True
    shown = final_progress(rb, row, "Stopped:")
    assert f"`opsbot incident export {row.id}`" in shown

    monkeypatch.setenv("OPSBOT_DATABASE_URL", rb.deps.settings.database_url)
    capsys.readouterr()
    assert cli.main(["incident", "export", row.id]) == 0
    out = capsys.readouterr()
    lines = [json.loads(line) for line in out.out.splitlines()]
    assert lines[0]["kind"] == "rollback" and lines[0]["rollback_id"] == row.id and lines[-1]["kind"] == "steps"
    assert any(line["kind"] == "audit" and line["action"] == "rollback.dispatch" for line in lines)
    assert hashlib.sha256(out.out.encode()).hexdigest() == row.bundle_sha256 == json.loads(evidence.params)["sha256"]
    assert cli.main(["incident", "export", "rb-nope"]) == 1
    assert "no evidence bundle stored for rollback 'rb-nope'" in capsys.readouterr().err


@pytest.mark.parametrize("change", ["deployed", "target"])
def test_world_changed_between_request_and_approval_refuses_the_approval(rb: Stack, change: str) -> None:
    approval_id, posted = request(rb)
    if change == "deployed":
        rb.backend.set_version("7777777")
        rb.github.add_deployment("7777777" + "7" * 33)
    else:
        rb.github.add_deployment("5555555" + "5" * 33, state="failure")  # not a candidate: no change
        rb.github.add_deployment(TARGET[:7] + "2" * 33)  # a newer successful one: the target moves
        rb.github.add_deployment(DEPLOYED)
    click(rb, user=OWNER, approval_id=approval_id, posted=posted)
    update = rb.peer.wait_for_call("chat.update", where=lambda c: "NOT started" in text_of(c.args))[-1]
    shown = text_of(update.args)
    assert f"the {'deployed version' if change == 'deployed' else 'rollback target'} changed" in shown
    assert "request `/rollback` again" in shown
    approval = rb.deps.approvals.get(approval_id=approval_id)
    assert approval is not None and approval.status == "failed"
    assert dispatches(rb) == [] and store(rb).latest() is None and rb.deps.freeze.active() is None


def test_backend_down_at_approval_reopens_the_request_for_an_explicit_retry(rb: Stack) -> None:
    approval_id, posted = request(rb)
    rb.backend.faults.fail_status, rb.backend.faults.fail_times = 503, 3
    click(rb, user=OWNER, approval_id=approval_id, posted=posted)
    rb.peer.wait_for_call("chat.update", where=lambda c: "approve again to retry" in text_of(c.args))
    assert store(rb).latest() is None and dispatches(rb) == []
    click(rb, user=OWNER2, approval_id=approval_id, posted=posted)
    assert finished(rb).status == RollbackStatus.COMPLETED.value


def test_a_second_request_while_one_waits_is_refused_with_a_pointer(rb: Stack) -> None:
    approval_id, _ = request(rb)
    answer = command(rb, "another one --trigger config")
    assert "already waiting" in answer and approval_id in answer
    assert "rollback.refused:denied" in audit_actions(rb)


def test_bad_input_is_answered_with_usage(rb: Stack) -> None:
    for text, problem in [
        ("", "Here is how"),
        ("--trigger nope reason", "not a rollback trigger"),
        ("reason --to xyz", "not a commit sha"),
        ("status now", "takes nothing after it"),
    ]:
        answer = command(rb, text)
        assert problem in answer and "/rollback status" in answer
    assert "Not allowed" in command(rb, "reason", user="USTRANGER")
    assert rb.peer.channel_messages(CHANNEL) == [] and OPERATOR
