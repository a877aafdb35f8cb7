"""`/rollback` end to end over signed requests on loopback: the plan shown before approval, a refused
self-approval, the owner's approval, each step, the close, `/rollback status` and the incident bundle."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import MetaData, Table, insert

from bot.approvals.actions import ExecutionContext
from bot.approvals.store import params_of
from bot.audit.log import export_dict
from bot.rollback.models import RollbackStatus
from rehearsal.sim.stack import Stack
from tests.support.common import CHANNEL, HALT_A, OPERATOR, OWNER, click, text_of, wait_until
from tests.support.rollback import (
    DEPLOYED,
    OWNER2,
    TARGET,
    announced,
    audit_actions,
    audit_rows,
    bundle_lines,
    command,
    dispatches,
    final_progress,
    finished,
    progress_updates,
    request,
    running_stack,
    steps_of,
    store,
)

pytest_plugins = ["tests.support.rollback_fixture"]  # the `rb` fixture

ACTIONS = [
    "stop rollout to additional users immediately",
    "revert the most recent monorepo deployment",
    "restore traffic to the previous stable web/backend/mobile release",
    "keep backend trade-halt authority available during rollback",
    "preserve audit logs and operational events for incident review",
]


def test_plan_is_shown_before_anyone_approves(rb: Stack) -> None:
    _, posted = request(rb, text="logins fail for everyone --trigger auth")
    shown = text_of(posted.args)
    assert "Auth/session failures" in shown
    assert "auth/session failures prevent sign-in or session refresh" in shown  # the trigger in full
    assert "Trigger 1 of 5" in shown
    assert "`abc1234`" in shown and f"`{TARGET}`" in shown  # deployed and target versions
    assert "newest successful production deployment with another sha" in shown
    positions = [shown.index(action) for action in ACTIONS]
    assert positions == sorted(positions)  # the five runbook actions, in order
    assert "Cosmos control-plane state is not rewritten or deleted" in shown
    assert "rollback owner" in shown and "logins fail for everyone" in shown
    assert dispatches(rb) == []  # nothing happens before approval


def test_request_refused_self_approval_owner_approval_each_step_closed(rb: Stack) -> None:
    approval_id, posted = request(rb, user=OWNER, text="tenant leak in orders --trigger tenant")

    click(rb, user=OWNER, approval_id=approval_id, posted=posted)  # the requester, though a rollback owner
    refusal = rb.peer.wait_for_call("response_url")[-1]
    assert "second person" in text_of(refusal.args)
    click(rb, user=HALT_A, approval_id=approval_id, posted=posted)  # not a rollback owner
    rb.peer.wait_for_call("response_url", count=2)
    assert "rollback owner" in text_of(rb.peer.calls_to("response_url")[-1].args)
    assert dispatches(rb) == []

    click(rb, user=OWNER2, approval_id=approval_id, posted=posted)
    row = finished(rb)
    assert row.status == RollbackStatus.COMPLETED.value
    assert set(steps_of(row).values()) == {"done"}
    assert row.closed_at is not None and row.approver == OWNER2 and row.requester == OWNER

    # Step 2: exactly one dispatch, with the target sha, reason and request id.
    (dispatch,) = dispatches(rb)
    assert dispatch.body == {
        "ref": "main",
        "inputs": {"target_sha": TARGET, "reason": "tenant leak in orders", "request_id": row.run_request_id},
        "return_run_details": True,
    }
    assert row.run_url and row.run_id
    # Step 3: the backend reports the target now.
    assert rb.backend.calls("GET", "/api/health")[-1].headers["x-request-id"] == row.run_request_id
    # Step 1: frozen, announced; closed: lifted and announced.
    assert rb.deps.freeze.active() is None
    announced(rb, "Rollout stopped", row.id)
    announced(rb, "completed", row.id, "freeze is lifted")

    # One progress message, updated as each step finished; the last shows every step done.
    assert row.progress_ts
    final = final_progress(rb, row, "completed and closed")
    updates = progress_updates(rb, row)
    assert len(updates) >= 5
    assert final.count(":white_check_mark:") >= 5
    assert any("run <" in u and ":hourglass_flowing_sand:" in u for u in updates)  # the run shown while it ran

    # The approval message says it started; the audit has every step.
    approval = rb.deps.approvals.get(approval_id=approval_id)
    assert approval is not None and approval.status == "executed"
    rb.peer.wait_for_call(
        "chat.update",
        where=lambda c: c.args.get("ts") == approval.message_ts and f"Rollback `{row.id}` started" in text_of(c.args),
    )
    assert_full_audit_trail(rb)


def assert_full_audit_trail(rb: Stack) -> None:
    actions = audit_actions(rb)
    for expected in [
        "rollback.requested:accepted",
        "rollback.approval_refused:denied",
        "rollback.approved:accepted",
        "rollback.started:accepted",
        "rollback.dispatch:accepted",
        "rollback.executed:applied",
        "rollback.step.stop-rollout:applied",
        "rollback.step.revert-deployment:applied",
        "rollback.step.restore-previous-release:applied",
        "rollback.step.keep-halt-authority:applied",
        "rollback.evidence_preserved:applied",
        "rollback.step.preserve-audit:applied",
        "rollback.closed:applied",
    ]:
        assert expected in actions, expected
    assert rb.deps.audit.verify().ok


def test_status_shows_each_step(rb: Stack) -> None:
    assert "No rollback has run yet" in command(rb, "status")
    approval_id, posted = request(rb)
    assert "waits for approval" in command(rb, "status")
    click(rb, user=OWNER, approval_id=approval_id, posted=posted)
    row = finished(rb)
    shown = command(rb, "status")
    assert row.id in shown and "completed and closed" in shown
    for action in ACTIONS:
        assert action in shown
    assert shown.count(":white_check_mark:") >= 5
    assert "SHA-256" in shown and "not frozen" in shown


def test_incident_bundle_content_and_hash_match_the_audit(rb: Stack) -> None:
    approval_id, posted = request(rb, text="controls ignored --trigger controls")
    click(rb, user=OWNER, approval_id=approval_id, posted=posted)
    row = finished(rb)
    assert row.bundle_path and row.bundle_sha256
    lines, digest = bundle_lines(row.bundle_path)
    (evidence,) = audit_rows(rb, "rollback.evidence_preserved")
    params = export_dict(evidence)["params"]
    assert params["sha256"] == digest == row.bundle_sha256
    assert params["path"] == row.bundle_path and params["lines"] == len(lines)

    kinds = [line["kind"] for line in lines]
    assert kinds[0] == "rollback" and kinds[-1] == "steps" and "cosmos_control" in kinds
    header = lines[0]
    assert header["rollback_id"] == row.id and header["deployed"] == "abc1234" and header["target"] == TARGET
    # The rollback's request ids: the command's, every click's, the one the revert carried.
    clicks = {e.request_id for e in rb.deps.audit.for_approval(approval_id)}
    assert set(header["request_ids"]) >= {row.request_id, row.run_request_id, *clicks}

    # Every audit row since the release began, exactly as the audit log holds it, up to the bundle.
    bundled = [{k: v for k, v in line.items() if k != "kind"} for line in lines if line["kind"] == "audit"]
    expected = [export_dict(e) for e in rb.deps.audit.rows(since=row.release_started_at) if e.seq <= params["last_seq"]]
    assert bundled == expected and len(bundled) == params["audit_rows"] > 0
    assert {"rollback.requested", "rollback.approved", "rollback.dispatch"} <= {b["action"] for b in bundled}
    assert lines[kinds.index("cosmos_control")] == {"kind": "cosmos_control", "configured": False}


def test_explicit_target_and_no_trigger(rb: Stack) -> None:
    other = "0123456789abcdef0123456789abcdef01234567"
    approval_id, posted = request(rb, text=f"web broken --to {other[:10]}")
    shown = text_of(posted.args)
    assert "none named" in shown and "named with `--to`" in shown
    assert "not a successful production deployment on record" in shown
    click(rb, user=OPERATOR, approval_id=approval_id, posted=posted, action="reject")  # withdrawn
    wait_until(lambda: (a := rb.deps.approvals.get(approval_id=approval_id)) is not None and a.status == "rejected")
    _, posted = request(rb, text=f"web broken --to {TARGET[:9]}")
    shown = text_of(posted.args)
    assert f"`{TARGET}`" in shown and "named with `--to`; successful production deployment" in shown


def test_nothing_to_roll_back_to_is_refused_without_a_request(rb: Stack) -> None:
    answer = command(rb, f"web broken --to {DEPLOYED[:8]}")
    assert "deployed version already" in answer
    assert rb.peer.channel_messages(CHANNEL) == []


def test_bundle_carries_the_gate_evaluations_since_the_release_began(rb: Stack) -> None:
    table = Table("gate_evaluation", MetaData(), autoload_with=rb.deps.engine)
    now = rb.deps.now()
    with rb.deps.engine.begin() as conn:
        for gate_id, at in (("gate_before", now - timedelta(days=3)), ("gate_during", now)):
            conn.execute(
                insert(table).values(
                    id=gate_id,
                    started_at=at,
                    finished_at=at,
                    version="abc1234",
                    verdict="go",
                    requested_by=OPERATOR,
                    channel=CHANNEL,
                    request_id=f"ops-{gate_id}",
                    message_ts=None,
                    deadline_s=20.0,
                    results="[]",
                )
            )
    approval_id, posted = request(rb)
    click(rb, user=OWNER, approval_id=approval_id, posted=posted)
    row = finished(rb)
    assert row.bundle_path
    lines, _ = bundle_lines(row.bundle_path)
    gates = [line for line in lines if line["kind"] == "gate_evaluation"]
    assert [g["id"] for g in gates] == ["gate_during"]  # only those since the deployed release began
    assert gates[0]["verdict"] == "go" and gates[0]["request_id"] == "ops-gate_during"
    (evidence,) = audit_rows(rb, "rollback.evidence_preserved")
    assert export_dict(evidence)["params"]["gate_rows"] == 1


def test_the_target_is_found_behind_25_failed_deployments_across_pages(sqlite_url: str, tmp_path: Path) -> None:
    """Every production deployment is a candidate: GitHub is paged (Link: rel="next"), not cut at the newest 20."""
    with running_stack(sqlite_url, tmp_path / "incidents", seed_deployed=False) as stack:
        stack.github.max_per_page = 10  # three pages of deployments
        for n in range(25):
            stack.github.add_deployment(f"{n:07d}" + "f" * 33, state="failure")
        stack.github.add_deployment(DEPLOYED)
        approval_id, posted = request(stack)
        shown = text_of(posted.args)
        assert TARGET[:12] in shown and "lists no successful" not in shown
        pages = [c for c in stack.github.calls("GET", "/repos/") if c.path.endswith("/deployments")]
        assert len(pages) >= 3  # followed the Link header
        statuses = [c for c in stack.github.calls("GET", "/repos/") if c.path.endswith("/statuses")]
        assert len(statuses) >= 26  # the deployed one is skipped by sha; 25 failures, then the target
        click(stack, user=OWNER, approval_id=approval_id, posted=posted)
        row = finished(stack)
        assert row.status == "completed" and row.target == TARGET


def test_a_resumed_approval_whose_rollback_already_started_does_not_start_another(rb: Stack) -> None:
    """What a replica resuming a lapsed execution sees when its first process had started the rollback."""
    approval_id, posted = request(rb)
    click(rb, user=OWNER, approval_id=approval_id, posted=posted)
    first = finished(rb)
    approval = rb.deps.approvals.get(approval_id=approval_id)
    assert approval is not None and first.approval_id == approval_id
    ctx = ExecutionContext(approval_id, params_of(approval), approval.requester, OWNER, approval.request_id)
    again = rb.deps.actions["rollback"].execute(ctx)  # the same approval, executed a second time
    assert again.applied and f"Rollback `{first.id}` started" in again.summary and "completed" in again.summary
    assert len(dispatches(rb)) == 1 and len(store(rb).recent()) == 1

    # And the outcome of the first told the channel in the card's thread, naming who asked and approved.
    def told() -> bool:
        replies = [m for m in rb.peer.channel_messages(CHANNEL) if m.get("thread_ts") == approval.message_ts]
        return any("completed" in m["text"] and f"approved by <@{OWNER}>" in m["text"] for m in replies)

    wait_until(told)
