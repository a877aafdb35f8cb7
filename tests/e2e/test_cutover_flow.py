"""`/cutover` end to end: status, advance refused with what is missing, allowed exactly once with a second
admin's approval, the backend-deploy rule before broader cutover, and the freeze set by a rollback."""

from __future__ import annotations

import threading

import pytest

from bot.cutover.store import CutoverStore
from bot.runbook.transitions import CutoverTransition
from rehearsal.sim.stack import Stack
from rehearsal.slack.calls import ApiCall
from tests.support.common import ADMIN, ADMIN2, CHANNEL, OPERATOR, Clock, approval_id_of, click, text_of, wait_until
from tests.support.gate import (
    GATE_ATTESTED,
    SHA,
    SHA2,
    StackFactory,
    attest,
    command,
    green,
    run_gate,
)

ANNOUNCE = "C0ANNOUNCE"


@pytest.fixture
def stack(make_stack: StackFactory) -> Stack:
    return make_stack(OPSBOT_ANNOUNCE_CHANNEL=ANNOUNCE)


@pytest.fixture
def clock(stack: Stack) -> Clock:
    c = Clock()
    stack.deps.clock = c
    return c


def cutover_store(stack: Stack) -> CutoverStore:
    return CutoverStore(stack.deps.engine, stack.deps.audit)


def current_stage(stack: Stack) -> str:
    entry = cutover_store(stack).current()
    return entry.stage_id if entry else stack.deps.runbook.stages[0].id


def prepare(stack: Stack) -> None:
    """Every attested check of the current stage and of the gate, then a GO gate for the deployed version."""
    stage = stack.deps.runbook.stage(current_stage(stack))
    for item in stage.checks:
        if item.kind == "attested":
            assert "attested" in attest(stack, item.id)
    runbook = stack.deps.runbook
    index = runbook.stage_index(stage.id)
    entering = runbook.stages[index + 1] if index + 1 < len(runbook.stages) else None
    if any(item.probe == "smoke-checklist" for item in stage.checks) or (entering and entering.entry.manual_smoke):
        for item in stack.deps.runbook.smoke.manual:
            assert "attested" in attest(stack, item.id)
    for check_id in GATE_ATTESTED:
        assert "attested" in attest(stack, check_id)
    final = run_gate(stack)
    assert final.args["text"].startswith("Release go/no-go: GO"), text_of(final.args)


def request_advance(stack: Stack, *, user: str = ADMIN, reason: str = "stage checks done") -> tuple[str, ApiCall]:
    before = len(stack.peer.calls_to("chat.postMessage"))
    response = stack.sender.command(user=user, command="/cutover", text=f"advance {reason}", channel=CHANNEL)
    assert response.status_code == 200
    posted = stack.peer.wait_for_call("chat.postMessage", count=before + 1, timeout=15)[-1]
    approval_id = approval_id_of(posted)
    # The message's ts is stored just after the post: clicks before that would find no message to update.
    wait_until(lambda: (row := stack.deps.approvals.get(approval_id=approval_id)) is not None and bool(row.message_ts))
    return approval_id, posted


def advance(stack: Stack) -> None:
    approval_id, posted = request_advance(stack)
    click(stack, user=ADMIN2, approval_id=approval_id, posted=posted)
    wait_until(
        lambda: (row := stack.deps.approvals.get(approval_id=approval_id)) is not None and row.status == "executed",
        timeout=15,
    )


def refused(stack: Stack, *, user: str = ADMIN) -> str:
    return command(stack, "/cutover", "advance because we are ready", user=user)


def announcements(stack: Stack) -> list[ApiCall]:
    """The announcement itself (the outcome in the card's thread mentions it too)."""
    return [
        c
        for c in stack.peer.calls_to("chat.postMessage")
        if str(c.args.get("text")).startswith(":mega: *Rollout announcement") and not c.args.get("thread_ts")
    ]


def test_status_shows_five_stages_the_current_one_and_changes_nothing(stack: Stack) -> None:
    rows = stack.deps.audit.count()
    shown = command(stack, "/cutover", "status")
    assert "stage 1 of 5, Backend internal validation" in shown
    for n, name in enumerate(
        (
            "Backend internal validation",
            "Web internal adoption",
            "Mobile internal beta",
            "Controlled operator rollout",
            "Broader production cutover",
        ),
        start=1,
    ):
        assert f"*{n}. {name}*" in shown
    assert "*current*" in shown and "Last gate:* none yet" in shown
    assert "pending* `backend-tenant-scoped-reads`" in shown
    assert "No runtime control drift" in shown
    assert stack.deps.audit.count() == rows and current_stage(stack) == "backend-internal-validation"
    assert "Usage" in command(stack, "/cutover", "")


def test_advance_lists_everything_missing_and_is_audited(stack: Stack) -> None:
    answer = refused(stack)
    assert "Cannot advance" in answer and "Backend internal validation" in answer
    assert "`backend-deploy-platform-cosmos` is pending" in answer
    assert "`backend-tenant-scoped-reads` is pending" in answer
    assert "no GO from /gate yet" in answer
    assert "needs an admin" in refused(stack, user=OPERATOR)
    rows = [r for r in stack.deps.audit.rows() if r.action == "cutover.advance.refused"]
    assert rows and rows[0].outcome == "denied" and "no GO from /gate yet" in rows[0].detail
    assert not announcements(stack) and current_stage(stack) == "backend-internal-validation"


def test_advance_refused_when_the_go_is_for_another_version(stack: Stack) -> None:
    prepare(stack)
    green(stack, SHA2)
    answer = refused(stack)
    assert f"was for version {SHA}, but {SHA2} is deployed" in answer


