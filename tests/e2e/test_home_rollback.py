"""The App Home after a rollback: the last rollback's outcome for a day after it closed (so its requester
sees it), and alerts that began before it closed are marked."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.cutover.words import abbrev
from bot.home.facts import last_rollback_line
from bot.rollback.models import Rollback, RollbackStatus
from rehearsal.sim.stack import Stack
from tests.e2e.test_home import open_home
from tests.support.common import HALT_A, HALT_B, HALT_C, OPERATOR, OWNER, ROLES, click, text_of
from tests.support.monitoring import FakePrometheus, later, monitoring_overrides, open_window, posts, watcher
from tests.support.rollback import OWNER2, finished, request, running_stack

pytest_plugins = ["tests.support.rollback_fixture"]  # the `rb` fixture


def roll_back(stack: Stack) -> Rollback:
    approval_id, posted = request(stack, user=OPERATOR)
    click(stack, user=OWNER2, approval_id=approval_id, posted=posted)
    row = finished(stack)
    assert row.status == RollbackStatus.COMPLETED.value, row.failure
    return row


def home(stack: Stack, user: str = OPERATOR) -> str:
    return text_of({"blocks": open_home(stack, user)["blocks"]})


def test_the_requester_sees_her_rollbacks_outcome_for_a_day(rb: Stack) -> None:
    assert "*Rollback:* none active." in home(rb) and "Last rollback" not in home(rb)
    row = roll_back(rb)
    shown = home(rb)
    assert row.deployed.startswith("abc1234") and row.target.startswith("9f8e7d6")
    assert (
        f"*Rollback:* none active. Last rollback `{row.id}` ({abbrev(row.deployed)} → {abbrev(row.target)}) "
        ":white_check_mark: *completed* at "
    ) in shown
    assert f"(requested by <@{OPERATOR}>, approved by <@{OWNER2}>)." in shown
    later(rb, 25 * 3600)
    aged = home(rb)
    assert "*Rollback:* none active." in aged and "Last rollback" not in aged


@pytest.fixture
def mon_rb(tmp_path: Path, sqlite_url: str, fake_prom: FakePrometheus) -> Iterator[Stack]:
    """Rollbacks and monitoring together (the rollback owners of tests/support/rollback.py kept)."""
    monitoring = {k: str(v) for k, v in monitoring_overrides(fake_prom.url).items() if k not in ROLES}
    with running_stack(sqlite_url, tmp_path / "incidents", settings=monitoring) as stack:
        yield stack


def test_alerts_from_before_the_rollback_are_marked(mon_rb: Stack, fake_prom: FakePrometheus) -> None:
    open_window(mon_rb)
    fake_prom.values = {"trading_tenant_isolation_violations_total": 2.0}
    watcher(mon_rb).tick()
    assert "Active alerts (1)" in home(mon_rb) and "(before rollback" not in home(mon_rb)
    row = roll_back(mon_rb)
    later(mon_rb, 15 * 60)
    # The next stage's window opens after the rollback; a breach read from it begins after the close.
    open_window(mon_rb, seq=2, from_stage="web-internal-adoption", to_stage="mobile-internal-beta")
    fake_prom.values["trading_auth_failures_total"] = 50.0
    watcher(mon_rb).tick()
    lines = [line for line in home(mon_rb).splitlines() if line.startswith("• ")]
    tenant = next(line for line in lines if "tenant isolation anomalies" in line)
    auth = next(line for line in lines if "platform auth failures" in line)
    assert f"(still open after rollback `{row.id}`)" in tenant  # its 1 h window still counts the old release
    assert "rollback" not in auth


def test_a_breach_that_outlives_a_rollback_is_said_not_fixed_by_it(mon_rb: Stack, fake_prom: FakePrometheus) -> None:
    open_window(mon_rb)
    fake_prom.values = {"trading_auth_failures_total": 785.0}
    watcher(mon_rb).tick()
    watcher(mon_rb).tick()
    row = roll_back(mon_rb)
    fake_prom.values = {"trading_auth_failures_total": 1201.0}  # still rising on the release running now
    later(mon_rb, 4 * 60)  # within the signal's 5 min window: readings still count the old release
    watcher(mon_rb).tick()
    assert not posts(mon_rb, ":rotating_light: *Not fixed by rollback")
    later(mon_rb, 6 * 60)
    watcher(mon_rb).tick()
    watcher(mon_rb).tick()  # said once
    said = posts(mon_rb, ":rotating_light: *Not fixed by rollback")
    assert len(said) == 1 and said[0].args.get("reply_broadcast") is True and said[0].args.get("thread_ts")
    text = text_of(said[0].args)
    assert f"*Not fixed by rollback `{row.id}`:* platform auth failures is 1,201 failures" in text
    assert f"<@{OWNER}> <@{OWNER2}>" in text and f"<@{HALT_A}> <@{HALT_B}> <@{HALT_C}>" in text
    assert "rolled back" not in text and "old release" not in text
    card = mon_rb.peer.calls_to("chat.update")[-1]
    assert f"Not fixed by rollback `{row.id}`" in text_of(card.args) and "1,201 failures" in text_of(card.args)
    line = next(x for x in home(mon_rb).splitlines() if "platform auth failures" in x)
    assert f"(not fixed by rollback `{row.id}`)" in line and "before rollback" not in line


def test_a_failed_rollback_shows_its_step_and_outcome_escaped() -> None:
    at = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    row = Rollback(
        id="rb-x",
        approval_id="apr",
        status=RollbackStatus.FAILED.value,
        request_id="r",
        run_request_id="r2",
        requester="UREQ",
        approver="UOWN",
        channel="C1",
        reason="r",
        deployed="def5678<b>",
        target="abc1234",
        steps="[]",
        failed_step="revert-deployment",
        closed_by="rb-y",
        created_at=at,
        updated_at=at,
    )
    line = last_rollback_line(row, at)
    assert line.startswith(
        "Last rollback `rb-x` (`def5678&lt;b&gt;` → `abc1234`) :x: *failed* at step "
        "`revert-deployment` at 2025-03-01 12:00:00 UTC (closed by `rb-y`)"
    )
    assert line.endswith("(requested by <@UREQ>, approved by <@UOWN>).")
