"""Monitoring alerts end to end over the loopback stack: one alert per breach with its chart, cleared when
it clears, a "Propose rollback" button that starts the /rollback request flow, the bot's own measures,
and Slack's posting rate per channel."""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable

from PIL import Image

from commands.views.monitoring import PROPOSE_ROLLBACK
from commands.webapi.charts import HEIGHT, WIDTH
from commands.webapi.monitoring import ChannelPacer
from rehearsal.sim.stack import Stack
from tests.support.common import (
    CHANNEL,
    HALT_A,
    HALT_B,
    OPERATOR,
    STRANGER,
    approval_id_of,
    click,
    request_halt,
    text_of,
    wait_until,
)
from tests.support.monitoring import FakePrometheus, alerts, button, open_window, posts, store, watcher
from tests.support.rollback import seed

AUTH = "trading_auth_failures_total"


def test_a_breach_posts_one_alert_with_value_since_trigger_chart_and_button(
    mon_stack: Stack, fake_prom: FakePrometheus
) -> None:
    open_window(mon_stack)
    w = watcher(mon_stack)
    fake_prom.values = {AUTH: 14.0}
    for _ in range(4):
        w.tick()
    sent = alerts(mon_stack)
    assert len(sent) == 1, [c.args["text"] for c in sent]
    shown = text_of(sent[0].args)
    assert "platform auth failures" in shown and "14 failures > 10 failures" in shown
    assert "*Since*" in shown and "*Hard rollback trigger 1 of 5:* Auth/session failures" in shown
    assert "sum(increase(trading_auth_failures_total[300s]))" in shown
    alert_id = button(sent[0], PROPOSE_ROLLBACK)["value"]
    row = store(mon_stack).get_alert(alert_id)
    assert row is not None and row.status == "open" and row.trigger == "auth" and row.message_ts
    # The chart: a PNG uploaded with the files API into the alert's thread.
    completed = mon_stack.peer.calls_to("files.completeUploadExternal")
    assert len(completed) == 1 and completed[0].args["thread_ts"] == row.message_ts
    assert completed[0].args["channel_id"] == CHANNEL
    png = mon_stack.peer.files.get(str(row.chart_file_id))
    assert png is not None and png.data is not None
    image = Image.open(io.BytesIO(png.data))
    assert (image.format, image.size) == ("PNG", (WIDTH, HEIGHT))
    rows = [r for r in mon_stack.deps.audit.rows() if r.action == "monitoring.alert_raised"]
    assert len(rows) == 1 and alert_id in rows[0].params


def test_it_clears_after_two_good_readings_and_a_new_breach_is_a_new_alert(
    mon_stack: Stack, fake_prom: FakePrometheus
) -> None:
    open_window(mon_stack)
    w = watcher(mon_stack)
    fake_prom.values = {AUTH: 30.0}
    w.tick()
    first = store(mon_stack).open_alerts("breach")[0]
    fake_prom.values = {AUTH: 2.0}
    w.tick()
    assert store(mon_stack).open_alerts("breach") and not posts(mon_stack, ":white_check_mark: *Cleared:*")
    w.tick()
    cleared = posts(mon_stack, ":white_check_mark: *Cleared:*")
    assert len(cleared) == 1 and "back to 2 failures" in cleared[0].args["text"]
    assert cleared[0].args["thread_ts"] == first.message_ts and cleared[0].args["reply_broadcast"] in (True, "1")
    updated = [c for c in mon_stack.peer.calls_to("chat.update") if c.args.get("ts") == first.message_ts]
    assert updated and "Cleared" in text_of(updated[-1].args)
    assert store(mon_stack).get_alert(first.id).status == "cleared"  # type: ignore[union-attr]
    fake_prom.values = {AUTH: 40.0}
    w.tick()
    w.tick()
    sent = alerts(mon_stack, "platform auth failures")
    assert len(sent) == 2 and button(sent[1], PROPOSE_ROLLBACK)["value"] != first.id


