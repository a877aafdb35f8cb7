"""Alert cards stay live: an open card shows the latest value and the peak, edited at most once a minute;
a cleared card says when it cleared and the peak, keeps the stage of the breach and loses its button."""

from __future__ import annotations

from typing import Any

from commands.views.monitoring import PROPOSE_ROLLBACK
from rehearsal.sim.stack import Stack
from rehearsal.slack.calls import ApiCall
from tests.support.common import text_of
from tests.support.monitoring import FakePrometheus, alerts, later, open_window, store, watcher

AUTH = "trading_auth_failures_total"


def card_updates(stack: Stack, ts: str) -> list[ApiCall]:
    return [c for c in stack.peer.calls_to("chat.update") if c.args.get("ts") == ts]


def fields(call: ApiCall) -> dict[str, str]:
    found: dict[str, str] = {}
    for block in call.args.get("blocks") or []:
        for field in block.get("fields") or []:
            label, _, value = str(field["text"]).partition("\n")
            found[label.strip("*")] = value
    return found


def has_button(call: ApiCall) -> bool:
    blocks: list[dict[str, Any]] = call.args.get("blocks") or []
    return any(e.get("action_id") == PROPOSE_ROLLBACK for b in blocks for e in b.get("elements") or [])


def test_an_open_card_follows_the_value_and_peak_at_most_once_a_minute(
    mon_stack: Stack, fake_prom: FakePrometheus
) -> None:
    open_window(mon_stack)
    fake_prom.values = {AUTH: 12.0}
    watcher(mon_stack).tick()
    posted = alerts(mon_stack, "platform auth failures")[-1]
    ts = str(posted.args.get("ts") or store(mon_stack).open_alerts("breach")[0].message_ts)
    assert fields(posted)["Latest"].startswith("12 failures")

    fake_prom.values = {AUTH: 40.0}
    watcher(mon_stack).tick()
    assert card_updates(mon_stack, ts) == []  # within a minute of the post: coalesced
    later(mon_stack, 61)
    fake_prom.values = {AUTH: 1201.0}
    watcher(mon_stack).tick()
    fake_prom.values = {AUTH: 900.0}
    watcher(mon_stack).tick()  # same minute: not edited again
    (edit,) = card_updates(mon_stack, ts)
    assert fields(edit)["Latest"].startswith("1,201 failures") and fields(edit)["Peak"].startswith("1,201 failures")
    later(mon_stack, 122)
    watcher(mon_stack).tick()
    edit = card_updates(mon_stack, ts)[-1]
    assert len(card_updates(mon_stack, ts)) == 2
    assert fields(edit)["Latest"].startswith("900 failures") and fields(edit)["Peak"].startswith("1,201 failures")
    assert has_button(edit)


def test_a_cleared_card_says_when_keeps_its_stage_and_loses_its_button(
    mon_stack: Stack, fake_prom: FakePrometheus
) -> None:
    open_window(mon_stack)
    fake_prom.values = {AUTH: 300.0}
    watcher(mon_stack).tick()
    (alert,) = store(mon_stack).open_alerts("breach")
    # The cutover moves on while the breach lasts: the alert is still the earlier stage's.
    open_window(mon_stack, seq=2, from_stage="web-internal-adoption", to_stage="mobile-internal-beta")
    fake_prom.values = {AUTH: 0.0}
    watcher(mon_stack).tick()
    watcher(mon_stack).tick()
    cleared = store(mon_stack).get_alert(alert.id)
    assert cleared is not None and cleared.status == "cleared" and cleared.cleared_at is not None
    card = card_updates(mon_stack, str(alert.message_ts))[-1]
    shown = fields(card)
    assert shown["Cleared"] == cleared.cleared_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    assert shown["Peak"].startswith("300 failures") and shown["Stage"] == "Web internal adoption"
    assert "Latest" not in shown and "Value" not in shown and "0 failures &gt; 10" not in text_of(card.args)
    assert not has_button(card)
