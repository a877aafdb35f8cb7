"""The workspace page as a rehearsing engineer uses it, in headless Chromium: it scrolls to new messages,
works at 1024 px, keeps the running scenario after a reload, and deploys a new backend version."""

from __future__ import annotations

from typing import Any

from tests.support.workspace import Running, eventually, expect, send, shot


def distance_from_bottom(page: Any) -> float:
    return float(
        page.evaluate(
            "() => { const m = document.getElementById('messages'); "
            "return m.scrollHeight - m.scrollTop - m.clientHeight; }"
        )
    )


def test_the_channel_scrolls_to_new_messages(page: Any) -> None:
    for n in range(8):  # more than a screen of answers
        send(page, "/halt status")
        expect(page.locator(".msg.ephemeral", has_text="Control revision")).to_have_count(n + 1, timeout=15_000)
    page.evaluate("() => { document.getElementById('messages').scrollTop = 0; }")  # someone scrolled up
    send(page, "/cutover status")
    expect(page.locator(".msg", has_text="Cutover: stage 1 of 5").last).to_be_visible(timeout=15_000)
    page.wait_for_timeout(300)
    assert distance_from_bottom(page) < 5
    expect(page.locator(".msg", has_text="Cutover: stage 1 of 5").last).to_be_in_viewport()


def test_the_page_works_at_1024_pixels(page: Any) -> None:
    page.set_viewport_size({"width": 1024, "height": 768})
    send(page, "/halt status")
    expect(page.locator(".msg.ephemeral").last).to_be_visible(timeout=15_000)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 1024  # nothing cut off to the right
    channel = page.locator("main.channel").bounding_box()
    assert channel["width"] >= 560, channel  # the conversation keeps most of the width
    for locator in ("#composer-input", "#deploy", "#scenario-start", "#user"):
        box = page.locator(locator).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 1024, (locator, box)
    shot(page, "workspace-1024px")
    page.set_viewport_size({"width": 1440, "height": 900})


def test_a_reload_shows_the_running_scenario(page: Any, ws: Running) -> None:
    scenarios = ws.state()["scenarios"]
    chosen = scenarios[-1]
    assert chosen["id"] != scenarios[0]["id"]
    ws.post("/api/scenario", {"name": chosen["id"]})
    eventually(lambda: ws.state()["scenario"], what="the scenario to start")
    page.reload()
    page.locator("#user option").first.wait_for(state="attached")
    expect(page.locator("#scenario")).to_have_value(chosen["id"], timeout=10_000)
    expect(page.locator("#scenario-status")).to_contain_text(chosen["name"])
    expect(page.locator("#scenario-about")).to_contain_text(chosen["description"].split("\n")[0][:40])


def test_deploy_a_new_backend_version_from_the_page(page: Any, ws: Running) -> None:
    before = ws.session.world.stack.backend.version
    page.get_by_role("button", name="Deploy a new backend version").click()
    eventually(lambda: ws.session.world.stack.backend.version != before or None, what="a new version")
    after = ws.session.world.stack.backend.version
    expect(page.locator("#world")).to_contain_text(f"Backend {after[:12]}", timeout=10_000)
    journal = [tuple(e) for e in ws.session.world.journal()]  # replayed after a restart
    assert ("deploy", after, "success") in journal and ("check", after, "pnpm verify", "success") in journal
    shot(page, "deployed-new-version")
