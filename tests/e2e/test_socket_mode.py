"""Socket Mode against real parts: the local Slack peer's `apps.connections.open` and WebSocket, and
`opsbot run` as a subprocess with SLACK_APP_TOKEN set, talking to the simulated trading backend."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from rehearsal.sim.backend import SimBackend
from rehearsal.sim.stack import BOT_TOKEN, ISSUER, JWT_SECRET, SIGNING_SECRET
from rehearsal.slack.peer import SlackPeer
from tests.support.common import CHANNEL, HALT_A, OPERATOR, approval_id_of, text_of, wait_until

OPSBOT = Path(sys.executable).with_name("opsbot")
PREFIXES = ("SLACK_", "OPSBOT_", "TRADING_", "PLATFORM_", "COSMOS_", "GITHUB_", "JWT_SECRET")
HALTED: dict[str, Any] = {
    "global": {
        "halted": True,
        "reason": "socket-mode drill 7731",
        "updated_at": "2026-11-25T10:00:00Z",
        "updated_by": "UHALTB",
    },
    "scopes": [
        {"scope": "tenant:acme", "disabled": True, "reason": "acme fat-finger", "updated_at": "2026-11-25T10:01:00Z"}
    ],
    "maintenance": {"enabled": False, "message": None},
    "revision": 4242,
}


@pytest.fixture
def peer() -> Iterator[SlackPeer]:
    with SlackPeer(bot_token=BOT_TOKEN) as running:
        yield running


@pytest.fixture
def backend() -> Iterator[SimBackend]:
    with SimBackend(jwt_secret=JWT_SECRET, issuer=ISSUER) as running:
        running.restore_control(HALTED)
        yield running


def bot_env(peer: SlackPeer, backend: SimBackend, tmp_path: Path, app_token: str) -> dict[str, str]:
    """A fresh machine's environment (none of the bot's variables) plus Socket Mode at the stand-ins."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(PREFIXES)}
    return {
        **env,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_APP_TOKEN": app_token,
        "SLACK_API_URL": peer.api_url,
        "OPSBOT_OPERATORS": OPERATOR,
        "OPSBOT_HALT_AUTHORITIES": HALT_A,
        "TRADING_API_URL": backend.url,
        "JWT_SECRET": JWT_SECRET,
        "PLATFORM_JWT_ISSUER": ISSUER,
        "OPSBOT_DATABASE_URL": f"sqlite:///{tmp_path}/opsbot.db",
    }


