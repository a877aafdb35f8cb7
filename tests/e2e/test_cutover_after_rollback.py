"""The cutover after a rollback took away the release its current stage was entered on: `/cutover status`
and the App Home warn, and `/cutover advance` is refused (for want of a GO on what runs now) saying why."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.cutover.engine import RolledBack, StageEntry, rolled_back_under
from bot.cutover.words import rollback_warning
from bot.rollback.models import RollbackStatus
from rehearsal.sim.stack import Stack
from tests.e2e.test_cutover_flow import advance, current_stage, prepare, refused, request_advance
from tests.e2e.test_home import open_home
from tests.support.common import ADMIN2, OPERATOR, click, text_of
from tests.support.gate import SHA, SHA2, StackFactory, command, green
from tests.support.rollback import OWNER2, finished, overrides, request, seed, spec

ROLLED_TO = "9f8e7d6"  # what the backend reports once the revert workflow ran (tests/support/rollback.py)
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def stack(make_stack: StackFactory, tmp_path: Path) -> Iterator[Stack]:
    """The /cutover stack (Cosmos, green CI for SHA) with two rollback owners and SHA's deployment in GitHub."""
    started = make_stack(**overrides(tmp_path / "incidents"))
    seed(started)
    yield started
    spec(started).runner.stop(timeout=10)


def roll_back(stack: Stack) -> str:
    """A full rollback SHA → the previous deployment, requested by the operator, approved by an owner."""
    approval_id, posted = request(stack)
    click(stack, user=OWNER2, approval_id=approval_id, posted=posted)
    row = finished(stack)
    assert row.status == RollbackStatus.COMPLETED.value, row.failure
    return row.id


def test_status_home_and_advance_warn_after_a_rollback_took_the_stages_release(stack: Stack) -> None:
    prepare(stack)
    advance(stack)  # stage 2 entered on SHA
    assert current_stage(stack) == "web-internal-adoption"
    assert ":warning: Rollback" not in command(stack, "/cutover", "status")
    rollback_id = roll_back(stack)

    warning = (
        f":warning: Rollback `{rollback_id}` took production off `{SHA[:12]}…` (on which this stage was entered) at "
    )
    status = command(stack, "/cutover", "status")
    assert "stage 2 of 5, Web internal adoption" in status and warning in status
    assert "the cutover stays at stage 2" in status and "run `/gate` and re-check before advancing" in status
    assert status.index(warning) < status.index("*1. Backend internal validation*")  # next to the headline

    home = text_of({"blocks": open_home(stack, OPERATOR)["blocks"]})
    assert "*Cutover:* *2 of 5, Web internal adoption*" in home and warning in home

    answer = refused(stack)
    assert "Cannot advance" in answer
    assert f"rollback {rollback_id} took production off {SHA[:12]}" in answer
    assert f"a GO from /gate for the deployed version ({ROLLED_TO})" in answer
    assert f"was for version {SHA}, but {ROLLED_TO} is deployed: run /gate" in answer  # the rule that refuses
    assert current_stage(stack) == "web-internal-adoption"

    stack.backend.set_version(SHA)  # the rolled-back release is deployed again: the stage's release runs
    assert ":warning: Rollback" not in command(stack, "/cutover", "status")


def test_no_warning_when_the_rollback_closed_before_the_stage_was_entered() -> None:
    entry = StageEntry(1, "web-internal-adoption", T0, "def5678")
    before = RolledBack("rb-1", "abc1234", "9f8e7d6", T0 - timedelta(minutes=5))
    after = RolledBack("rb-2", "def5678", "abc1234", T0 + timedelta(minutes=5))
    assert not rolled_back_under(entry, before, "9f8e7d6")
    assert not rolled_back_under(None, after, "abc1234")  # still in the first stage: nothing was earned
    assert rolled_back_under(entry, after, "abc1234")
    assert rolled_back_under(entry, after, None)  # the backend did not say: warn rather than stay silent
    assert not rolled_back_under(entry, after, "def5678" + "0" * 33)  # re-deployed: the same release runs


def test_the_warning_escapes_and_names_both_releases_when_they_differ() -> None:
    entry = StageEntry(1, "web-internal-adoption", T0, "def5678<x>")
    rolled = RolledBack("rb-<1>", "fff0000", "abc1234", T0 + timedelta(minutes=5))
    line = rollback_warning(rolled, entry, 2)
    assert "`rb-&lt;1&gt;`" in line and "`fff0000` → `abc1234`" in line and "entered on `def5678&lt;x&gt;`" in line
    assert "<x>" not in line and "stays at stage 2" in line


def test_an_advance_approved_after_a_rollback_is_refused_naming_the_rollback(stack: Stack) -> None:
    prepare(stack)
    advance(stack)  # stage 2 entered on SHA
    prepare(stack)  # stage 2's checks and a fresh GO, all on SHA
    approval_id, posted = request_advance(stack)
    rollback_id = roll_back(stack)  # while the advance waits for its second admin
    click(stack, user=ADMIN2, approval_id=approval_id, posted=posted)
    update = stack.peer.wait_for_call("chat.update", where=lambda c: "Not advanced" in text_of(c.args), timeout=15)[-1]
    shown = text_of(update.args)
    assert f"rollback {rollback_id} took production off {SHA[:12]}" in shown
    assert "is deployed: run /gate" in shown and current_stage(stack) == "web-internal-adoption"


def test_a_rollback_is_not_the_backend_deploy_cycle_broader_production_needs(stack: Stack) -> None:
    for _ in range(2):
        prepare(stack)
        advance(stack)
    assert current_stage(stack) == "mobile-internal-beta"  # the stability rule counts from here
    rollback_id = roll_back(stack)  # SHA → ROLLED_TO: a version change, but not a deploy
    green(stack, ROLLED_TO)
    prepare(stack)
    advance(stack)
    assert current_stage(stack) == "controlled-operator-rollout"
    prepare(stack)
    answer = refused(stack)
    assert f"{SHA[:7]} → {ROLLED_TO} was rollback {rollback_id}: a rollback is not a deploy cycle" in answer
    assert "no new backend version deployed since Mobile internal beta began" in answer
    green(stack, SHA2)  # a new backend version: the deploy cycle
    prepare(stack)
    advance(stack)
    assert current_stage(stack) == "broader-production-cutover"
