"""SlackSender against a real Bolt app served over HTTP, with the Slack peer as its Web API."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from slack_bolt import Ack, App, Respond
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier

from rehearsal.slack.client import SlackSender, sign
from rehearsal.slack.peer import SlackPeer

TOKEN = "xoxb-local-test"
SECRET = "local-signing-secret"


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class BoltHarness:
    """A minimal Bolt app with /echo and an `approve` button, and what its listeners saw."""

    def __init__(self, peer: SlackPeer) -> None:
        self.commands: queue.Queue[dict[str, Any]] = queue.Queue()
        self.clicks: queue.Queue[dict[str, Any]] = queue.Queue()
        client = WebClient(token=TOKEN, base_url=peer.api_url)
        self.app = App(token=TOKEN, signing_secret=SECRET, client=client)
        self.app.command("/echo")(self._echo)
        self.app.action("approve")(self._approve)

    def _echo(self, ack: Ack, command: dict[str, Any], respond: Respond) -> None:
        ack(f"echo: {command['text']}")
        self.commands.put(command)
        respond(text=f"later: {command['text']}")

    def _approve(self, ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        ack()
        self.clicks.put({"body": body, "action": action})
        respond(text=f"approved by <@{body['user']['id']}>", replace_original=True)


@pytest.fixture
def peer() -> Iterator[SlackPeer]:
    with SlackPeer(bot_token=TOKEN) as running:
        yield running


@pytest.fixture
def harness(peer: SlackPeer) -> BoltHarness:
    return BoltHarness(peer)


@pytest.fixture
def sender(peer: SlackPeer, harness: BoltHarness) -> Iterator[SlackSender]:
    server = make_server(
        "127.0.0.1",
        0,
        SlackRequestHandler(harness.app),
        server_class=_ThreadingWSGIServer,
        handler_class=_QuietHandler,
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        bot_url = f"http://127.0.0.1:{server.server_port}"
        with SlackSender(bot_url=bot_url, signing_secret=SECRET, peer=peer) as running:
            yield running
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# The worked example in Slack's "Verifying requests from Slack" (its secret is Slack's published sample).
SLACK_EXAMPLE_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_EXAMPLE_TS = 1531420618
SLACK_EXAMPLE_BODY = (
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    "&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    "&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    "&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_EXAMPLE_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def test_sign_gives_slacks_documented_signature_and_the_verifier_accepts_it() -> None:
    assert sign(SLACK_EXAMPLE_SECRET, SLACK_EXAMPLE_BODY, SLACK_EXAMPLE_TS) == SLACK_EXAMPLE_SIGNATURE
    body, ts = "token=x&text=hello+world", int(time.time())
    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid(body, str(ts), sign(SECRET, body, ts))
    assert not verifier.is_valid(body.replace("hello", "hullo"), str(ts), sign(SECRET, body, ts))
    assert not verifier.is_valid(body, str(ts), sign("wrong-secret", body, ts))


def test_command_is_acked_and_respond_reaches_the_peer(
    sender: SlackSender, harness: BoltHarness, peer: SlackPeer
) -> None:
    answer = sender.command(user="U0ALICE", command="/echo", text="halt status")
    assert answer.status_code == 200
    assert "echo: halt status" in answer.text
    command = harness.commands.get(timeout=5)
    assert command["user_id"] == "U0ALICE" and command["channel_id"] == "C0INCIDENT"
    assert command["text"] == "halt status"
    assert command["response_url"].startswith(peer.base_url + "/response/")
    assert command["trigger_id"] and command["team_id"] == "T0LOCAL00"
    peer.wait_for_call("response_url")
    assert [m["text"] for m in peer.ephemerals("U0ALICE")] == ["later: halt status"]


def test_command_body_has_slacks_fields_in_form_encoding(sender: SlackSender) -> None:
    sender.command(user="U0ALICE", command="/echo", text="a b&c", user_name="alice")
    fields = {k: v[0] for k, v in parse_qs(sender.last_body, keep_blank_values=True).items()}
    expected = {
        "token",
        "team_id",
        "team_domain",
        "channel_id",
        "channel_name",
        "user_id",
        "user_name",
        "command",
        "text",
        "api_app_id",
        "response_url",
        "trigger_id",
    }
    assert expected <= fields.keys()
    assert (fields["text"], fields["user_name"], fields["command"]) == ("a b&c", "alice", "/echo")


def test_tampered_signature_is_refused(sender: SlackSender, harness: BoltHarness) -> None:
    sender.command(user="U0ALICE", command="/echo", text="x")
    tampered = sender.last_body.replace("text=x", "text=y")
    ts = int(time.time())
    original_signature = sign(SECRET, sender.last_body, ts)
    assert sender.post_raw(tampered, timestamp=ts, signature=original_signature).status_code == 401
    assert sender.post_raw(sender.last_body, signature="v0=" + "0" * 64).status_code == 401
    wrong_secret = sign("wrong-secret", sender.last_body, ts)
    assert sender.post_raw(sender.last_body, timestamp=ts, signature=wrong_secret).status_code == 401


def test_stale_timestamp_is_refused(sender: SlackSender, harness: BoltHarness) -> None:
    sender.command(user="U0ALICE", command="/echo", text="x")
    # Correctly signed, but older than Slack's five-minute window.
    assert sender.post_raw(sender.last_body, timestamp=int(time.time()) - 6 * 60).status_code == 401
    stale = SlackSender(bot_url=sender.events_url, signing_secret=SECRET, clock=lambda: time.time() - 301)
    with stale:
        assert stale.command(user="U0ALICE", command="/echo", text="x").status_code == 401
    harness.commands.get(timeout=5)
    assert harness.commands.empty()  # only the first, fresh command reached the listener


def test_click_reaches_action_handler_and_replaces_message(
    sender: SlackSender, harness: BoltHarness, peer: SlackPeer
) -> None:
    button = {
        "type": "button",
        "action_id": "approve",
        "value": "apr_123",
        "text": {"type": "plain_text", "text": "Approve"},
    }
    blocks = [{"type": "actions", "block_id": "approval", "elements": [button]}]
    posted = WebClient(token=TOKEN, base_url=peer.api_url).chat_postMessage(
        channel="C0INCIDENT", text="approve?", blocks=blocks
    )
    answer = sender.click(
        user="U0BOB", action_id="approve", value="apr_123", channel="C0INCIDENT", message_ts=posted["ts"]
    )
    assert answer.status_code == 200
    seen = harness.clicks.get(timeout=5)
    assert seen["action"]["value"] == "apr_123" and seen["action"]["block_id"] == "approval"
    assert seen["action"]["text"]["text"] == "Approve"
    assert seen["body"]["user"]["id"] == "U0BOB"
    assert seen["body"]["container"]["message_ts"] == posted["ts"]
    assert seen["body"]["message"]["blocks"] == blocks
    peer.wait_for_call("response_url")
    assert peer.channel_messages("C0INCIDENT")[0]["text"] == "approved by <@U0BOB>"


def test_click_on_an_unknown_action_is_404(sender: SlackSender) -> None:
    answer = sender.click(user="U0BOB", action_id="nope", value="v", channel="C0INCIDENT", message_ts="1.01")
    assert answer.status_code == 404
