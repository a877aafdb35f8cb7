"""The bot's Slack calls and the Slack stand-in's answers, checked against Slack's published app
manifest schema and Web API description (pinned copies under tests/support/contracts/)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # types-PyYAML is not installed here
from jsonschema import Draft7Validator
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from rehearsal.sim.stack import Stack
from rehearsal.slack import peer as slack_peer
from rehearsal.slack.calls import ApiCall
from rehearsal.slack.peer import SlackPeer
from rehearsal.slack.state import Workspace
from tests.support.common import HALT_A, OPERATOR, click, request_halt, wait_until
from tests.support.contracts.slack_web_api import answer_problems, request_problems
from tests.support.monitoring import FakePrometheus, open_window, watcher

ROOT = Path(__file__).resolve().parents[2]
MANIFEST_SCHEMA = ROOT / "tests" / "support" / "contracts" / "slack_manifest" / "manifest.schema.1.0.0.json"
TOKEN = "xoxb-contract"


def manifest_errors(doc: dict[str, Any]) -> list[str]:
    validator = Draft7Validator(json.loads(MANIFEST_SCHEMA.read_text(encoding="utf-8")))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def problems(calls: list[ApiCall]) -> list[str]:
    checked = [c for c in calls if c.answer is not None and c.method != "apps.connections.open"]
    assert checked, "no Web API calls were recorded"
    return [p for c in checked for p in request_problems(c.method, c.args) + answer_problems(c.method, c.answer or {})]


def test_the_manifest_validates_against_slacks_schema() -> None:
    doc = yaml.safe_load((ROOT / "manifest.yaml").read_text(encoding="utf-8"))
    assert manifest_errors(doc) == []


def test_a_manifest_slack_would_refuse_is_caught() -> None:
    doc = yaml.safe_load((ROOT / "manifest.yaml").read_text(encoding="utf-8"))
    doc["features"]["slash_commands"][0]["command"] = "halt"  # no leading slash
    doc["oauth_config"]["scopes"]["bot"] = "chat:write"  # not a list
    found = manifest_errors(doc)
    assert any("slash_commands/0/command" in p for p in found) and any("scopes/bot" in p for p in found), found


def test_the_bots_calls_and_the_peers_answers_in_a_halt_match_the_web_api(stack: Stack) -> None:
    approval_id, posted = request_halt(stack)
    click(stack, user=HALT_A, approval_id=approval_id, posted=posted)
    wait_until(lambda: len(stack.peer.calls_to("chat.update")) >= 1, timeout=10)
    stack.sender.event({"type": "app_home_opened", "user": OPERATOR, "channel": "D0HOME", "tab": "home"})
    stack.peer.wait_for_call("views.publish", where=lambda c: c.args.get("user_id") == OPERATOR, timeout=10)
    methods = {c.method for c in stack.peer.calls}
    assert {"chat.postMessage", "chat.update", "views.publish"} <= methods
    assert problems(stack.peer.calls) == []


def test_an_alert_with_its_chart_and_a_join_match_the_web_api(mon_stack: Stack, fake_prom: FakePrometheus) -> None:
    mon_stack.peer.workspace.channels.set_member("C0INCIDENT", False)
    open_window(mon_stack)
    fake_prom.values = {"trading_auth_failures_total": 14.0}
    watcher(mon_stack).tick()
    methods = {c.method for c in mon_stack.peer.calls}
    assert {"conversations.join", "files.getUploadURLExternal", "files.completeUploadExternal"} <= methods
    assert problems(mon_stack.peer.calls) == []


def test_the_peers_refusals_have_slacks_error_shape() -> None:
    with SlackPeer(bot_token=TOKEN) as peer:
        client = WebClient(token=TOKEN, base_url=peer.api_url, retry_handlers=[])
        attempts: list[Callable[[], object]] = [
            lambda: client.chat_postMessage(channel="C0NOSUCH", text="x"),
            lambda: client.chat_postMessage(channel="C0INCIDENT", text="x", blocks=[{"type": "table"}]),
            lambda: client.chat_postMessage(channel="C0INCIDENT", text="x" * 40_001),
            lambda: client.users_info(user="U0ALICE"),
            lambda: client.views_publish(user_id="U1", view={"type": "home", "blocks": []}, hash="stale"),
            lambda: client.files_upload_v2(channel="C0ANNOUNCE", content=b"x", filename="a.png"),
        ]
        for attempt in attempts:
            with pytest.raises(SlackApiError):
                attempt()
        refused = [c for c in peer.calls if c.answer is not None and c.answer.get("ok") is False]
        assert len(refused) == len(attempts)
        assert problems(refused) == []


def test_a_stand_in_that_drifts_from_slack_fails_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    def drifted(workspace: Workspace, args: dict[str, Any]) -> dict[str, Any]:
        answer = Workspace.post_message(workspace, args)
        return {**answer, "ts": float(answer["ts"]), "message_id": "M1"}  # a number, and a field Slack never sends

    monkeypatch.setitem(slack_peer._METHODS, "chat.postMessage", drifted)
    with SlackPeer(bot_token=TOKEN) as peer:
        WebClient(token=TOKEN, base_url=peer.api_url).chat_postMessage(channel="C0INCIDENT", text="x")
        found = problems(peer.calls)
    assert any("ts" in p and "not of type" in p for p in found), found
    assert any("message_id" in p for p in found), found
    assert request_problems("chat.postMessage", {"chanel": "C0INCIDENT", "text": "x"}) == [
        "chat.postMessage: unknown argument chanel",
        "chat.postMessage: missing channel",
    ]
