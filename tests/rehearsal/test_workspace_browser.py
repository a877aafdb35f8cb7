"""The local workspace in a real browser: Debian's Chromium, headless and off the network, via Playwright.

Each flow saves a screenshot to artifacts/screenshots/. Without /usr/bin/chromium (make test installs
it with apt when it runs as root) or Playwright, these tests skip locally and fail in CI.
"""

from __future__ import annotations

import re
from typing import Any

from tests.support.workspace import Running, act_as, approve, expect, send, shot

SLOW_MS = 90_000  # a rollback against a backend that takes 1.5 s per request


def test_a_global_halt_requested_by_the_operator_and_approved_by_a_halt_authority(page: Any, ws: Running) -> None:
    send(page, "/halt global fat-finger storm on the open")
    request = page.locator(".msg:not(.ephemeral)", has_text="fat-finger storm on the open")
    expect(request).to_contain_text("Halt trading: global")
    expect(request.get_by_role("button", name="Approve")).to_be_visible()
    assert_rendered_as_a_slack_card(request)
    act_as(page, "UHALTA")
    expect(page.locator("#roles")).to_contain_text("halt authority")
    approve(request, page, screenshot="halt-confirm-dialog", title="Halt all trading?")
    expect(request).to_contain_text("Approved by @hana.halt", timeout=15_000)
    expect(request.locator("hr.bk-divider")).to_have_count(1)  # the outcome sits under a divider
    expect(request.locator("hr.bk-divider + .bk-section")).to_contain_text("Approved by @hana.halt")
    expect(request).to_contain_text("all trading (global) is halted (revision")
    expect(request.get_by_role("button", name="Approve")).to_have_count(0)
    expect(page.locator("#world")).to_contain_text("GLOBAL HALT")
    assert ws.session.world.stack.backend.control()["global"]["halted"]
    shot(page, "halt-approved")


def assert_rendered_as_a_slack_card(request: Any) -> None:
    """The approval card's Block Kit as a person sees it: header, fields, context, styled buttons."""
    expect(request.locator(".bk-header")).to_have_text("Halt trading: global")
    fields = request.locator(".bk-fields .bk-field")
    assert fields.count() >= 4, fields.all_inner_texts()
    expect(fields.first).to_contain_text("Requested by")
    expect(fields.first).to_contain_text("@olivia.operator")
    expect(request.locator(".bk-fields")).to_contain_text("Expires")
    expect(request.locator(".bk-context")).to_contain_text("Approval apr_")
    expect(request.get_by_role("button", name="Approve")).to_have_class(re.compile(r"\bbk-button\b.*\bprimary\b"))
    expect(request.get_by_role("button", name="Reject")).to_have_class(re.compile(r"\bbk-button\b.*\bdanger\b"))
    styles = request.locator(".bk-actions button").evaluate_all(
        "buttons => buttons.map(b => getComputedStyle(b).backgroundColor)"
    )
    assert len(set(styles)) == 2, styles  # primary and danger look different


def test_self_approval_is_refused_in_the_page(page: Any) -> None:
    send(page, "/halt tenant:acme approving my own request")
    request = page.locator(".msg:not(.ephemeral)", has_text="approving my own request")
    approve(request, page)
    refusal = page.locator(".msg.ephemeral", has_text="you requested this action")
    expect(refusal).to_be_visible(timeout=15_000)
    expect(refusal).to_contain_text("Only visible to you")
    expect(request.get_by_role("button", name="Approve")).to_be_visible()  # still waiting for someone else
    shot(page, "self-approval-refused")
    act_as(page, "UHALTB")
    expect(page.locator(".msg", has_text="you requested this action")).to_have_count(0)


def test_typed_text_is_shown_as_text_and_the_usage_hints_appear(page: Any) -> None:
    send(page, "/halt tenant:xss <img src=x onerror=window.pwned=1> *loud* reason")
    request = page.locator(".msg:not(.ephemeral)", has_text="onerror=window.pwned=1")
    expect(request).to_contain_text("<img src=x onerror=window.pwned=1>")
    assert page.locator(".messages img").count() == 0
    assert page.evaluate("() => window.pwned") is None
    page.fill("#composer-input", "/ro")
    hints = page.locator("#hints")
    expect(hints).to_contain_text("/rollback")
    expect(hints).to_contain_text("--trigger auth|tenant|controls|config|recovery")
    shot(page, "usage-hints")


def test_a_gate_with_a_failing_ci_check_is_no_go(page: Any) -> None:
    drill = page.locator("label[data-drill='ci-check-failing'] input")
    drill.check()
    expect(drill).to_be_checked()
    send(page, "/gate")
    card = page.locator(".msg:not(.ephemeral)", has_text="Release go/no-go: backend").last
    expect(card).to_contain_text("NO-GO", timeout=30_000)
    expect(card).to_contain_text("failed (go-pnpm-smoke")
    item = card.locator(".bk-text", has_text="pnpm smoke:release passes")
    expect(item).to_contain_text("FAIL")
    expect(item).to_contain_text("'pnpm smoke:release' concluded failure")
    card.locator(".bk-header").evaluate("header => header.scrollIntoView({block: 'start'})")  # the verdict
    shot(page, "gate-no-go")
    drill.uncheck()
    expect(drill).not_to_be_checked()


def test_a_rollback_drill_runs_to_its_end(page: Any, ws: Running) -> None:
    page.select_option("#scenario", "rollback-under-load")
    page.click("#scenario-start")
    expect(page.locator("#scenario-status")).to_contain_text("Rollback under load: all steps applied")
    expect(page.locator("label[data-drill='backend-slow'] input")).to_be_checked()
    send(page, "/rollback backend overloaded since the release --trigger recovery")
    request = page.locator(".msg:not(.ephemeral)", has_text="backend overloaded since the release").first
    expect(request).to_contain_text("Rollback production:", timeout=30_000)
    act_as(page, "UOWNER")
    approve(request, page)
    done = page.locator(".msg", has_text="Closed; the cutover freeze is lifted.")
    expect(done.first).to_be_visible(timeout=SLOW_MS)
    expect(page.locator("#world")).to_contain_text("Backend 9f8e7d6a1b2c")
    done.first.scroll_into_view_if_needed()
    shot(page, "rollback-completed")