def test_advance_refused_when_the_go_is_too_old(stack: Stack, clock: Clock) -> None:
    prepare(stack)
    clock.advance(stack.deps.settings.gate_max_age_seconds + 60)
    answer = refused(stack)
    assert "old, limit 60 min: run /gate" in answer


def test_advance_refused_after_a_later_no_go(stack: Stack) -> None:
    prepare(stack)
    stack.github.set_check(SHA, "pnpm lint", "failure")
    run_gate(stack)
    assert "was NO-GO after the last GO" in refused(stack)


def test_advance_refused_while_a_rollback_is_in_progress(stack: Stack, clock: Clock) -> None:
    prepare(stack)
    stack.deps.freeze.freeze(owner="rb_42", reason="rollback rb_42: auth failures", now=clock())
    answer = refused(stack)
    assert "rollback in progress" in answer and "rb_42" in answer
    assert "Frozen" in command(stack, "/cutover", "status")
    stack.deps.freeze.lift(owner="rb_42", by=ADMIN, now=clock())
    advance(stack)
    assert current_stage(stack) == "web-internal-adoption"


def test_advance_with_a_second_admin_happens_exactly_once_and_is_announced(stack: Stack) -> None:
    seen: list[CutoverTransition] = []
    stack.deps.on_cutover_transition.append(seen.append)  # e.g. monitoring opens its window here
    prepare(stack)
    approval_id, posted = request_advance(stack)
    assert "Backend internal validation → Web internal adoption" in text_of(posted.args)
    assert "an admin" in text_of(posted.args)
    before = len(stack.peer.calls_to("response_url"))
    click(stack, user=ADMIN, approval_id=approval_id, posted=posted)  # the requester cannot approve
    assert "second person" in text_of(stack.peer.wait_for_call("response_url", count=before + 1)[-1].args)
    answered = len(stack.peer.calls_to("response_url"))
    clicks = [
        threading.Thread(
            target=click, kwargs={"stack": stack, "user": ADMIN2, "approval_id": approval_id, "posted": posted}
        )
        for _ in range(5)
    ]
    for t in clicks:
        t.start()
    for t in clicks:
        t.join()
    stack.peer.wait_for_call("chat.update", where=lambda c: "Advanced" in text_of(c.args), timeout=15)
    late = stack.peer.wait_for_call("response_url", count=answered + 4, timeout=15)[answered:]
    assert all("Already handled" in text_of(c.args) for c in late)  # the other four clicks
    wait_until(lambda: len(announcements(stack)) >= 1)
    history = cutover_store(stack).history()
    assert [(r.from_stage, r.stage_id) for r in history] == [("backend-internal-validation", "web-internal-adoption")]
    assert history[0].requested_by == ADMIN and history[0].approved_by == ADMIN2 and history[0].version == SHA
    assert [(t.seq, t.from_stage, t.to_stage, t.approved_by) for t in seen] == [
        (1, "backend-internal-validation", "web-internal-adoption", ADMIN2)
    ]
    notice = announcements(stack)
    assert len(notice) == 1 and notice[0].args["channel"] == ANNOUNCE
    said = text_of(notice[0].args)
    assert "Web internal adoption" in said and f"<@{ADMIN}>" in said and f"<@{ADMIN2}>" in said
    steps = [r.action for r in stack.deps.audit.for_approval(approval_id)]
    assert steps.count("cutover.advance.executed") == 1 and steps.count("cutover.stage_entered") == 1
    shown = command(stack, "/cutover", "status")
    assert "stage 2 of 5, Web internal adoption" in shown
    assert "*1. Backend internal validation*: :white_check_mark: done" in shown
    assert "attested* `backend-tenant-scoped-reads`" in shown


def test_preconditions_are_checked_again_when_approved(stack: Stack, clock: Clock) -> None:
    prepare(stack)
    approval_id, posted = request_advance(stack)
    stack.deps.freeze.freeze(owner="rb_7", reason="rollback rb_7", now=clock())
    click(stack, user=ADMIN2, approval_id=approval_id, posted=posted)
    update = stack.peer.wait_for_call("chat.update", where=lambda c: "Not advanced" in text_of(c.args), timeout=15)
    assert "rollback in progress" in text_of(update[-1].args)
    assert current_stage(stack) == "backend-internal-validation" and not announcements(stack)


def test_broader_cutover_needs_a_backend_deploy_since_the_mobile_beta(stack: Stack) -> None:
    for expected in ("web-internal-adoption", "mobile-internal-beta", "controlled-operator-rollout"):
        prepare(stack)
        advance(stack)
        assert current_stage(stack) == expected
    prepare(stack)
    answer = refused(stack)
    assert "no new backend version deployed since Mobile internal beta began" in answer
    assert f"version {SHA[:7]}" in answer
    green(stack, SHA2)  # one backend deploy cycle; the contracts are checked again by the gate
    prepare(stack)
    advance(stack)
    assert current_stage(stack) == "broader-production-cutover"
    assert len(announcements(stack)) == 4
    assert "already at its last stage" in refused(stack)


def test_status_says_when_the_last_gate_was_for_another_version(stack: Stack) -> None:
    prepare(stack)  # a GO for SHA
    green(stack, SHA2)  # then SHA2 is deployed
    shown = command(stack, "/cutover", "status")
    assert "*Last gate:* *GO*" in shown and f"*NOT the deployed* `{SHA2}`" in shown and "run `/gate`" in shown