def test_propose_rollback_starts_the_rollback_request_with_the_trigger(
    mon_stack: Stack, fake_prom: FakePrometheus
) -> None:
    seed(mon_stack)
    open_window(mon_stack)
    fake_prom.values = {"trading_control_update_failures_total": 3.0}
    watcher(mon_stack).tick()
    (sent,) = alerts(mon_stack, "trading-control update failures")
    alert_id = button(sent, PROPOSE_ROLLBACK)["value"]
    ts = str(store(mon_stack).get_alert(alert_id).message_ts)  # type: ignore[union-attr]
    before = len(mon_stack.peer.calls_to("chat.postMessage"))
    response = mon_stack.sender.click(
        user=OPERATOR,
        action_id=PROPOSE_ROLLBACK,
        value=alert_id,
        channel=CHANNEL,
        message_ts=ts,
        block_id="monitoring_alert",
    )
    assert response.status_code == 200
    request = mon_stack.peer.wait_for_call("chat.postMessage", count=before + 1, timeout=10)[-1]
    shown = text_of(request.args)
    assert "Rollback production" in shown and "Trigger 3 of 5:* Trading controls not applied" in shown
    assert f"monitoring alert {alert_id}" in shown
    approval = mon_stack.deps.approvals.get(approval_id=approval_id_of(request))
    assert approval is not None and approval.action == "rollback" and approval.requester == OPERATOR
    # Someone who may not request a rollback is refused, like the typed command.
    mon_stack.sender.click(
        user=STRANGER,
        action_id=PROPOSE_ROLLBACK,
        value=alert_id,
        channel=CHANNEL,
        message_ts=ts,
        block_id="monitoring_alert",
    )
    wait_until(lambda: any("needs an operator" in text_of(c.args) for c in mon_stack.peer.calls_to("response_url")))


def test_a_halt_whose_read_back_shows_it_not_applied_is_a_kill_switch_misfire(
    mon_stack: Stack, fake_prom: FakePrometheus
) -> None:
    open_window(mon_stack)

    def fault() -> None:
        mon_stack.backend.faults.halt_not_applied = True

    approval_id = approve_halt(mon_stack, fault, until="failed")
    watcher(mon_stack).tick()
    (sent,) = alerts(mon_stack)
    assert "kill-switch misfires: 1 misfire > 0 misfires" in sent.args["text"]
    shown = text_of(sent.args)
    assert "Hard rollback trigger 3 of 5" in shown
    # The alert names the halt that misfired, so nobody has to dig through the audit log.
    assert f"*Counted:*\n• `halt.failed` approval `{approval_id}`" in shown and f"by <@{HALT_B}>" in shown
    assert "shows still trading" in shown


def test_a_halt_whose_read_back_failed_is_not_a_misfire(mon_stack: Stack, fake_prom: FakePrometheus) -> None:
    open_window(mon_stack)

    def read_back_fails(_doc: object) -> None:  # the write applied; every read after it gets a 503
        mon_stack.backend.faults.fail_status = 503

    mon_stack.backend.on_control_changed = read_back_fails
    approval_id, posted = request_halt(mon_stack, user=HALT_A)
    click(mon_stack, user=HALT_B, approval_id=approval_id, posted=posted)
    wait_until(
        lambda: any(r.action == "halt.failed" for r in mon_stack.deps.audit.for_approval(approval_id)), timeout=10
    )
    failed = [r for r in mon_stack.deps.audit.for_approval(approval_id) if r.action == "halt.failed"]
    assert failed[-1].outcome == "unconfirmed" and "read-back failed" in failed[-1].detail
    mon_stack.backend.faults.fail_status = None
    watcher(mon_stack).tick()
    assert not alerts(mon_stack, "kill-switch misfires")  # unconfirmed proves nothing either way


def test_an_approved_action_that_fails_is_an_operator_intervention_failure(
    mon_stack: Stack, fake_prom: FakePrometheus
) -> None:
    open_window(mon_stack)

    def fault() -> None:
        mon_stack.backend.faults.fail_status = 503

    approval_id = approve_halt(mon_stack, fault, until="pending")  # retryable: back to pending, audited
    mon_stack.backend.faults.fail_status = None
    watcher(mon_stack).tick()
    (sent,) = alerts(mon_stack)
    assert "unexpected operator intervention failures: 1 failure > 0 failures" in sent.args["text"]
    shown = text_of(sent.args)
    assert f"• `halt.failed` approval `{approval_id}`" in shown and "HTTP 503" in shown


