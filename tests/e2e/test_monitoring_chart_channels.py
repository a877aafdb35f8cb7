"""Alert charts in channels the bot was not invited to: it joins a public one to share the chart,
and where it cannot (private channel, missing scope) the alert's thread says why and how to fix it."""

from __future__ import annotations

import io

from PIL import Image

from commands.webapi.charts import HEIGHT, WIDTH
from commands.webapi.monitoring import ChannelPacer, SlackPoster
from commands.webapi.refusals import SlackRefusal
from rehearsal.sim.stack import Stack
from tests.support.common import CHANNEL
from tests.support.monitoring import FakePrometheus, open_window, store, watcher

AUTH = "trading_auth_failures_total"


def breach(stack: Stack, prom: FakePrometheus) -> None:
    open_window(stack)
    prom.values = {AUTH: 14.0}
    watcher(stack).tick()


def thread_notes(stack: Stack, ts: str) -> list[str]:
    return [m["text"] for m in stack.peer.channel_messages(CHANNEL) if m.get("thread_ts") == ts and not m.get("files")]


def test_the_bot_joins_a_public_channel_it_is_not_in_and_the_chart_reaches_it(
    mon_stack: Stack, fake_prom: FakePrometheus
) -> None:
    mon_stack.peer.workspace.channels.set_member(CHANNEL, False)  # posting still works: chat:write.public
    breach(mon_stack, fake_prom)
    (row,) = store(mon_stack).open_alerts("breach")
    assert row.message_ts and row.chart_file_id
    assert [c.args["channel"] for c in mon_stack.peer.calls_to("conversations.join")] == [CHANNEL]
    assert mon_stack.peer.workspace.channel(CHANNEL)["is_member"] is True
    shared = mon_stack.peer.files.shared_in(CHANNEL)
    assert [f.id for f in shared] == [row.chart_file_id] and shared[0].thread_ts == row.message_ts
    assert shared[0].data is not None and shared[0].filename.endswith(".png")
    image = Image.open(io.BytesIO(shared[0].data))
    assert (image.format, image.size) == ("PNG", (WIDTH, HEIGHT))  # the chart itself, not an empty share
    assert thread_notes(mon_stack, row.message_ts) == []


def test_without_the_join_scope_the_alert_says_the_chart_is_missing_and_how_to_fix_it(
    mon_stack: Stack, fake_prom: FakePrometheus
) -> None:
    mon_stack.peer.workspace.channels.set_member(CHANNEL, False)
    mon_stack.peer.workspace.scopes -= {"channels:join"}
    breach(mon_stack, fake_prom)
    (row,) = store(mon_stack).open_alerts("breach")
    assert row.message_ts and not row.chart_file_id
    (note,) = thread_notes(mon_stack, row.message_ts)
    assert "chart of this alert could not be shown" in note and "`channels:join`" in note and "reinstall" in note
    (audited,) = [r for r in mon_stack.deps.audit.rows() if r.action == "monitoring.chart_refused"]
    assert audited.outcome == "failed" and "missing_scope" in audited.params and row.id in audited.params


def test_a_private_channel_the_bot_is_not_in_gets_an_invite_hint(mon_stack: Stack) -> None:
    peer = mon_stack.peer
    peer.workspace.add_channel("G0PRIVATE", name="war-room", is_private=True, is_member=False)
    poster = SlackPoster(mon_stack.deps.slack, ChannelPacer(0.0))
    refused = poster.upload_png("G0PRIVATE", None, b"\x89PNG\r\n\x1a\n", filename="x.png", title="x")
    assert isinstance(refused, SlackRefusal) and refused.permanent
    assert refused.error == "channel_not_found" and "`/invite @opsbot`" in refused.text
    assert peer.calls_to("conversations.join") == []  # a private channel cannot be joined: not tried
