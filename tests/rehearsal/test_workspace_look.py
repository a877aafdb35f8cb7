"""How the workspace page shows things: every emoji the bot writes has a rendering, long typed text wraps
inside the message pane, and a chart uploaded into an alert's thread is an image under the alert.

The emoji table is checked without a browser too (parsed from blocks.js), so it never silently drifts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from commands.webapi.charts import line_chart
from rehearsal.workspace import people
from tests.support.workspace import Running, chromium, expect, open_page, running_workspace, send, shot

ROOT = Path(__file__).resolve().parents[2]
BLOCKS_JS = ROOT / "rehearsal" / "workspace" / "static" / "blocks.js"
EMOJI_IN_TEXT = re.compile(r"(?<![\w:/]):([a-z][a-z0-9_+-]*):(?![\w:])")
NOT_EMOJI = {"memory"}  # SQLite's ":memory:" database name (rehearsal/workspace/state.py), never shown as text


def emoji_the_bot_uses() -> set[str]:
    found: set[str] = set()
    for folder in ("bot", "commands"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".yaml", ".yml") and "__pycache__" not in path.parts:
                found |= set(EMOJI_IN_TEXT.findall(path.read_text(encoding="utf-8")))
    return found - NOT_EMOJI


def emoji_table() -> set[str]:
    table = re.search(r"const EMOJI = \{(.*?)\};", BLOCKS_JS.read_text(encoding="utf-8"), re.S)
    assert table is not None, "no EMOJI table in blocks.js"
    return set(re.findall(r"([a-z][a-z0-9_+-]*):\s*\"", table.group(1)))


def test_every_emoji_the_bot_writes_has_a_rendering_in_the_page() -> None:
    used = emoji_the_bot_uses()
    assert {"eyes", "warning", "rotating_light", "white_check_mark"} <= used  # the scan finds them
    missing = sorted(used - emoji_table())
    assert not missing, f"blocks.js shows these as :name: text: {missing}"


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with running_workspace(
        tmp_path_factory.mktemp("workspace-look"), use_cosmos=False, use_prometheus=False
    ) as running:
        yield running


@pytest.fixture
def page(ws: Running, tmp_path: Path) -> Iterator[Any]:
    with chromium(tmp_path / "profile") as browser, open_page(browser, ws.url + "/?user=UOPERATOR") as opened:
        yield opened


def test_the_page_renders_each_of_those_emoji(page: Any) -> None:
    names = sorted(emoji_the_bot_uses())
    shown = page.evaluate(
        """async (names) => {
        const { emojify } = await import("/static/blocks.js");
        return names.filter((name) => emojify(`:${name}:`) === `:${name}:`);
    }""",
        names,
    )
    assert shown == [], f"rendered as text: {shown}"


def test_long_typed_text_wraps_inside_the_message_pane(page: Any) -> None:
    word = "tenant:" + "x" * 400
    send(page, f"/halt {word} unbroken")
    typed = page.locator(".msg.command .command-text", has_text="x" * 50).last
    expect(typed).to_be_visible(timeout=15_000)
    pane = page.locator("#messages").bounding_box()
    box = typed.bounding_box()
    assert box["x"] + box["width"] <= pane["x"] + pane["width"] + 1, (box, pane)  # not under the right panel
    assert page.evaluate(
        "() => { const m = document.getElementById('messages'); return m.scrollWidth <= m.clientWidth; }"
    )
    shot(page, "long-text-wraps")


def test_a_chart_uploaded_into_an_alerts_thread_shows_as_an_image_under_the_alert(page: Any, ws: Running) -> None:
    slack = ws.session.world.stack.deps.slack  # the bot's own client, against the local peer, as alerts.py posts
    alert = slack.chat_postMessage(channel=people.CHANNEL_ID, text="Monitoring alert: chart rehearsal: 14 > 10")
    png = line_chart([(0.0, 1.0), (30.0, 14.0), (60.0, 12.0)], threshold=10.0, start=0.0, end=60.0)
    slack.files_upload_v2(
        channel=people.CHANNEL_ID,
        thread_ts=str(alert["ts"]),
        content=png,
        filename="chart-rehearsal.png",
        title="chart rehearsal over the window",
        alt_txt="chart rehearsal over the window",
    )
    message = page.locator("#messages > .msg", has_text="Monitoring alert: chart rehearsal")
    image = message.locator(".thread img[alt='chart rehearsal over the window']")
    expect(image).to_be_visible(timeout=15_000)
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    expect(message.locator(".thread")).to_contain_text("In thread")
    assert page.locator("#messages > .msg", has_text="chart-rehearsal.png").count() == 0  # no top-level chip
    shot(page, "alert-chart-in-thread")
