"""Pure parts of /rollback: the grammar, the plan, re-validation at approval, the restore check, and
the step bookkeeping the progress message is rendered from."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bot.rollback.models import Rollback
from bot.rollback.plan import (
    DATA_RULE,
    SOURCE_DEPLOYMENT,
    SOURCE_EXPLICIT,
    Observation,
    RollbackRefused,
    Target,
    effect,
    plan_params,
    restore_problem,
    revalidate,
    title,
)
from bot.rollback.steps import HALT, StepState, current_step, initial_steps, not_run, progress_text, with_step
from bot.runbook.load import load_runbook
from commands.grammar.rollback import RollbackRequest, StatusRequest, parse
from commands.grammar.usage import UsageError

RUNBOOK = load_runbook()
AT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
DEPLOYED, TARGET = "abc1234", "9f8e7d6" + "0" * 33


def seen(deployed: str = DEPLOYED, target: str | None = TARGET, source: str = SOURCE_DEPLOYMENT) -> Observation:
    return Observation(
        deployed,
        "ok",
        {"backend": deployed, "web": deployed, "mobile": "build-9"},
        AT,
        Target(target, source, 1001, AT) if target else None,
    )


# Grammar.


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("status", StatusRequest()),
        ("STATUS", StatusRequest()),
        ("logins fail", RollbackRequest("logins fail")),
        ("logins fail --trigger auth", RollbackRequest("logins fail", "auth")),
        ("--trigger=Tenant leak of orders", RollbackRequest("leak of orders", "tenant")),
        ("bad --to ABCDEF1 deploy --trigger config", RollbackRequest("bad deploy", "config", "abcdef1")),
        ("web status is bad --trigger recovery", RollbackRequest("web status is bad", "recovery")),
    ],
)
def test_grammar_accepts(text: str, expected: object) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "Here is how"),
        ("help", "Here is how"),
        ("status now", "takes nothing after it"),
        ("--trigger auth", "A reason is required"),
        ("r --trigger", "needs a value"),
        ("r --trigger auth --trigger config", "given twice"),
        ("r --trigger outage", "not a rollback trigger"),
        ("r --to main", "not a commit sha"),
        ("r --to abc12", "not a commit sha"),
        ("r --force", "Unknown option"),
        ("x" * 501, "at most 500"),
    ],
)
def test_grammar_refuses_with_usage(text: str, problem: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse(text)
    assert problem in caught.value.problem and "/rollback status" in caught.value.usage


# The plan.


def test_plan_params_and_card() -> None:
    params = plan_params(reason="auth down", trigger="auth", to=None, seen=seen(), workflow="rollback.yml")
    assert params["deployed"] == DEPLOYED and params["target"] == TARGET and params["trigger"] == "auth"
    assert params["target_source"] == SOURCE_DEPLOYMENT and params["target_deployment_id"] == 1001
    assert params["release_started_at"] == AT.isoformat()
    json.dumps(params)  # stored as the approval's params: JSON only
    shown = effect(RUNBOOK, params)
    assert "Trigger 1 of 5:* Auth/session failures" in shown and RUNBOOK.trigger("auth").text in shown
    lines = shown.splitlines()
    numbered = [line for line in lines if line[:2] in ("1.", "2.", "3.", "4.", "5.")]
    assert [line.split(":")[0][3:] for line in numbered] == [a.text for a in RUNBOOK.rollback.actions]
    assert "`rollback.yml`" in shown and DATA_RULE in shown and "mobile `build-9`" in shown
    (rule,) = [line for line in lines if line.startswith("*Data rule:*")]  # the runbook's rule whole, not cut
    assert (
        rule.endswith(
            "first-response rollback; prefer application rollback first, then explicit state repair if needed._"
        )
        and ";)" not in rule
    )
    assert "re-deploy" not in shown  # no earlier rollback took production off the target
    assert title(params) == "Rollback production: abc1234 → 9f8e7d600000"


def test_plan_without_trigger_and_with_unknown_explicit_target() -> None:
    params = plan_params(
        reason="r",
        trigger=None,
        to="0123456",
        seen=Observation(DEPLOYED, "ok", {}, None, Target("0123456", SOURCE_EXPLICIT)),
        workflow="rollback.yml",
    )
    shown = effect(RUNBOOK, params)
    assert "none named" in shown and "not a successful production deployment on record" in shown


@pytest.mark.parametrize(
    ("observation", "workflow", "problem"),
    [
        (seen(target=None), "rollback.yml", "Name the commit"),
        (seen(target=DEPLOYED + "0" * 33), "rollback.yml", "deployed version already"),
        (seen(), None, "OPSBOT_ROLLBACK_WORKFLOW is not set"),
    ],
)
def test_plan_refusals(observation: Observation, workflow: str | None, problem: str) -> None:
    with pytest.raises(RollbackRefused) as caught:
        plan_params(reason="r", trigger=None, to=None, seen=observation, workflow=workflow)
    assert problem in caught.value.text


def test_revalidation_compares_deployed_and_target() -> None:
    params = plan_params(reason="r", trigger=None, to=None, seen=seen(), workflow="w.yml")
    assert revalidate(params, seen()) is None
    assert revalidate(params, seen(deployed=DEPLOYED + "0" * 33)) is None  # the same sha, longer
    changed = revalidate(params, seen(deployed="1111111"))
    assert changed is not None and "deployed version changed from `abc1234` to `1111111`" in changed
    moved = revalidate(params, seen(target="2222222"))
    assert moved is not None and "rollback target changed" in moved and "`2222222`" in moved
    gone = revalidate(params, seen(target=None))
    assert gone is not None and "to nothing" in gone


def test_restore_problem() -> None:
    assert restore_problem("9f8e7d6", {"backend": "9f8e7d6", "web": "9F8E7D6", "mobile": "build-9"}, TARGET) is None
    assert "reports `abc1234`, not the target" in (restore_problem("abc1234", {}, TARGET) or "")
    behind = restore_problem("9f8e7d6", {"backend": "9f8e7d6", "web": "abc1234"}, TARGET)
    assert behind == "surfaces still on another version: web `abc1234`"


# Steps.


def test_steps_move_and_render() -> None:
    steps = initial_steps((a.id, a.text) for a in RUNBOOK.rollback.actions)
    assert [s["state"] for s in json.loads(steps)] == ["pending"] * 5
    steps = with_step(steps, "stop-rollout", StepState.DONE, "frozen <#C1>", AT)
    steps = with_step(steps, HALT, StepState.RUNNING, "checked before stop-rollout", AT)
    steps = with_step(steps, "revert-deployment", StepState.RUNNING, "run #1 queued", AT)
    assert current_step(steps) == "revert-deployment"
    ended = not_run(with_step(steps, "revert-deployment", StepState.FAILED, None, AT), AT)
    assert [s["state"] for s in json.loads(ended)] == ["done", "failed", "not_run", "not_run", "not_run"]
    assert json.loads(ended)[1]["detail"] == "run #1 queued"  # None keeps the detail
    row = Rollback(
        id="rb-1",
        approval_id="a",
        status="failed",
        request_id="ops-1",
        run_request_id="ops-9",
        requester="U1",
        approver="U2",
        channel="C",
        trigger="auth",
        reason="<!channel> bad",
        deployed="def5678a9b0c1d2e3f4a",
        target=TARGET,
        steps=ended,
        failed_step="revert-deployment",
        failure="the run failed",
        next_action="look at it",
        created_at=AT,
        updated_at=AT,
    )
    text = progress_text(row, "Auth/session failures")
    assert "failed at revert-deployment" in text and "&lt;!channel&gt; bad" in text and "<!channel>" not in text
    assert "Stopped:* the run failed" in text and "Next:* look at it" in text and "stays frozen" in text
    assert ":heavy_minus_sign:" in text and DATA_RULE in text
    # Both shas the same way in the header (12 characters); in full below it.
    assert "*Rollback `rb-1`* `def5678a9b0c` → `9f8e7d600000`: :x:" in text
    assert f"*From* `def5678a9b0c1d2e3f4a` *to* `{TARGET}`" in text
    # Which request id is which.
    assert "Requested by <@U1> (request id `ops-1`, as on the request card)" in text
    assert "approved by <@U2> (the approval click's request id `ops-9`, sent to the revert workflow)" in text
