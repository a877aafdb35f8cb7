"""After a rollback, the contract's target rule ("the newest successful production deployment with another
sha") picks the very release that was rolled back. The card says so loudly, approval is refused unless
`--to` named it, and an old monitoring alert's "Propose rollback" opens no request at all."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.rollback.history import redeploy_refusal, rolled_back_from, stale_alert
from bot.rollback.models import Rollback, RollbackStatus
from bot.rollback.plan import SOURCE_DEPLOYMENT, SOURCE_EXPLICIT
from bot.rollback.steps import REVERT, StepState, initial_steps, with_step
from bot.runbook.load import load_runbook
from commands.views.monitoring import PROPOSE_ROLLBACK
from rehearsal.sim.stack import Stack
from tests.support.common import CHANNEL, OPERATOR, OWNER, ROLES, click, text_of, wait_until
from tests.support.monitoring import FakePrometheus, alerts, button, monitoring_overrides, open_window, watcher
from tests.support.monitoring import store as alert_store
from tests.support.rollback import (
    DEPLOYED,
    OWNER2,
    TARGET,
    audit_rows,
    command,
    dispatches,
    finished,
    request,
    running_stack,
)

CONTROLS = "trading_control_update_failures_total"
AT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def rbm(tmp_path: Path, sqlite_url: str, fake_prom: FakePrometheus) -> Iterator[Stack]:
    """A rollback stack that also watches (the fake) Prometheus."""
    extra = {k: str(v) for k, v in monitoring_overrides(fake_prom.url).items() if k not in ROLES}
    with running_stack(sqlite_url, tmp_path / "incidents", settings=extra) as stack:
        yield stack


def roll_back(stack: Stack) -> Rollback:
    """One whole rollback, DEPLOYED (`abc1234…`) → TARGET (`9f8e7d6…`)."""
    approval_id, posted = request(stack)
    click(stack, user=OWNER, approval_id=approval_id, posted=posted)
    row = finished(stack)
    assert row.status == RollbackStatus.COMPLETED.value and stack.backend.version == TARGET[:7]
    return row


def test_a_request_that_would_re_deploy_a_rolled_back_release_is_refused_unless_to_names_it(rbm: Stack) -> None:
    first = roll_back(rbm)
    cards = len(rbm.deps.approvals.recent(action_prefix="rollback", limit=20))
    answer = command(rbm, "orders are slow")  # the contract's rule picks DEPLOYED again
    assert answer.startswith(
        f":no_entry: Not requested: `{DEPLOYED[:12]}` is the release that rollback "
        f"`{first.id}` took production off at {first.closed_at:%Y-%m-%d %H:%M:%S} UTC"
    )
    assert f"`/rollback <reason> --to {DEPLOYED[:12]}`" in answer
    # Nothing waits for an approval that would be refused, so the next request is not blocked.
    assert len(rbm.deps.approvals.recent(action_prefix="rollback", limit=20)) == cards
    assert any("re-deploying it was not asked for by name" in r.detail for r in audit_rows(rbm, "rollback.refused"))
    assert len(dispatches(rbm)) == 1 and rbm.backend.version == TARGET[:7]  # nothing re-deployed

    # Named on purpose: still flagged on the card, and approving runs it.
    approval_id, posted = request(rbm, text=f"the revert broke orders --to {DEPLOYED[:7]}")
    shown = text_of(posted.args)
    assert "re-deploys a rolled-back release" in shown and "so approving re-deploys it on purpose" in shown
    assert "Approving this is refused" not in shown
    click(rbm, user=OWNER2, approval_id=approval_id, posted=posted)
    again = finished(rbm, after=first.id)
    assert again.status == RollbackStatus.COMPLETED.value and again.target == DEPLOYED
    assert dispatches(rbm)[-1].body["inputs"]["target_sha"] == DEPLOYED


def raise_alert(stack: Stack, fake_prom: FakePrometheus) -> tuple[str, str]:
    """A trading-controls breach in the open window; the alert's id and message ts."""
    fake_prom.values = {CONTROLS: 3.0}
    watcher(stack).tick()
    sent = alerts(stack, "trading-control update failures")[-1]
    alert_id = button(sent, PROPOSE_ROLLBACK)["value"]
    row = alert_store(stack).get_alert(alert_id)
    assert row is not None
    return alert_id, str(row.message_ts)


def propose(stack: Stack, alert_id: str, ts: str) -> None:
    response = stack.sender.click(
        user=OPERATOR,
        action_id=PROPOSE_ROLLBACK,
        value=alert_id,
        channel=CHANNEL,
        message_ts=ts,
        block_id="monitoring_alert",
    )
    assert response.status_code == 200


