"""Shared by the local-workspace tests: a running workspace (session + page server) and its JSON API."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from rehearsal.sim.stack import HttpServer
from rehearsal.workspace.server import WorkspaceApp
from rehearsal.workspace.session import Session
from rehearsal.workspace.state import StatePaths, paths_for
from tests.support.common import text_of

OPERATOR, HALT_A, HALT_B, OWNER, ADMIN = "UOPERATOR", "UHALTA", "UHALTB", "UOWNER", "UADMIN"
ADMIN_2 = "UADMIN2"
T = TypeVar("T")


@dataclass
class Running:
    session: Session
    url: str
    paths: StatePaths

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(self.url + path, json=body, timeout=15)

    def command(self, user: str, text: str) -> None:
        response = self.post("/api/command", {"user": user, "text": text})
        assert response.status_code == 200, response.text

    def click(self, user: str, message: dict[str, Any], action_id: str = "approve") -> httpx.Response:
        value = button(message, action_id)["value"]
        return self.post(
            "/api/click", {"user": user, "action_id": action_id, "value": value, "message_ts": message["ts"]}
        )

    def drill(self, name: str, on: bool) -> None:
        response = self.post("/api/drill", {"name": name, "on": on})
        assert response.status_code == 200, response.text

    def state(self, user: str = OPERATOR) -> dict[str, Any]:
        response = httpx.get(self.url + "/api/state", params={"user": user}, timeout=15)
        assert response.status_code == 200, response.text
        doc: dict[str, Any] = response.json()
        return doc

    def messages(self, user: str = OPERATOR) -> list[dict[str, Any]]:
        return list(self.state(user)["messages"])

    def find(
        self, user: str, needle: str, *, ephemeral: bool | None = None, timeout: float = 15, top_level: bool = False
    ) -> dict[str, Any]:
        """The newest message `user` sees whose text (or block text) contains `needle`; `top_level`: not
        a reply in a thread (outcomes are told in the card's thread as well as on the card)."""

        def found() -> dict[str, Any] | None:
            for message in reversed(self.messages(user)):
                if top_level and message.get("thread_ts"):
                    continue
                if needle in everything(message) and (ephemeral is None or message["ephemeral"] == ephemeral):
                    return dict(message)
            return None

        return eventually(found, timeout=timeout, what=f"a message with {needle!r} for {user}")


@contextmanager
def running_workspace(
    folder: Path, *, use_cosmos: bool = True, use_prometheus: bool = True, soak_seconds: float = 0
) -> Iterator[Running]:
    paths = paths_for(f"sqlite:///{folder}/opsbot.db")
    session = Session(paths, use_cosmos=use_cosmos, use_prometheus=use_prometheus, soak_seconds=soak_seconds).start()
    server = HttpServer(WorkspaceApp(session)).start()
    try:
        yield Running(session, server.url, paths)
    finally:
        server.stop()
        session.stop()


def need_cosmos(ws: Running) -> None:
    """Skip (fail in CI) when the Cosmos-protocol server is not running in this workspace."""
    if ws.session.world.cosmos is None:
        why = ws.session.world.cosmos_problem
        if os.environ.get("CI"):
            pytest.fail(f"CI requires the Cosmos-protocol server: {why}")
        pytest.skip(why)


def everything(message: dict[str, Any]) -> str:
    """A message's text and every text object in its blocks."""
    return text_of(message)


def button(message: dict[str, Any], action_id: str) -> dict[str, Any]:
    for block in message.get("blocks") or []:
        for element in block.get("elements") or []:
            if element.get("action_id") == action_id:
                return dict(element)
    raise AssertionError(f"no {action_id} button in {message}")


def eventually(probe: Callable[[], T | None], *, timeout: float = 15, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


CHROMIUM = Path("/usr/bin/chromium")
# Headless, and nothing that phones home: no QUIC, sync, component updates or background fetches.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _unavailable(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI requires the browser tests: {why}")
    pytest.skip(why)


@contextmanager
def chromium(profile: Path) -> Iterator[Any]:
    """Debian's Chromium through Playwright, headless and off the network; skips locally, fails in CI."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright for Python is not installed (pip install playwright)")
    if not CHROMIUM.is_file():
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1440, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


@contextmanager
def open_page(browser: Any, url: str) -> Iterator[Any]:
    """A page of the workspace as `url`'s user; fails the test if the page threw any error."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.locator("#user option").first.wait_for(state="attached")
    yield page
    page.close()
    assert not errors, f"the page threw: {errors}"


GATE_S = 30  # the gate's deadline is 10 s in the workspace; the card fills in within it
# What the gate and the first stage need a person's word for (the rest the probes show).
ATTESTED = (
    "go-kill-switch-maintenance",
    "go-mobile-interventions",
    "go-no-legacy-data",
    "backend-deploy-platform-cosmos",
    "backend-tenant-scoped-reads",
)


def advance_cutover(ws: Running, reason: str = "backend validated in rehearsal") -> dict[str, Any]:
    """Attest, run a GO gate, and have one admin request `/cutover advance` and the other approve it
    (needs the Cosmos-protocol server); the approved request message."""
    need_cosmos(ws)
    for check in ATTESTED:
        ws.command(ADMIN, f"/gate attest {check} rehearsal evidence for {check}")
        ws.find(ADMIN, f"<@UADMIN> attested `{check}`", ephemeral=False)
    ws.command(OPERATOR, "/gate")
    ws.find(OPERATOR, "Release go/no-go: GO for backend", ephemeral=False, timeout=GATE_S)
    ws.command(ADMIN, f"/cutover advance {reason}")
    request = ws.find(ADMIN_2, reason, ephemeral=False)
    assert ws.click(ADMIN_2, request).status_code == 200
    return ws.find(ADMIN_2, "Approved by <@UADMIN2>")


SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"  # what the browser tests saw


def send(page: Any, text: str) -> None:
    page.fill("#composer-input", text)
    page.press("#composer-input", "Enter")
    expect(page.locator("#composer-input")).to_have_value("")  # sent (the page's CSP forbids string eval)


def act_as(page: Any, user: str) -> None:
    page.select_option("#user", user)


def approve(message: Any, page: Any, *, screenshot: str | None = None, title: str | None = None) -> None:
    """Approve, through the button's confirm dialog, as Slack asks before the click is sent.

    With `title` (the dialog's question), the dialog must say what the click does and offer a danger "Approve"."""
    message.get_by_role("button", name="Approve").click()
    dialog = page.locator("#confirm")
    expect(dialog).to_be_visible()
    expect(page.locator("#confirm-title")).not_to_have_text("Are you sure?")
    if title:
        expect(page.locator("#confirm-title")).to_have_text(title)
        expect(page.locator("#confirm-text")).to_have_text(re.compile(r"^Approving .* Recorded in the audit log\.$"))
        expect(page.locator("#confirm-yes")).to_have_text("Approve")
        expect(page.locator("#confirm-yes")).to_have_class(re.compile(r"\bdanger\b"))
        expect(page.locator("#confirm-no")).to_have_text("Cancel")
    if screenshot:
        shot(page, screenshot)
    page.locator("#confirm-yes").click()
    expect(dialog).to_be_hidden()


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect

    return expect(locator)