@pytest.fixture
def socket_bot(peer: SlackPeer, backend: SimBackend, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`opsbot run` in Socket Mode, connected to the peer's WebSocket."""
    with (tmp_path / "bot.log").open("wb") as log:  # a file, not a pipe: a full pipe would stall the bot
        proc = subprocess.Popen(
            [str(OPSBOT), "run", "--port", "0"],
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=bot_env(peer, backend, tmp_path, peer.app_token),
        )
        try:
            with contextlib.suppress(AssertionError):  # bounded; the assert below says what happened
                wait_until(lambda: peer.socket.connections > 0 or proc.poll() is not None, timeout=30)
            output = (tmp_path / "bot.log").read_text()[-3000:]
            assert peer.socket.connections > 0, f"no socket; bot exit code {proc.poll()}, output:\n{output}"
            yield proc
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_halt_status_over_the_socket_is_acked_in_time_and_answered_with_the_backend_state(
    peer: SlackPeer, backend: SimBackend, socket_bot: subprocess.Popen[bytes]
) -> None:
    ack = peer.socket_command(user=OPERATOR, command="/halt", text="status", channel=CHANNEL, timeout=3.0)
    assert ack.seconds < 3.0

    peer.wait_for(lambda _: any("Control revision" in m["text"] for m in peer.ephemerals(OPERATOR)), timeout=10)
    text = text_of(next(m for m in peer.ephemerals(OPERATOR) if "Control revision" in m["text"]))
    assert "HALTED" in text and "socket-mode drill 7731" in text and "4242" in text and "tenant:acme" in text
    assert not [m for m in peer.ephemerals() if m["user"] != OPERATOR]  # nobody else sees it
    (read,) = backend.calls("GET", "/api/trading-control")
    assert read.headers["authorization"].startswith("Bearer ") and read.headers.get("x-request-id")

    opened = peer.calls_to("apps.connections.open")
    assert opened and all(call.token == peer.app_token for call in opened)
    web_api = [call for call in peer.calls if call.method not in ("apps.connections.open", "response_url", "upload")]
    assert all(call.token == BOT_TOKEN for call in web_api), web_api


def stored_ts(tmp_path: Path, approval_id: str) -> str | None:
    with sqlite3.connect(tmp_path / "opsbot.db", timeout=5) as db:
        row = db.execute("SELECT message_ts FROM approval WHERE id = ?", (approval_id,)).fetchone()
    return None if row is None else row[0]


def test_a_click_over_the_socket_approves_a_halt(
    peer: SlackPeer, backend: SimBackend, socket_bot: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    backend.restore_control({**HALTED, "global": {**HALTED["global"], "halted": False}})
    peer.socket_command(user=OPERATOR, command="/halt", text="symbol:ACME fat-finger storm", channel=CHANNEL)
    (posted,) = peer.wait_for_call("chat.postMessage", timeout=10)
    approval_id = approval_id_of(posted)
    ts = peer.channel_messages(CHANNEL)[-1]["ts"]
    wait_until(lambda: stored_ts(tmp_path, approval_id) == ts)  # the bot keeps the ts before a click can use it

    ack = peer.socket_click(
        user=HALT_A, action_id="approve", value=approval_id, channel=CHANNEL, message_ts=ts, timeout=3.0
    )
    assert ack.seconds < 3.0 and ack.envelope.type == "interactive"
    wait_until(lambda: bool(backend.calls("POST", "/api/trading-control/halt")), timeout=10)
    (halt,) = backend.calls("POST", "/api/trading-control/halt")
    assert halt.body is not None and halt.body["scope"] == "symbol:ACME"


@pytest.mark.parametrize(
    ("token", "error"), [("xapp-1-not-this-apps", "invalid_auth"), (BOT_TOKEN, "not_allowed_token_type")]
)
def test_a_token_slack_refuses_stops_the_bot_with_one_clear_line(
    peer: SlackPeer, backend: SimBackend, tmp_path: Path, token: str, error: str
) -> None:
    done = subprocess.run(
        [str(OPSBOT), "run", "--port", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        env=bot_env(peer, backend, tmp_path, token),
    )
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    refusals = [line for line in done.stderr.splitlines() if "SLACK_APP_TOKEN" in line]
    assert len(refusals) == 1 and error in refusals[0] and "connections:write" in refusals[0], output
    assert "Traceback" not in output and token not in output
    (opened,) = peer.calls_to("apps.connections.open")
    assert opened.token == token
    assert peer.socket.connections == 0


def test_connections_open_takes_only_the_app_token(peer: SlackPeer) -> None:
    assert httpx.post(peer.api_url + "apps.connections.open", timeout=5).json() == {"ok": False, "error": "not_authed"}
    client = WebClient(base_url=peer.api_url)
    for token, error in ((BOT_TOKEN, "not_allowed_token_type"), ("xapp-1-unknown", "invalid_auth")):
        with pytest.raises(SlackApiError) as refused:
            client.apps_connections_open(app_token=token)
        assert refused.value.response["error"] == error
    url = client.apps_connections_open(app_token=peer.app_token)["url"]
    assert url.startswith("ws://127.0.0.1:") and "/link/?ticket=" in url
    with pytest.raises(SlackApiError) as wrong_type:  # and the app token calls nothing else
        WebClient(base_url=peer.api_url, token=peer.app_token).chat_postMessage(channel=CHANNEL, text="hi")
    assert wrong_type.value.response["error"] == "not_allowed_token_type"


def test_the_socket_says_hello_delivers_envelopes_and_records_acks(peer: SlackPeer) -> None:
    url = WebClient(base_url=peer.api_url).apps_connections_open(app_token=peer.app_token)["url"]
    with connect(url, open_timeout=5) as ws:
        hello = json.loads(ws.recv(timeout=5))
        assert hello["type"] == "hello" and hello["connection_info"]["app_id"] == peer.workspace.app_id
        envelope = peer.socket.deliver(
            "slash_commands", {"command": "/halt", "text": "status"}, accepts_response_payload=True
        )
        sent = json.loads(ws.recv(timeout=5))
        assert sent == {
            "envelope_id": envelope.envelope_id,
            "type": "slash_commands",
            "payload": {"command": "/halt", "text": "status"},
            "accepts_response_payload": True,
        }
        ws.send(json.dumps({"envelope_id": envelope.envelope_id, "payload": {"text": "on it"}}))
        ack = peer.socket.wait_ack(envelope, timeout=3)
        assert ack.payload == {"text": "on it"}
        late = peer.socket.deliver("events_api", {"event": {"type": "app_home_opened"}})
        assert json.loads(ws.recv(timeout=5))["retry_attempt"] == 0
        with pytest.raises(AssertionError, match="no ack"):  # an unanswered envelope fails its wait, bounded
            peer.socket.wait_ack(late, timeout=0.2)
    with pytest.raises(InvalidStatus):  # a ticket opens one connection
        connect(url, open_timeout=5)


def test_a_command_ack_payload_reaches_the_user_like_an_http_answer(peer: SlackPeer) -> None:
    url = WebClient(base_url=peer.api_url).apps_connections_open(app_token=peer.app_token)["url"]
    with connect(url, open_timeout=5) as ws:
        ws.recv(timeout=5)  # hello
        envelope = peer.socket.deliver(
            "slash_commands",
            {"response_url": peer.response_url(channel=CHANNEL, user=OPERATOR)},
            accepts_response_payload=True,
        )
        json.loads(ws.recv(timeout=5))
        ws.send(json.dumps({"envelope_id": envelope.envelope_id, "payload": {"text": "usage: /halt status"}}))
        peer.socket.wait_ack(envelope, timeout=3)
    assert [m["text"] for m in peer.ephemerals(OPERATOR)] == ["usage: /halt status"]


def test_an_unacked_event_is_redelivered_with_its_retry_attempt_and_commands_are_not(peer: SlackPeer) -> None:
    url = WebClient(base_url=peer.api_url).apps_connections_open(app_token=peer.app_token)["url"]
    with connect(url, open_timeout=5) as ws:
        ws.recv(timeout=5)  # hello
        event = peer.socket.deliver("events_api", {"event": {"type": "app_home_opened", "user": OPERATOR}})
        peer.socket.deliver("slash_commands", {"command": "/halt", "text": "status"}, accepts_response_payload=True)
        ws.recv(timeout=5), ws.recv(timeout=5)
        (again,) = peer.socket.redeliver_unacked()
        sent = json.loads(ws.recv(timeout=5))
        assert sent["envelope_id"] == again.envelope_id != event.envelope_id
        assert sent["payload"] == event.payload and (sent["retry_attempt"], sent["retry_reason"]) == (1, "timeout")
        ws.send(json.dumps({"envelope_id": again.envelope_id}))
        peer.socket.wait_ack(again, timeout=3)
        assert [e.type for e in peer.socket.unacked()] == ["slash_commands"]
        assert peer.socket.redeliver_unacked() == []


@pytest.mark.parametrize("reason", ["warning", "refresh_requested", "link_disabled"])
def test_disconnect_messages_carry_slacks_reasons(peer: SlackPeer, reason: str) -> None:
    url = WebClient(base_url=peer.api_url).apps_connections_open(app_token=peer.app_token)["url"]
    with connect(url, open_timeout=5) as ws:
        ws.recv(timeout=5)
        peer.socket.disconnect(reason)
        assert json.loads(ws.recv(timeout=5)) == {
            "type": "disconnect",
            "reason": reason,
            "debug_info": {"host": "applink-local"},
        }
    with pytest.raises(ValueError):
        peer.socket.disconnect("bored")


def test_after_a_disconnect_warning_the_bot_reconnects_and_still_answers(
    peer: SlackPeer, backend: SimBackend, socket_bot: subprocess.Popen[bytes]
) -> None:
    opened = len(peer.calls_to("apps.connections.open"))
    peer.socket.disconnect("warning", close=True)
    peer.wait_for_call("apps.connections.open", count=opened + 1, timeout=15)
    wait_until(lambda: peer.socket.connections > 0, timeout=15)
    ack = peer.socket_command(user=OPERATOR, command="/halt", text="status", channel=CHANNEL, timeout=3.0)
    assert ack.seconds < 3.0
    peer.wait_for(lambda _: any("Control revision" in m["text"] for m in peer.ephemerals(OPERATOR)), timeout=10)


def test_link_disabled_is_told_in_one_line_naming_what_to_turn_on(
    peer: SlackPeer, socket_bot: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    peer.socket.disconnect("link_disabled")
    log = tmp_path / "bot.log"
    wait_until(lambda: "link_disabled" in log.read_text(), timeout=10)
    (line,) = [ln for ln in log.read_text().splitlines() if "link_disabled" in ln]
    assert line.startswith("opsbot: Slack turned Socket Mode off") and "socket_mode_enabled: true" in line
    assert "SLACK_APP_TOKEN" in line and peer.app_token not in line and socket_bot.poll() is None


def test_an_event_lost_with_its_connection_is_redelivered_to_the_bot_and_acted_on(
    peer: SlackPeer, socket_bot: subprocess.Popen[bytes]
) -> None:
    event = {
        "token": "unused",
        "team_id": peer.team_id,
        "api_app_id": peer.workspace.app_id,
        "type": "event_callback",
        "event_id": "Ev0LOST01",
        "event_time": 1764000000,
        "event": {
            "type": "app_home_opened",
            "user": OPERATOR,
            "channel": "D0HOME",
            "tab": "home",
            "event_ts": "1764000000.000100",
        },
    }
    url = WebClient(base_url=peer.api_url).apps_connections_open(app_token=peer.app_token)["url"]
    with connect(url, open_timeout=5) as other:  # a second connection of the app, which drops the event
        other.recv(timeout=5)
        lost = peer.socket.deliver("events_api", event)
        assert json.loads(other.recv(timeout=5))["envelope_id"] == lost.envelope_id
    wait_until(lambda: peer.socket.connections == 1, timeout=5)
    (again,) = peer.socket.redeliver_unacked()
    assert peer.socket.wait_ack(again, timeout=3).envelope.retry_attempt == 1
    published = peer.wait_for_call("views.publish", where=lambda c: c.args.get("user_id") == OPERATOR, timeout=10)
    assert published and peer.workspace.home_view(OPERATOR) is not None