def test_an_alert_older_than_the_last_rollback_proposes_nothing_and_a_fresh_one_proposes(
    rbm: Stack, fake_prom: FakePrometheus
) -> None:
    open_window(rbm)
    old_id, old_ts = raise_alert(rbm, fake_prom)
    first = roll_back(rbm)
    cards = len(rbm.deps.approvals.recent(action_prefix="rollback", limit=20))

    propose(rbm, old_id, old_ts)
    wait_until(lambda: any("No rollback request opened" in text_of(c.args) for c in rbm.peer.calls_to("response_url")))
    answer = next(
        text_of(c.args) for c in rbm.peer.calls_to("response_url") if "No rollback request opened" in text_of(c.args)
    )
    assert f"rollback `{first.id}` already completed (`abc1234` → `{TARGET[:12]}`" in answer
    assert "since this alert's breach began" in answer
    assert "The breach is still open, so that rollback has not fixed it" in answer  # the breach still lasts
    assert "about the release that was rolled back" not in answer
    assert len(rbm.deps.approvals.recent(action_prefix="rollback", limit=20)) == cards  # no request opened
    assert any(first.id in r.detail for r in audit_rows(rbm, "rollback.refused"))

    # Once it clears, a breach that begins after the rollback closed is a new alert, and proposes normally.
    fake_prom.values = {CONTROLS: 0.0}
    for _ in range(2):
        watcher(rbm).tick()
    assert alert_store(rbm).open_alerts("breach") == []
    open_window(rbm, seq=2, from_stage="web-internal-adoption", to_stage="mobile-internal-beta")
    new_id, new_ts = raise_alert(rbm, fake_prom)
    assert new_id != old_id
    before = len(rbm.peer.calls_to("response_url"))
    propose(rbm, new_id, new_ts)
    # Not stale: it is planned like a typed /rollback, whose default target is the rolled-back release.
    answer = text_of(rbm.peer.wait_for_call("response_url", count=before + 1, timeout=10)[-1].args)
    assert answer.startswith(f":no_entry: Not requested: `{DEPLOYED[:12]}` is the release that rollback")
    assert "No rollback request opened" not in answer
    assert len(rbm.deps.approvals.recent(action_prefix="rollback", limit=20)) == cards


# The rules, over rows of the `rollback` table.


def row(
    rid: str,
    status: RollbackStatus,
    *,
    reverted: bool = False,
    deployed: str = "def5678a9b0c1d2e",
    target: str = "abc1234e5f6a",
) -> Rollback:
    steps = initial_steps((a.id, a.text) for a in load_runbook().rollback.actions)
    if reverted:
        steps = with_step(steps, REVERT, StepState.DONE, "run done", AT)
    done = status is not RollbackStatus.RUNNING
    return Rollback(
        id=rid,
        approval_id=rid,
        status=status.value,
        request_id="r",
        run_request_id="c",
        requester="U1",
        approver="U2",
        channel="C",
        reason="r",
        deployed=deployed,
        target=target,
        steps=steps,
        created_at=AT,
        updated_at=AT,
        finished_at=AT + timedelta(minutes=5) if done else None,
        closed_at=AT + timedelta(minutes=5) if status is RollbackStatus.COMPLETED else None,
    )


def test_which_rollbacks_count_as_having_rolled_back_from_a_sha() -> None:
    failed_early = row("rb-1", RollbackStatus.FAILED)  # stopped before its revert: production never moved
    assert rolled_back_from([failed_early], "def5678") is None
    found = rolled_back_from([row("rb-2", RollbackStatus.FAILED, reverted=True), failed_early], "def5678")
    assert found is not None and found.rollback_id == "rb-2"
    running = rolled_back_from([row("rb-3", RollbackStatus.RUNNING)], "DEF5678A9B0C")
    assert running is not None and running.at == AT
    assert rolled_back_from([row("rb-4", RollbackStatus.COMPLETED, deployed="1111111")], "def5678") is None
    params = {"target": "def5678a9b0c1d2e", "target_source": SOURCE_DEPLOYMENT}
    assert "took production off at 2025-03-01 12:05:00 UTC" in (
        redeploy_refusal(params, rolled_back_from([row("rb-5", RollbackStatus.COMPLETED)], "def5678")) or ""
    )
    assert redeploy_refusal({**params, "target_source": SOURCE_EXPLICIT}, found) is None
    # Rolled back from, then restored on purpose by a later rollback (`--to`): an ordinary release again.
    restored = row("rb-8", RollbackStatus.COMPLETED, deployed="abc1234e5f6a", target="def5678a9b0c1d2e")
    assert rolled_back_from([restored, row("rb-7", RollbackStatus.COMPLETED)], "def5678") is None


def test_an_alert_is_stale_only_when_its_breach_began_before_the_last_rollback_closed() -> None:
    last = row("rb-6", RollbackStatus.COMPLETED)
    assert stale_alert(AT, "cleared", None) is None
    assert stale_alert(AT + timedelta(minutes=6), "open", last) is None  # a fresh breach
    answer = stale_alert(AT + timedelta(minutes=1), "cleared", last)  # began during the rollback
    assert answer is not None and "`rb-6` already completed" in answer and "new alert" in answer