def approve_halt(stack: Stack, fault: Callable[[], None], *, until: str) -> str:
    approval_id, posted = request_halt(stack, user=HALT_A)
    fault()
    click(stack, user=HALT_B, approval_id=approval_id, posted=posted)
    wait_until(lambda: any(r.action == "halt.failed" for r in stack.deps.audit.for_approval(approval_id)), timeout=10)
    row = stack.deps.approvals.get(approval_id=approval_id)
    assert row is not None and row.status == until
    return approval_id


def test_the_pacer_spaces_posts_per_channel() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = ChannelPacer(1.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        pacer.wait("C1")
    pacer.wait("C2")  # another channel has its own budget
    assert slept == [1.0, 1.0]


def test_alerts_in_one_channel_are_a_second_apart(sqlite_url: str, fake_prom: FakePrometheus) -> None:
    from commands.monitoring import build_watcher
    from tests.support.monitoring import monitoring_overrides

    with Stack(database_url=sqlite_url, overrides=monitoring_overrides(fake_prom.url)) as stack:
        open_window(stack)
        fake_prom.values = {
            AUTH: 50.0,
            "trading_token_refresh_failures_total": 50.0,
            "trading_stale_sessions_total": 90.0,
        }
        build_watcher(stack.deps).tick()  # the real pacer: about one post a second in the channel
        times = [
            c.at
            for c in stack.peer.calls
            if (c.method == "chat.postMessage" and c.args.get("channel") == CHANNEL)
            or c.method == "files.getUploadURLExternal"
        ]
        assert len(alerts(stack)) == 3 and len(times) >= 6
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) >= 0.9, gaps


def test_an_open_breach_fails_the_monitoring_clean_check(mon_stack: Stack, fake_prom: FakePrometheus) -> None:
    from bot.gate.composite import monitoring_clean
    from bot.gate.result import Verdict

    gate = mon_stack.deps.gate
    assert monitoring_clean(gate.evidence("abc1234")).verdict is Verdict.PASS
    open_window(mon_stack)
    fake_prom.values = {"trading_web_chunk_bytes": 900_000.0}  # not a hard trigger: still clean
    watcher(mon_stack).tick()
    assert len(alerts(mon_stack)) == 1 and monitoring_clean(gate.evidence("abc1234")).verdict is Verdict.PASS
    fake_prom.values = {"trading_tenant_isolation_violations_total": 1.0}
    watcher(mon_stack).tick()
    result = monitoring_clean(gate.evidence("abc1234"))
    assert result.verdict is Verdict.FAIL and "tenant isolation anomalies: 1 anomaly > 0 anomalies" in result.reason


def test_a_ratelimited_alert_is_retried_after_retry_after_and_shown_once(
    mon_stack: Stack, fake_prom: FakePrometheus
) -> None:
    open_window(mon_stack)
    mon_stack.peer.ratelimit("chat.postMessage", times=1, retry_after=1)  # Slack: HTTP 429, Retry-After: 1
    fake_prom.values = {AUTH: 30.0}
    w = watcher(mon_stack)
    w.tick()  # within this one pass: refused, waited, posted
    refused, accepted = alerts(mon_stack)  # what the bot sent: the refused attempt, then the retry
    assert accepted.at - refused.at >= 1.0  # it waited as long as Slack asked
    w.tick()  # the breach lasts: nothing more is sent
    assert len(alerts(mon_stack)) == 2
    shown = [
        m
        for m in mon_stack.peer.channel_messages(CHANNEL)
        if str(m.get("text") or "").startswith("Monitoring alert: platform auth failures")
    ]
    assert len(shown) == 1  # what the channel shows: one alert
    (row,) = store(mon_stack).open_alerts("breach")
    assert row.message_ts == shown[0]["ts"] and row.chart_file_id
