"""manifest.yaml is a Slack app manifest for the bot's edges (its HTTP surface and slash commands)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

MANIFEST = Path(__file__).resolve().parents[2] / "manifest.yaml"
EVENTS_URL = "https://opsbot.example.com/slack/events"

# Words each command's usage hint must show, from the command grammar.
USAGE_WORDS = {
    "/halt": ["status", "global", "tenant:", "strategy:", "symbol:", "--now", "resume"],
    "/rollback": ["--trigger", "auth", "tenant", "controls", "config", "recovery", "--to", "status"],
    "/gate": ["attest", "history"],
    "/cutover": ["status", "advance"],
}


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    data = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_metadata_and_identity(manifest: dict[str, Any]) -> None:
    assert manifest["_metadata"] == {"major_version": 1, "minor_version": 1}
    assert manifest["display_information"]["name"] == "trading-opsbot"
    assert 0 < len(manifest["display_information"]["description"]) <= 140
    assert manifest["features"]["bot_user"]["display_name"] == "opsbot"


def test_slash_commands_point_at_the_events_url(manifest: dict[str, Any]) -> None:
    commands = {c["command"]: c for c in manifest["features"]["slash_commands"]}
    assert set(commands) == set(USAGE_WORDS)
    for name, command in commands.items():
        assert command["url"] == EVENTS_URL, name
        assert 0 < len(command["description"]) <= 100, name
        hint = command["usage_hint"]
        assert 0 < len(hint) <= 100, f"{name} usage_hint is {len(hint)} chars"
        missing = [word for word in USAGE_WORDS[name] if word not in hint]
        assert not missing, f"{name} usage_hint lacks {missing}"
        assert command["should_escape"] is False, name


def test_interactivity_and_events_on_the_same_url(manifest: dict[str, Any]) -> None:
    settings = manifest["settings"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["interactivity"]["request_url"] == EVENTS_URL
    assert settings["event_subscriptions"]["request_url"] == EVENTS_URL
    assert "app_home_opened" in settings["event_subscriptions"]["bot_events"]
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True


def test_scopes(manifest: dict[str, Any]) -> None:
    scopes = manifest["oauth_config"]["scopes"]["bot"]
    assert {"commands", "chat:write"} <= set(scopes)
    assert len(scopes) == len(set(scopes))


def test_socket_mode_is_an_explicit_switch(manifest: dict[str, Any]) -> None:
    settings = manifest["settings"]
    assert "socket_mode_enabled" in settings
    assert isinstance(settings["socket_mode_enabled"], bool)
    assert settings["org_deploy_enabled"] is False
    assert settings["token_rotation_enabled"] is False
