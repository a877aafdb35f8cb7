"""The App Home: a valid view within Slack's limits whatever the backlog, published on app_home_opened,
with Approve / Reject for what the viewer may approve, and re-published after every action."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk.models.views import View

from bot.approvals.store import params_of
from bot.home.model import AlertLine, AuditLine, Decision, HomeFacts, PendingApproval
from commands.home_publish import HomePublisher
from commands.views.home import HOME_APPROVE, MAX_BLOCKS, MAX_BYTES, decision_line, home_view
from rehearsal.sim.stack import Stack
from tests.support.common import CHANNEL, HALT_A, HALT_B, HALT_C, OPERATOR, click, request_halt, text_of, wait_until
from tests.support.gate import run_gate
from tests.support.monitoring import FakePrometheus, later, open_window, watcher

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
ROLES = frozenset({"operator", "halt_authority"})


def facts(approvals: int = 0, alerts: int = 0, text: str = "x") -> HomeFacts:
    return HomeFacts(
        now=NOW,
        stage="*2 of 5, Web internal adoption*",
        checklist="3 of 4 done",
        gate="*Last gate:* GO",
        halt=":large_green_circle: *Global: trading*",
        rollback=None,
        monitoring="no window open",
        approvals=[
            PendingApproval(
                f"apr-{i:04d}",
                f"Halt trading: tenant:t{i} {text}",
                f"UREQ{i}",
                "halt_authority",
                "a halt authority",
                NOW + timedelta(minutes=15),
                CHANNEL,
            )
            for i in range(approvals)
        ],
        alerts=[
            AlertLine(f"mon-{i}", f"*signal {i}* {text}: 14 failures > 10 failures", NOW, "auth") for i in range(alerts)
        ],
        audit=[AuditLine(i, NOW, "UADMIN", "halt.requested", "accepted") for i in range(30, 0, -1)],
    )


def test_many_approvals_and_alerts_are_summarised_within_slacks_limits() -> None:
    view: dict[str, Any] = home_view(facts(approvals=300, alerts=200, text="y" * 2000), viewer=HALT_B, roles=ROLES)
    View(**view).validate_json()  # what Slack's own model accepts
    assert len(view["blocks"]) <= MAX_BLOCKS and len(json.dumps(view)) <= MAX_BYTES
    shown = text_of({"blocks": view["blocks"]})
    assert "Approvals waiting for you (300)" in shown and "…and 290 more" in shown
    assert "Active alerts (200)" in shown and "…and 190 more in the incident channel" in shown
    assert shown.count("halt.requested") == 10  # the last 10 audit events only
    buttons = [e for b in view["blocks"] if b.get("type") == "actions" for e in b["elements"]]
    assert len(buttons) == 20 and {b["value"] for b in buttons if b["action_id"] == HOME_APPROVE} == {
        f"apr-{i:04d}" for i in range(10)
    }


def test_only_what_the_viewer_may_approve_gets_buttons() -> None:
    home = facts(approvals=3)
    own = home_view(home, viewer="UREQ1", roles=ROLES)
    assert "Approvals waiting for you (2)" in text_of({"blocks": own["blocks"]})
    operator = home_view(home, viewer=OPERATOR, roles=frozenset({"operator"}))
    assert "Approvals waiting for you:* none" in text_of({"blocks": operator["blocks"]})


def home_of(stack: Stack, user: str, count: int = 1) -> dict[str, Any]:
    calls = stack.peer.wait_for_call(
        "views.publish", count=count, timeout=10, where=lambda c: c.args.get("user_id") == user
    )
    view = calls[-1].args["view"]
    assert isinstance(view, dict) and view["type"] == "home"
    return view


def open_home(stack: Stack, user: str) -> dict[str, Any]:
    before = len([c for c in stack.peer.calls_to("views.publish") if c.args.get("user_id") == user])
    response = stack.sender.event({"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": "home"})
    assert response.status_code == 200, response.text
    return home_of(stack, user, before + 1)


def test_opening_the_home_publishes_the_state(stack: Stack) -> None:
    view = open_home(stack, OPERATOR)
    shown = text_of({"blocks": view["blocks"]})
    assert "*Cutover:* *1 of 5, Backend internal validation*" in shown and "of 6 done" in shown
    assert "*Last gate:* none yet" in shown and "*Global: trading*" in shown
    assert "*Rollback:* none active." in shown and "*Active alerts:* none." in shown
    assert "*Monitoring:* no window open" in shown and "*Recent audit events:*" in shown
    assert stack.peer.workspace.home_view(OPERATOR) is not None  # recorded by the peer as Slack keeps it


def test_the_last_gate_with_its_age_and_the_scoped_disables_show(stack: Stack) -> None:
    final = run_gate(stack)  # no CI checks and no Cosmos here: the release is NO-GO
    assert final.args["text"].startswith("Release go/no-go: NO-GO ")
    approval_id, posted = request_halt(stack, user=HALT_A, text="tenant:acme cross-tenant reads suspected")
    click(stack, user=HALT_B, approval_id=approval_id, posted=posted)
    wait_until(
        lambda: [s["scope"] for s in stack.backend.control()["scopes"] if s["disabled"]] == ["tenant:acme"], timeout=10
    )
    shown = text_of({"blocks": open_home(stack, OPERATOR)["blocks"]})
    assert "*Last gate:* *NO-GO*" in shown and "0 min ago" in shown and f"by <@{OPERATOR}>" in shown
    assert "*Global: trading* · scoped disables (1): `tenant:acme`" in shown
    later(stack, 7 * 60)
    aged = text_of({"blocks": open_home(stack, OPERATOR)["blocks"]})
    assert "*Last gate:* *NO-GO*" in aged and "7 min ago" in aged and "0 min ago" not in aged


def test_a_backend_that_fails_shows_the_halt_state_as_unknown_in_plain_words(stack: Stack) -> None:
    stack.backend.faults.fail_status = 503
    stack.backend.faults.fail_error = "gateway <lb-2> & pool exhausted"
    shown = text_of({"blocks": open_home(stack, OPERATOR)["blocks"]})
    assert (
        "*Halt state:* unknown: :rotating_light: The trading backend failed (HTTP 503: gateway &lt;lb-2&gt; "
        "&amp; pool exhausted)"
    ) in shown  # escaped once: Slack shows the backend's words as they were
    assert "*Cutover:*" in shown  # the rest of the home still shows


def test_approve_from_the_home_and_it_refreshes(stack: Stack) -> None:
    approval_id, _ = request_halt(stack, user=HALT_A)
    own = text_of({"blocks": open_home(stack, HALT_A)["blocks"]})
    assert "Approvals waiting for you:* none" in own  # never one's own request
    view = open_home(stack, HALT_B)
    entry = text_of({"blocks": view["blocks"]})
    row = stack.deps.approvals.get(approval_id=approval_id)
    assert row is not None and f"*Reason:* {params_of(row)['reason']}" in entry
    assert f"Approval `{approval_id}` · request `{row.request_id}`" in entry
    block = next(b for b in view["blocks"] if b.get("block_id") == f"home_{approval_id}")
    assert [e["value"] for e in block["elements"]] == [approval_id, approval_id]
    before = len(stack.peer.calls_to("views.publish"))
    response = stack.sender.view_click(
        user=HALT_B, action_id=HOME_APPROVE, value=approval_id, block_id=block["block_id"], view=view
    )
    assert response.status_code == 200
    wait_until(lambda: len(stack.peer.calls_to("views.publish")) > before, timeout=10)
    after = text_of({"blocks": home_of(stack, HALT_B, 2)["blocks"]})
    assert "*Your decision* (" in after and f"(`{approval_id}`): it is now *executed*." in after
    assert after.index("*Your decision*") < after.index("*Cutover:*")  # at the top
    assert "HALTED" in after and stack.backend.control()["global"]["halted"] is True
    updated = [c for c in stack.peer.calls_to("chat.update") if "Applied" in text_of(c.args)]
    assert updated  # the request message in the channel shows the outcome too
    again = stack.sender.view_click(
        user=HALT_B, action_id=HOME_APPROVE, value=approval_id, block_id=block["block_id"], view=view
    )
    assert again.status_code == 200
    wait_until(lambda: "already" in text_of({"blocks": home_of(stack, HALT_B, 3)["blocks"]}).lower(), timeout=10)


def test_every_action_refreshes_the_homes_of_recent_viewers(stack: Stack) -> None:
    open_home(stack, HALT_B)
    publisher = HomePublisher(stack.deps)
    publisher.poll()  # the first look only notes where the audit log stands
    count = len(stack.peer.calls_to("views.publish"))
    request_halt(stack, user=HALT_A)  # an action: audit rows
    publisher.poll()
    wait_until(lambda: len(stack.peer.calls_to("views.publish")) > count, timeout=10)
    shown = text_of({"blocks": home_of(stack, HALT_B, 2)["blocks"]})
    assert "Approvals waiting for you (1)" in shown
    publisher.close()


def test_active_alerts_show_on_the_home(mon_stack: Stack, fake_prom: FakePrometheus) -> None:
    open_window(mon_stack)
    fake_prom.values = {"trading_tenant_isolation_violations_total": 2.0}
    watcher(mon_stack).tick()
    shown = text_of({"blocks": open_home(mon_stack, OPERATOR)["blocks"]})
    assert "Active alerts (1)" in shown and "tenant isolation anomalies*: 2 anomalies > 0 anomalies" in shown
    assert "trigger `tenant`" in shown and "*Monitoring:* watching since the move to *Web internal adoption*" in shown


def test_a_break_glass_halt_waits_on_the_home_for_confirmation(stack: Stack) -> None:
    response = stack.sender.command(user=HALT_A, command="/halt", text="global runaway orders --now", channel=CHANNEL)
    assert response.status_code == 200
    wait_until(lambda: stack.backend.control()["global"]["halted"] is True, timeout=10)
    view = open_home(stack, HALT_C)
    shown = text_of({"blocks": view["blocks"]})
    assert "break-glass, executed: confirm or dispute" in shown
    labels = [e["text"]["text"] for b in view["blocks"] if b.get("type") == "actions" for e in b["elements"]]
    assert labels == ["Confirm halt", "Dispute"]


def test_the_active_rollback_and_its_step_show_on_the_home(stack: Stack) -> None:
    from bot.audit.log import Actor
    from bot.rollback.models import Rollback
    from bot.rollback.steps import StepState, initial_steps, with_step
    from bot.rollback.store import RollbackStore

    now = stack.deps.now()
    steps = initial_steps((a.id, a.text) for a in stack.deps.runbook.rollback.actions)
    steps = with_step(
        with_step(steps, "stop-rollout", StepState.DONE, "frozen", now),
        "revert-deployment",
        StepState.RUNNING,
        "following the run",
        now,
    )
    row = Rollback(
        id="rb-home",
        approval_id="apr-home",
        status="running",
        request_id="r",
        run_request_id="r2",
        requester=OPERATOR,
        approver="UOWNER",
        channel=CHANNEL,
        trigger="auth",
        reason="logins fail",
        deployed="abc1234",
        target="9f8e7d6",
        steps=steps,
        created_at=now,
        updated_at=now,
    )
    assert RollbackStore(stack.deps.engine, stack.deps.audit).start(row, Actor("", "UOWNER"))
    shown = text_of({"blocks": open_home(stack, OPERATOR)["blocks"]})
    assert "*Rollback `rb-home`*" in shown and "*running*" in shown and "*Step:* `revert-deployment`" in shown


def test_a_failed_decision_shows_the_recorded_outcome_as_it_was_written() -> None:
    outcome = "Approved by <@U123>. :rotating_light: refused (HTTP 400: scope &lt;tenant:acme&gt; &amp; co unknown)"
    line = decision_line(
        Decision("apr_1", "Halt trading: global", "U123", datetime(2026, 1, 1, tzinfo=UTC), "failed", outcome)
    )
    assert line.endswith("\n" + outcome)  # the bot's own mrkdwn, escaped once when it was written
