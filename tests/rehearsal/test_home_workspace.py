"""The App Home in the local workspace: opened from the page (app_home_opened), refreshed after actions by
the workspace's monitor, and its Approve button working, over the JSON API and in a real browser."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.common import text_of
from tests.support.workspace import HALT_A, HALT_B, OPERATOR, Running, chromium, eventually, running_workspace, shot


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
    value = next(
        e["value"]
        for b in home["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == "home.approve"
    )
    assert ws.post("/api/home-click", {"user": HALT_B, "action_id": "home.approve", "value": value}).status_code == 200
    eventually(lambda: "is now *executed*" in home_text(ws, HALT_B), what="the outcome on the home")
    deadline = time.monotonic() + 6  # the operator's 6 s: the refreshes after the action keep the outcome
    while time.monotonic() < deadline:
        assert "is now *executed*" in home_text(ws, HALT_B)
        time.sleep(0.3)
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
        expect(home).to_contain_text("Reason: fat finger on the open")  # not blind: what and why
        expect(home).to_contain_text(re.compile(r"Approval apr_\S+ · request \S+"))
        expect(page.locator("#composer-input")).to_be_hidden()
        shot(page, "app-home-pending")
        home.get_by_role("button", name="Approve").first.click()
        page.locator("#confirm-yes").click()
        outcome = home.locator(".bk-section").nth(0)  # the first section under the header: the top
        expect(outcome).to_contain_text("Your decision", timeout=15_000)
        expect(outcome).to_contain_text("Halt trading: symbol:ACME")
        expect(outcome).to_contain_text("is now executed")
        page.wait_for_timeout(6_000)  # as the operator did: the Home polled for 6 s after the click
        expect(outcome).to_contain_text("is now executed")
        expect(home).not_to_contain_text("Approvals waiting for you (")
        shot(page, "app-home")
        page.locator("#channel-name").click()
        expect(page.locator("#messages")).to_contain_text("fat finger on the open")
        assert not errors, f"the page threw: {errors}"
