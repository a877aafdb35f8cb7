"""Monitoring windows: opened (and announced) once per cutover transition, a summary at the end of the
immediate phase and at the end of the 24 hours, superseded by the next transition; a real
`/cutover advance` opens one."""

from __future__ import annotations

from rehearsal.sim.stack import Stack
from tests.e2e.test_cutover_flow import prepare, request_advance
from tests.support.common import ADMIN2, click, text_of, wait_until
from tests.support.gate import StackFactory
from tests.support.monitoring import (
    FakePrometheus,
    alerts,
    later,
    monitoring_overrides,
    open_window,
    posts,
    store,
    watcher,
)

ANNOUNCED = ":eyes: *Post-cutover monitoring opened*"
IMMEDIATE_END = ":clipboard: *Immediate post-cutover monitoring ended*"
CLOSED = ":clipboard: *Post-cutover monitoring closed*"
SUPERSEDED = ":clipboard: *Monitoring window superseded"
HOUR = 3600


def test_a_transition_opens_one_window_and_announces_it(mon_stack: Stack) -> None:
    open_window(mon_stack)
    open_window(mon_stack)  # the same transition again: nothing more
    (announced,) = posts(mon_stack, ANNOUNCED)
    shown = text_of(announced.args)
    assert "after the move to *Web internal adoption*" in shown
    assert "Immediate signals (8)" in shown and "first-24-hours signals (5)" in shown
    assert "platform auth failures: breach when > 10 failures over 5 min → trigger `auth`" in shown
    assert "web load: breach when > 524,288 bytes over 60 min (not a hard trigger)" in shown
    window = store(mon_stack).current_window()
    assert window is not None and window.cutover_seq == 1 and window.stage_id == "web-internal-adoption"
    assert (window.ends_at - window.opened_at).total_seconds() == 24 * HOUR
    assert (window.immediate_until - window.opened_at).total_seconds() == 2 * HOUR
    assert [r.action for r in mon_stack.deps.audit.rows()].count("monitoring.window_opened") == 1


def test_phases_end_with_one_summary_each_and_the_window_closes(mon_stack: Stack, fake_prom: FakePrometheus) -> None:
    open_window(mon_stack)
    w = watcher(mon_stack)
    fake_prom.values = {"trading_stale_sessions_total": 40.0, "trading_auth_failures_total": 3.0}
    w.tick()
    assert len(alerts(mon_stack, "stale session behavior across web and mobile")) == 1
    later(mon_stack, 2 * HOUR + 1)
    asked = len(fake_prom.requests)
    w.tick()
    w.tick()
    (summary,) = posts(mon_stack, IMMEDIATE_END)
    shown = text_of(summary.args)
    assert "8 signals, 0 alerts" in shown and "platform auth failures: peak 3 failures (threshold > 10" in shown
    # After the immediate phase only the first-24-hours signals are read.
    queries = [r.get("query", "") for r in fake_prom.requests[asked:] if r["path"] == "/api/v1/query"]
    assert queries and not any("trading_auth_failures_total" in q for q in queries)
    assert any("trading_stale_sessions_total" in q for q in queries)
    later(mon_stack, 22 * HOUR)
    w.tick()
    w.tick()
    (final,) = posts(mon_stack, CLOSED)
    shown = text_of(final.args)
    assert "13 signals, 1 alert" in shown and ":rotating_light: stale session behavior" in shown
    assert "still open" not in shown  # the open alert was closed with the window first
    assert posts(mon_stack, ":hourglass: Alert `mon-") and store(mon_stack).open_alerts() == []
    assert store(mon_stack).current_window() is None and w.tick() == "no open window"


def test_the_next_transition_supersedes_an_open_window(mon_stack: Stack) -> None:
    open_window(mon_stack, seq=1)
    first = store(mon_stack).current_window()
    open_window(mon_stack, seq=2, from_stage="web-internal-adoption", to_stage="mobile-internal-beta")
    (superseded,) = posts(mon_stack, SUPERSEDED)
    assert "after the move to *Web internal adoption*" in text_of(superseded.args)
    current = store(mon_stack).current_window()
    assert current is not None and first is not None and current.id != first.id
    assert current.stage_id == "mobile-internal-beta" and len(posts(mon_stack, ANNOUNCED)) == 2


def test_a_real_cutover_advance_opens_the_window(make_stack: StackFactory, fake_prom: FakePrometheus) -> None:
    stack = make_stack(**monitoring_overrides(fake_prom.url))
    prepare(stack)
    approval_id, posted = request_advance(stack)
    click(stack, user=ADMIN2, approval_id=approval_id, posted=posted)
    wait_until(lambda: bool(posts(stack, ANNOUNCED)), timeout=15)
    window = store(stack).current_window()
    assert (
        window is not None
        and window.stage_id == "web-internal-adoption"
        and window.from_stage == "backend-internal-validation"
    )
    assert window.request_id and window.cutover_seq == 1


def test_the_announcement_never_shows_prometheus_credentials(sqlite_url: str, fake_prom: FakePrometheus) -> None:
    with_creds = fake_prom.url.replace("http://", "http://opsbot:S3cr3tPass@")
    with Stack(database_url=sqlite_url, overrides=monitoring_overrides(with_creds)) as stack:
        open_window(stack)
        (announced,) = posts(stack, ANNOUNCED)
        shown = text_of(announced.args)
        assert f"Signals are read from Prometheus at `{fake_prom.url}`" in shown
        assert "S3cr3tPass" not in shown and "opsbot:" not in shown
