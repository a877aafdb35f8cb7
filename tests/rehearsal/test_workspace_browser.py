"""The local workspace in a real browser: Debian's Chromium, headless and off the network, via Playwright.

Each flow saves a screenshot to artifacts/screenshots/. Without /usr/bin/chromium (make test installs
it with apt when it runs as root) or Playwright, these tests skip locally and fail in CI.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.workspace import Running, chromium, open_page, running_workspace

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
SLOW_MS = 90_000  # a rollback against a backend that takes 1.5 s per request


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with running_workspace(tmp_path_factory.mktemp("workspace")) as running:
        yield running


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as context:
        yield context


@pytest.fixture
def page(browser: Any, ws: Running) -> Iterator[Any]:
    with open_page(browser, ws.url + "/?user=UOPERATOR") as opened:
        yield opened


def send(page: Any, text: str) -> None:
    page.fill("#composer-input", text)
    page.press("#composer-input", "Enter")
    _expect(page.locator("#composer-input")).to_have_value("")  # sent (the page's CSP forbids string eval)


def act_as(page: Any, user: str) -> None:
    page.select_option("#user", user)


def approve(message: Any, page: Any, *, screenshot: str | None = None, title: str | None = None) -> None:
    """Approve, through the button's confirm dialog, as Slack asks before the click is sent.

    With `title` (the dialog's question), the dialog must say what the click does and offer a danger "Approve"."""
    message.get_by_role("button", name="Approve").click()
    dialog = page.locator("#confirm")
    _expect(dialog).to_be_visible()
    _expect(page.locator("#confirm-title")).not_to_have_text("Are you sure?")
    if title:
        _expect(page.locator("#confirm-title")).to_have_text(title)
        _expect(page.locator("#confirm-text")).to_have_text(re.compile(r"^Approving .* Recorded in the audit log\.$"))
        _expect(page.locator("#confirm-yes")).to_have_text("Approve")
        _expect(page.locator("#confirm-yes")).to_have_class(re.compile(r"\bdanger\b"))
        _expect(page.locator("#confirm-no")).to_have_text("Cancel")
    if screenshot:
        shot(page, screenshot)
    page.locator("#confirm-yes").click()
    _expect(dialog).to_be_hidden()


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def _expect(locator: Any) -> Any:
    from playwright.sync_api import expect

    return expect(locator)


def test_a_global_halt_requested_by_the_operator_and_approved_by_a_halt_authority(page: Any, ws: Running) -> None:
    send(page, "/halt global fat-finger storm on the open")
    request = page.locator(".msg:not(.ephemeral)", has_text="fat-finger storm on the open")
    _expect(request).to_contain_text("Halt trading: global")
    _expect(request.get_by_role("button", name="Approve")).to_be_visible()
    assert_rendered_as_a_slack_card(request)
    act_as(page, "UHALTA")
    _expect(page.locator("#roles")).to_contain_text("halt authority")
    approve(request, page, screenshot="halt-confirm-dialog", title="Halt all trading?")
    _expect(request).to_contain_text("Approved by @hana.halt", timeout=15_000)
    _expect(request.locator("hr.bk-divider")).to_have_count(1)  # the outcome sits under a divider
    _expect(request.locator("hr.bk-divider + .bk-section")).to_contain_text("Approved by @hana.halt")
    _expect(request).to_contain_text("all trading (global) is halted (revision")
    _expect(request.get_by_role("button", name="Approve")).to_have_count(0)
    _expect(page.locator("#world")).to_contain_text("GLOBAL HALT")
    assert ws.session.world.stack.backend.control()["global"]["halted"]
    shot(page, "halt-approved")


def assert_rendered_as_a_slack_card(request: Any) -> None:
    """The approval card's Block Kit as a person sees it: header, fields, context, styled buttons."""
    _expect(request.locator(".bk-header")).to_have_text("Halt trading: global")
    fields = request.locator(".bk-fields .bk-field")
    assert fields.count() >= 4, fields.all_inner_texts()
    _expect(fields.first).to_contain_text("Requested by")
    _expect(fields.first).to_contain_text("@olivia.operator")
    _expect(request.locator(".bk-fields")).to_contain_text("Expires")
    _expect(request.locator(".bk-context")).to_contain_text("Approval apr_")
    _expect(request.get_by_role("button", name="Approve")).to_have_class(re.compile(r"\bbk-button\b.*\bprimary\b"))
    _expect(request.get_by_role("button", name="Reject")).to_have_class(re.compile(r"\bbk-button\b.*\bdanger\b"))
    styles = request.locator(".bk-actions button").evaluate_all(
        "buttons => buttons.map(b => getComputedStyle(b).backgroundColor)"
    )
    assert len(set(styles)) == 2, styles  # primary and danger look different


def test_self_approval_is_refused_in_the_page(page: Any) -> None:
    send(page, "/halt tenant:acme approving my own request")
    request = page.locator(".msg:not(.ephemeral)", has_text="approving my own request")
    approve(request, page)
    refusal = page.locator(".msg.ephemeral", has_text="you requested this action")
    _expect(refusal).to_be_visible(timeout=15_000)
    _expect(refusal).to_contain_text("Only visible to you")
    _expect(request.get_by_role("button", name="Approve")).to_be_visible()  # still waiting for someone else
    shot(page, "self-approval-refused")
    act_as(page, "UHALTB")
    _expect(page.locator(".msg", has_text="you requested this action")).to_have_count(0)


def test_typed_text_is_shown_as_text_and_the_usage_hints_appear(page: Any) -> None:
    send(page, "/halt tenant:xss <img src=x onerror=window.pwned=1> *loud* reason")
    request = page.locator(".msg:not(.ephemeral)", has_text="onerror=window.pwned=1")
    _expect(request).to_contain_text("<img src=x onerror=window.pwned=1>")
    assert page.locator(".messages img").count() == 0
    assert page.evaluate("() => window.pwned") is None
    page.fill("#composer-input", "/ro")
    hints = page.locator("#hints")
    _expect(hints).to_contain_text("/rollback")
    _expect(hints).to_contain_text("--trigger auth|tenant|controls|config|recovery")
    shot(page, "usage-hints")


def test_a_gate_with_a_failing_ci_check_is_no_go(page: Any) -> None:
    drill = page.locator("label[data-drill='ci-check-failing'] input")
    drill.check()
    _expect(drill).to_be_checked()
    send(page, "/gate")
    card = page.locator(".msg:not(.ephemeral)", has_text="Release go/no-go: backend").last
    _expect(card).to_contain_text("NO-GO", timeout=30_000)
    _expect(card).to_contain_text("failed (go-pnpm-smoke")
    item = card.locator(".bk-text", has_text="pnpm smoke:release passes")
    _expect(item).to_contain_text("FAIL")
    _expect(item).to_contain_text("'pnpm smoke:release' concluded failure")
    card.locator(".bk-header").evaluate("header => header.scrollIntoView({block: 'start'})")  # the verdict
    shot(page, "gate-no-go")
    drill.uncheck()
    _expect(drill).not_to_be_checked()


def test_a_rollback_drill_runs_to_its_end(page: Any, ws: Running) -> None:
    page.select_option("#scenario", "rollback-under-load")
    page.click("#scenario-start")
    _expect(page.locator("#scenario-status")).to_contain_text("Rollback under load: all steps applied")
    _expect(page.locator("label[data-drill='backend-slow'] input")).to_be_checked()
    send(page, "/rollback backend overloaded since the release --trigger recovery")
    request = page.locator(".msg:not(.ephemeral)", has_text="backend overloaded since the release").first
    _expect(request).to_contain_text("Rollback production:", timeout=30_000)
    act_as(page, "UOWNER")
    approve(request, page)
    done = page.locator(".msg", has_text="Closed; the cutover freeze is lifted.")
    _expect(done.first).to_be_visible(timeout=SLOW_MS)
    _expect(page.locator("#world")).to_contain_text("Backend 9f8e7d6a1b2c")
    done.first.scroll_into_view_if_needed()
    shot(page, "rollback-completed")
