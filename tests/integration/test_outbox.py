"""The outbox on its own, on SQLite and PostgreSQL, against the Slack stand-in: two notifiers (two
replicas) on one store deliver every row once, each message's rows in order, repeated updates
coalesced to the latest, and what was not delivered survives a restart."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from bot.approvals.card import Card
from bot.approvals.outbox import DELIVERED, GIVEN_UP, SUPERSEDED, Note, Outbox
from bot.audit.log import AuditLog
from bot.settings import Settings
from bot.storage.db import make_engine
from bot.storage.migrate import upgrade
from commands.views.blocks import approval_blocks, as_dicts, notice_blocks
from commands.webapi.notifier import Notifier, NotifierConfig
from rehearsal.slack.peer import SlackPeer
from tests.support.common import CHANNEL, wait_until

TOKEN = "xoxb-outbox-test"
FAST = NotifierConfig(
    idle_poll_s=0.02,
    first_retry=timedelta(seconds=0.05),
    max_retry=timedelta(seconds=0.2),
    claim_lease=timedelta(seconds=20),
)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def peer() -> Iterator[SlackPeer]:
    with SlackPeer(bot_token=TOKEN) as running:
        yield running


def notifier(engine: Engine, peer: SlackPeer, replica: str, http: httpx.Client) -> Notifier:
    settings = Settings(_env_file=None, SLACK_BOT_TOKEN=TOKEN, SLACK_API_URL=peer.api_url)
    return Notifier(
        outbox=Outbox(engine),
        settings=settings,
        audit=AuditLog(engine, replica=replica),
        http=http,
        replica=replica,
        config=FAST,
    )


def card(stream: str, state: str) -> list[dict[str, Any]]:
    return [{"type": "section", "text": {"type": "mrkdwn", "text": f"{stream}: {state}"}}]


def settled(outbox: Outbox) -> bool:
    return all(r.status in (DELIVERED, SUPERSEDED) for r in outbox.rows())


def test_two_replicas_deliver_each_message_once_in_order(engine: Engine, peer: SlackPeer) -> None:
    outbox = Outbox(engine)
    streams = [f"s{i}" for i in range(20)]
    peer.ratelimit("chat.postMessage", times=3, retry_after=0)
    peer.drop("chat.update", times=2)
    for stream in streams:
        outbox.enqueue([Note(stream, "post", CHANNEL, f"{stream} opened", card(stream, "opened"))])
    for step in range(3):
        outbox.enqueue([Note(s, "update", CHANNEL, f"{s} step {step}", card(s, f"step {step}")) for s in streams])
    outbox.enqueue([Note(s, "reply", CHANNEL, f"{s} outcome", broadcast=True) for s in streams])
    with httpx.Client() as http:
        replicas = [notifier(engine, peer, name, http).start() for name in ("a", "b")]
        try:
            wait_until(lambda: settled(outbox), 30)
        finally:
            for replica in replicas:
                replica.stop()
    messages = peer.channel_messages(CHANNEL)
    tops = [m for m in messages if not m.get("thread_ts")]
    assert sorted(m["text"] for m in tops) == sorted(f"{s} step 2" for s in streams)  # final state, once each
    assert all(m["blocks"][0]["text"]["text"].endswith("step 2") for m in tops)
    threads = {m["thread_ts"]: m for m in messages if m.get("thread_ts")}
    assert len(threads) == 20 and {m["ts"] for m in tops} == set(threads)
    assert all(m.get("subtype") == "thread_broadcast" for m in threads.values())  # sent to the channel too
    delivered = [r for r in outbox.rows() if r.status == DELIVERED]
    assert {r.claimed_by for r in delivered} == {None}  # released once done
    # Each stream's post went out before anything else of it; its updates in order.
    posts = {c.args["text"].split()[0]: c.at for c in peer.calls_to("chat.postMessage") if "opened" in c.args["text"]}
    updates = peer.calls_to("chat.update")
    assert all(posts[c.args["text"].split()[0]] <= c.at for c in updates)
    for stream in streams:
        steps = [c.args["text"] for c in updates if c.args["text"].startswith(f"{stream} ")]
        assert steps == sorted(steps)


def test_undelivered_rows_survive_a_restart(engine: Engine, peer: SlackPeer) -> None:
    outbox = Outbox(engine)
    peer.down = True
    with httpx.Client() as http:
        first = notifier(engine, peer, "a", http).start()
        outbox.enqueue([Note("x", "post", CHANNEL, "x opened"), Note("x", "reply", CHANNEL, "x outcome")])
        peer.wait_for_call("dropped:chat.postMessage")
        first.stop()  # the replica goes away with the message undelivered
        peer.down = False
        second = notifier(engine, peer, "b", http).start()
        try:
            wait_until(lambda: settled(outbox), 10)
        finally:
            second.stop()
    texts = [m["text"] for m in peer.channel_messages(CHANNEL)]
    assert texts == ["x opened", "x outcome"]


def test_views_are_drawn_when_delivered_and_one_nobody_draws_is_given_up(engine: Engine, peer: SlackPeer) -> None:
    """The domain queues plain data; Slack receives the same blocks the views draw for it."""
    outbox = Outbox(engine)
    shown = Card(
        title="BREAK-GLASS · Halt trading: global",
        effect="Halts *all* trading.",
        reason="<!channel> fat finger & co",
        requester="U0HALTA",
        approver_role="a halt authority",
        expires_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        approval_id="apr_view",
        request_id="ops-view",
        status=":gear: executing now",
        audit="audit #3 · ab12…, signed",
        confirm_title="Confirm the break-glass halt?",
        confirm_text="Confirming records that you agree.",
    )
    notice = "first line\n" + "x" * 2990 + "\nlast line"
    outbox.enqueue(
        [
            Note("card", "post", CHANNEL, "card", view="approval", data=shown.data()),
            Note("notice", "post", CHANNEL, "notice", view="notice", data={"text": notice}),
            Note("odd", "post", CHANNEL, "odd", view="nobody-draws-this", data={}),
        ]
    )
    with httpx.Client() as http:
        running = notifier(engine, peer, "a", http).start()
        try:
            wait_until(lambda: all(r.status in (DELIVERED, GIVEN_UP) for r in outbox.rows()), 10)
        finally:
            running.stop()
    sent = {m["text"]: m for m in peer.channel_messages(CHANNEL)}
    assert sent["card"]["blocks"] == as_dicts(approval_blocks(shown))
    assert sent["notice"]["blocks"] == as_dicts(notice_blocks(notice))
    assert "odd" not in sent  # never sent half-drawn, and not retried for 30 minutes either
    assert [(r.status, "could not be drawn" in r.error) for r in outbox.rows("odd")] == [(GIVEN_UP, True)]
