"""`/rollback` paths the other rollback tests leave out, over signed requests on loopback: the evidence
window ("since the release began") against a deployment at a known time, the revert step when the
dispatch is unconfirmed, when the run carries no request id and when GitHub refuses while the run is
followed, a freeze that cannot be recorded, and `/rollback status` while the revert runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.audit.log import SYSTEM, Entry
from bot.rollback.models import Rollback, RollbackStatus
from bot.storage.db import as_utc
from bot.storage.models import AuditEvent
from rehearsal.sim.stack import Stack
from tests.support.common import CHANNEL, OWNER, click, wait_until
from tests.support.rollback import (
    ANNOUNCE,
    DEPLOYED,
    WORKFLOW_PATH,
    announced,
    audit_actions,
    bundle_lines,
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

RUNS_PATH = "/repos/acme/trading/actions/runs/"  # following one run: GET …/actions/runs/<id>
AFTER_STOP = ["revert-deployment", "restore-previous-release", "keep-halt-authority", "preserve-audit"]


def approve(stack: Stack) -> None:
    approval_id, posted = request(stack, text="logins fail --trigger auth")
    click(stack, user=OWNER, approval_id=approval_id, posted=posted)


def mark(stack: Stack, action: str) -> AuditEvent:
    return stack.deps.audit.record(Entry(SYSTEM, action, "applied", {}, f"ops-{action}", "", CHANNEL))


def next_second(at: datetime) -> datetime:
    """The first whole second after `at` (GitHub stamps whole seconds)."""
    return as_utc(at).replace(microsecond=0) + timedelta(seconds=1)


def running_with_run(stack: Stack) -> Rollback:
    """Approve a rollback whose revert run hangs; return it once the run has appeared."""
    stack.github.faults.hang_runs = True
    approve(stack)
    wait_until(lambda: (r := store(stack).latest()) is not None and r.run_id is not None)
    row = store(stack).latest()
    assert row is not None and row.run_url
    return row


def test_bundle_reaches_back_to_the_first_production_deployment_of_the_deployed_sha(
    tmp_path: Path, sqlite_url: str
) -> None:
    with running_stack(sqlite_url, tmp_path / "inc", seed_deployed=False) as stack:
        earlier = mark(stack, "test.before_release")  # within 24 h, so only the release start excludes it
        released = next_second(earlier.at)
        stack.github.add_deployment(DEPLOYED, created_at=released)
        wait_until(lambda: datetime.now(UTC) > released, timeout=3)
        later = mark(stack, "test.after_release")
        stack.github.add_deployment(DEPLOYED, created_at=next_second(later.at))  # redeployed: not the start
        approve(stack)
        row = finished(stack)
        assert row.status == RollbackStatus.COMPLETED.value, (row.failed_step, row.failure)
        assert row.release_started_at is not None and as_utc(row.release_started_at) == released
        assert row.bundle_path
        lines, _ = bundle_lines(row.bundle_path)
        assert lines[0]["release_started_at"] == lines[0]["since"]
        assert datetime.fromisoformat(lines[0]["since"]) == released
        bundled = {line["seq"]: line["action"] for line in lines if line["kind"] == "audit"}
        assert later.seq in bundled and bundled[later.seq] == "test.after_release"
        assert earlier.seq not in bundled and "test.before_release" not in bundled.values()


def test_unconfirmed_dispatch_with_no_run_fails_once_and_points_at_github_actions(
    tmp_path: Path, sqlite_url: str
) -> None:
    with running_stack(sqlite_url, tmp_path / "inc", OPSBOT_ROLLBACK_RUN_TIMEOUT_SECONDS="1") as stack:
        stack.github.status_for(WORKFLOW_PATH, 503)  # GitHub answers 503; the dispatch never lands
        approve(stack)
        row = finished(stack)
        assert row.failed_step == "revert-deployment"
        assert steps_of(row)["revert-deployment"] == "failed" and steps_of(row)["restore-previous-release"] == "not_run"
        assert "the dispatch was not confirmed" in row.failure and "HTTP 503" in row.failure
        assert f"no run with request id `{row.run_request_id}` appeared within 1 s" in row.failure
        assert "Look in GitHub Actions" in row.next_action and row.run_request_id in row.next_action
        assert "cannot run twice" in row.next_action
        shown = final_progress(stack, row, "Stopped:")
        assert "the dispatch was not confirmed" in shown and "Look in GitHub Actions" in shown
        announced(stack, "stopped at revert-deployment", "not confirmed", channel=ANNOUNCE)
        assert len(dispatches(stack)) == 1 and stack.github.runs() == []  # never re-dispatched
        assert stack.deps.freeze.active() is not None


def test_run_without_the_request_id_in_its_title_is_not_taken_for_ours(tmp_path: Path, sqlite_url: str) -> None:
    with running_stack(sqlite_url, tmp_path / "inc", OPSBOT_ROLLBACK_RUN_TIMEOUT_SECONDS="1") as stack:
        stack.github.faults.untitled_runs = True  # the workflow has no `run-name` with the request id
        stack.github.faults.withhold_run_details = True  # and GitHub's answer has no run id to follow
        approve(stack)
        row = finished(stack)
        assert row.failed_step == "revert-deployment"
        assert f"no `rollback.yml` run carrying request id `{row.run_request_id}` appeared within 1 s" in row.failure
        assert "not confirmed" not in row.failure  # the dispatch itself was accepted
        assert "`run-name`" in row.next_action and row.run_id is None and row.run_url is None
        assert len(dispatches(stack)) == 1 and len(stack.github.runs()) == 1
        assert "run-name" in final_progress(stack, row, "Stopped:")


def test_the_run_named_in_the_dispatch_answer_is_followed_even_without_a_titled_run(
    tmp_path: Path, sqlite_url: str
) -> None:
    with running_stack(sqlite_url, tmp_path / "inc", OPSBOT_ROLLBACK_RUN_TIMEOUT_SECONDS="5") as stack:
        stack.github.faults.untitled_runs = True  # no request id in the title: only the run id finds it
        approve(stack)
        row = finished(stack)
        (run,) = stack.github.runs()
        assert not row.failed_step and row.run_id == run["id"] and row.run_url == run["html_url"]
        assert stack.github.calls("GET", f"/repos/acme/trading/actions/runs/{run['id']}")
        assert not stack.github.calls("GET", "/repos/acme/trading/actions/workflows/rollback.yml/runs")


@pytest.mark.parametrize(("status", "said"), [(401, "check GITHUB_TOKEN"), (404, "GitHub has no such resource")])
def test_github_refusing_while_the_run_is_followed_fails_with_the_run_link(rb: Stack, status: int, said: str) -> None:
    running = running_with_run(rb)
    rb.github.status_for(RUNS_PATH, status)
    row = finished(rb)
    assert row.id == running.id and row.failed_step == "revert-deployment"
    assert "GitHub refused while the bot followed the revert" in row.failure and said in row.failure
    assert running.run_url and f"<{running.run_url}|#{running.run_id}>" in row.failure
    assert "check the run in GitHub Actions" in row.next_action
    assert steps_of(row)["restore-previous-release"] == "not_run"
    assert len(dispatches(rb)) == 1 and rb.deps.freeze.active() is not None
    assert running.run_url in final_progress(rb, row, "Stopped:")


def test_freeze_that_cannot_be_recorded_stops_before_anything_is_reverted(rb: Stack) -> None:
    with rb.deps.engine.begin() as conn:  # the freeze store's table is gone: every freeze write fails
        conn.execute(text("DROP TABLE cutover_freeze"))
    approve(rb)
    row = finished(rb)
    assert row.status == RollbackStatus.FAILED.value and row.failed_step == "stop-rollout"
    # Nothing reverted, but the evidence is preserved all the same (the runbook's step 5).
    assert steps_of(row) == {
        "stop-rollout": "failed",
        **dict.fromkeys(AFTER_STOP[:-1], "not_run"),
        "preserve-audit": "done",
    }
    assert row.failure.startswith("the cutover freeze could not be recorded.")
    assert "store is unavailable" in row.failure
    assert row.next_action.startswith("Nothing was reverted.")
    assert dispatches(rb) == [] and rb.github.runs() == []
    assert "rollback.dispatch:accepted" not in audit_actions(rb) and "rollback.failed:failed" in audit_actions(rb)
    shown = final_progress(rb, row, "Stopped:")
    assert "could not be recorded" in shown and "Nothing was reverted" in shown
    announced(rb, "stopped at stop-rollout", row.id, channel=CHANNEL)


def test_status_while_the_revert_runs_shows_the_running_step_and_its_run(rb: Stack) -> None:
    running = running_with_run(rb)
    wait_until(lambda: (r := store(rb).latest()) is not None and "is `in_progress`" in r.steps)
    shown = command(rb, "status")
    link = f"<{running.run_url}|#{running.run_id}>"
    lines = shown.splitlines()
    assert running.id in lines[0] and ":hourglass_flowing_sand: *running*" in lines[0]
    step = {line[0]: line for line in lines if line[:2] in ("1.", "2.", "3.")}
    assert ":white_check_mark: stop rollout" in step["1"]
    assert ":hourglass_flowing_sand: revert the most recent monorepo deployment" in step["2"]
    assert f"run {link} is `in_progress`" in step["2"]
    assert ":white_circle: restore traffic" in step["3"]
    assert f"Workflow run: <{running.run_url}|{running.run_id}>" in shown
    assert "Cutover frozen: rollback" in shown and "Stopped:" not in shown
    rb.github.faults.hang_runs = False
    assert finished(rb).status == RollbackStatus.COMPLETED.value
