"""The App Home in the local workspace: opened from the page (app_home_opened), refreshed after actions by
the workspace's monitor, and its Approve button working, over the JSON API and in a real browser."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import text_of
from tests.test_workspace_browser import shot
from tests.workspace_support import HALT_A, HALT_B, OPERATOR, Running, chromium, eventually, running_workspace


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with running_workspace(tmp_path_factory.mktemp("workspace-home"), use_cosmos=False) as running:
        yield running


def home_text(ws: Running, user: str) -> str:
    home = ws.state(user)["home"]
    return text_of({"blocks": home["blocks"]}) if home else ""


def test_the_home_over_the_api(ws: Running) -> None:
    assert ws.post("/api/home", {"user": HALT_B}).status_code == 200
    eventually(lambda: "*Cutover:* *1 of 5" in home_text(ws, HALT_B), what="the published home")
    ws.command(OPERATOR, "/halt tenant:acme noisy tenant after the cutover")
    # Refreshed by the workspace's monitor after the action, without opening it again.
    eventually(lambda: "Approvals waiting for you (1)" in home_text(ws, HALT_B), what="the refreshed home")
    home = ws.state(HALT_B)["home"]
    value = next(e["value"] for b in home["blocks"] if b["type"] == "actions" for e in b["elements"]
                 if e["action_id"] == "home.approve")
    assert ws.post("/api/home-click", {"user": HALT_B, "action_id": "home.approve", "value": value}).status_code == 200
    eventually(lambda: "is now *executed*" in home_text(ws, HALT_B), what="the outcome on the home")
    assert "tenant:acme" in str(ws.session.world.stack.backend.control()["scopes"])
    refused = ws.post("/api/home-click", {"user": HALT_A, "action_id": "home.approve", "value": value})
    assert refused.status_code == 400 and "no such button" in refused.text


def test_the_home_in_the_browser(ws: Running, tmp_path: Path) -> None:
    with chromium(tmp_path / "profile") as browser:
        from playwright.sync_api import expect

        page: Any = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(ws.url + f"/?user={HALT_A}")
        ws.command(OPERATOR, "/halt symbol:ACME fat finger on the open")
        page.locator("#home-tab").click()
        home = page.locator("#home")
        expect(home).to_contain_text("Trading ops: release and incident runbook", timeout=15_000)
        expect(home).to_contain_text("Halt trading: symbol:ACME", timeout=15_000)
        expect(page.locator("#composer-input")).to_be_hidden()
        home.get_by_role("button", name="Approve").first.click()
        page.locator("#confirm-yes").click()
        expect(home).to_contain_text("is now executed", timeout=15_000)
        shot(page, "app-home")
        page.locator("#channel-name").click()
        expect(page.locator("#messages")).to_contain_text("fat finger on the open")
        assert not errors, f"the page threw: {errors}"

