"""The alert chart's scale: the PNG is decoded here (zlib and the row filters, no imaging library) and its
labels are looked for, glyph by glyph, where a reader expects them; the upload's title says the same."""

from __future__ import annotations

import json
import math
import re
import struct
import time
import zlib
from datetime import UTC, datetime

from commands.charts import (
    FONT,
    GLYPH_HEIGHT,
    HEIGHT,
    LINE,
    SCALE,
    TEXT,
    THRESHOLD,
    WIDTH,
    Canvas,
    chart_title,
    line_chart,
    short,
    text_width,
)
from rehearsal.sim.stack import Stack
from tests.support.monitoring import FakePrometheus, open_window, store, watcher

T0 = datetime(2024, 6, 3, 3, 58, tzinfo=UTC).timestamp()
T1 = datetime(2024, 6, 3, 4, 9, tzinfo=UTC).timestamp()


class Image:
    def __init__(self, width: int, height: int, pixels: bytes) -> None:
        self.width, self.height, self.pixels = width, height, pixels

    def at(self, x: int, y: int) -> int:
        return self.pixels[y * self.width + x]

    def region(self, x0: int, y0: int, x1: int, y1: int) -> bytes:
        return b"".join(self.pixels[y * self.width + x0 : y * self.width + x1] for y in range(y0, y1))

    def find(self, text: str, colour: int, box: tuple[int, int, int, int] | None = None) -> list[tuple[int, int]]:
        """Top-left corners where `text` is drawn in `colour`, exactly: no stray pixel of that colour in its box or
        in the letter spacing either side (so "0" is not found inside "300")."""
        width = text_width(text)
        glyph = Canvas(width, GLYPH_HEIGHT)
        glyph.text(0, 0, text, 1)
        on = [(i % width, i // width) for i, p in enumerate(glyph.pixels) if p]
        off = [(i % width, i // width) for i, p in enumerate(glyph.pixels) if not p]
        beside = (*range(-SCALE - 1, 0), *range(width, width + SCALE + 1))
        off += [(dx, dy) for dy in range(GLYPH_HEIGHT) for dx in beside]
        x0, y0, x1, y1 = box or (0, 0, self.width, self.height)
        found = []
        for y in range(y0, min(y1, self.height) - GLYPH_HEIGHT + 1):
            for x in range(x0, min(x1, self.width) - width + 1):
                if all(self.at(x + dx, y + dy) == colour for dx, dy in on) and not any(
                    self.at(x + dx, y + dy) == colour for dx, dy in off if 0 <= x + dx < self.width
                ):
                    found.append((x, y))
        return found


def decode(png: bytes) -> Image:
    """Checks the PNG's structure (signature, CRCs, IHDR, IEND) and undoes its filters."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    chunks: list[tuple[bytes, bytes]] = []
    at = 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        kind, data = png[at + 4 : at + 8], png[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", png[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(kind + data) & 0xFFFFFFFF, kind
        chunks.append((kind, data))
        at += 12 + length
    assert at == len(png)
    kinds = [k for k, _ in chunks]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and chunks[-1][1] == b"" and b"PLTE" in kinds
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour_type, interlace) == (8, 3, 0)  # 8-bit palette, not interlaced: one byte a pixel
    palette = dict(chunks)[b"PLTE"]
    raw = zlib.decompress(b"".join(d for k, d in chunks if k == b"IDAT"))
    assert len(raw) == height * (width + 1)
    pixels = bytearray()
    previous = bytearray(width)
    for y in range(height):
        kind, line = raw[y * (width + 1)], bytearray(raw[y * (width + 1) + 1 : (y + 1) * (width + 1)])
        for x in range(width):
            a, b = (line[x - 1] if x else 0), previous[x]
            c = previous[x - 1] if x else 0
            guess = {0: 0, 1: a, 2: b, 3: (a + b) // 2, 4: _paeth(a, b, c)}[kind]
            line[x] = (line[x] + guess) & 0xFF
        pixels += line
        previous = line
    assert max(pixels) < len(palette) // 3
    return Image(width, height, bytes(pixels))


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def rising(peak: float) -> list[tuple[float, float]]:
    """Quiet, then a climb to `peak` from 04:02, with a gap in the data."""
    step = (T1 - T0) / 200
    return [
        (T0 + i * step, math.nan if 150 <= i < 155 else 0.0 if i < 72 else min(peak, (i - 72) * peak / 80))
        for i in range(201)
    ]


def test_the_chart_is_a_valid_png_of_the_expected_size() -> None:
    image = decode(line_chart(rising(284), threshold=10, start=T0, end=T1, unit="failures"))
    assert (image.width, image.height) == (WIDTH, HEIGHT) == (480, 180)
    assert {TEXT, THRESHOLD, LINE} <= set(image.pixels)
    empty = decode(line_chart([], threshold=None, start=0, end=1))
    assert empty.find("0", TEXT, (0, 0, 40, HEIGHT)) and not empty.find("0", THRESHOLD)


def test_the_scale_the_threshold_and_the_times_are_labelled_where_a_reader_looks() -> None:
    image = decode(line_chart(rising(284), threshold=10, start=T0, end=T1, unit="failures"))
    left_gutter = (0, 0, 60, HEIGHT)
    # y axis: round steps up to 300, labelled on the left, top to bottom.
    tops = [image.find(label, TEXT, left_gutter) for label in ("300", "200", "100", "0")]
    assert all(len(t) == 1 for t in tops), tops
    ys = [t[0][1] for t in tops]
    assert ys == sorted(ys) and ys[0] < 12 and ys[-1] > HEIGHT - 50
    # The threshold's value in red at the right end of its dashed line, just above the 0 label.
    ((x, y),) = image.find("10", THRESHOLD, (WIDTH - 40, 0, WIDTH, HEIGHT))
    assert ys[-2] < y < ys[-1]
    assert any(image.at(px, y + GLYPH_HEIGHT // 2) == THRESHOLD for px in range(x - 20, x - 4))
    # x axis: the start and the end, in UTC, along the bottom.
    bottom = (0, HEIGHT - 20, WIDTH, HEIGHT)
    ((sx, _),) = image.find("03:58", TEXT, bottom)
    ((ex, _),) = image.find("04:09 UTC", TEXT, bottom)
    assert sx < 80 and ex + text_width("04:09 UTC") > WIDTH - 50
    assert image.find("04:05", TEXT, bottom)  # a round time between them


def test_the_labels_follow_the_data() -> None:
    small = decode(line_chart(rising(284), threshold=10, start=T0, end=T1))
    large = decode(line_chart(rising(2840), threshold=10, start=T0, end=T1))
    assert small.region(0, 0, 50, 30) != large.region(0, 0, 50, 30)
    assert small.region(0, 0, 50, 30).count(TEXT) > 20  # the max label is there, not a blank corner
    assert large.find("3k", TEXT, (0, 0, 60, 20)) and large.find("2k", TEXT) and not large.find("300", TEXT)
    later = decode(line_chart(rising(284), threshold=10, start=T0 + 3600, end=T1 + 3600))
    assert later.find("04:58", TEXT) and later.find("05:09 UTC", TEXT) and not later.find("03:58", TEXT)
    percent = decode(line_chart([(T0, 1.5), (T1, 9.5)], threshold=5, start=T0, end=T1, unit="% of responses"))
    assert percent.find("5%", THRESHOLD) and percent.find("7.5%", TEXT) and percent.find("0%", TEXT)
    millions = decode(line_chart([(T0, 2.5e6), (T1, 1.2e6)], threshold=2e6, start=T0, end=T1))
    assert millions.find("2M", THRESHOLD) and millions.find("2.5M", TEXT, (0, 0, 60, 20))
    assert millions.find("500k", TEXT) and millions.find("1.5M", TEXT) and millions.find("0", TEXT)


def test_a_short_window_labels_distinct_times_in_seconds() -> None:
    start, end = T0 + 5, T0 + 50  # both 03:58 to the minute
    image = decode(line_chart(rising(284), threshold=10, start=start, end=end))
    bottom = (0, HEIGHT - 20, WIDTH, HEIGHT)
    assert image.find("03:58:05", TEXT, bottom) and image.find("03:58:50 UTC", TEXT, bottom)
    assert not image.find("03:58 UTC", TEXT, bottom)
    assert "03:58:05\u201303:58:50 UTC" in chart_title("x", "", rising(3), threshold=None, start=start, end=end)


def test_it_is_deterministic_and_fast() -> None:
    points = [(T0 + i * 2.75, 5 + 10 * math.sin(i / 7)) for i in range(240)]
    began = time.perf_counter()
    first = line_chart(points, threshold=12.0, start=T0, end=T1)
    assert time.perf_counter() - began < 0.25  # a few ms in practice; an alert does not wait on it
    assert line_chart(points, threshold=12.0, start=T0, end=T1) == first and len(first) < 20_000


def test_short_labels_use_only_the_fonts_characters() -> None:
    cases = {
        0: "0",
        0.25: "0.25",
        7.5: "7.5",
        284: "284",
        -100: "-100",
        1500: "1.5k",
        12_000: "12k",
        2.5e6: "2.5M",
        3e9: "3G",
        0.0005: "0.0005",
        0.1 + 0.2: "0.3",
    }
    assert {v: short(v) for v in cases} == cases
    for exponent in range(-6, 13):
        for mantissa in (1, 2, 2.5, 5, 7.5):
            assert set(short(mantissa * 10.0**exponent) + "% UTC:") <= set(FONT)


def test_the_title_says_the_same_in_words() -> None:
    title = chart_title("platform auth failures", "failures", rising(284), threshold=10, start=T0, end=T1)
    assert title == (
        "platform auth failures over the window 03:58\u201304:09 UTC: 0 to 284 failures; "
        "dashed line: threshold 10 failures"
    )
    flat = chart_title("kill-switch misfires", "", [(T0, 1.0)], threshold=0, start=T0, end=T1)
    assert flat == "kill-switch misfires over the window 03:58\u201304:09 UTC: 1 throughout; dashed line: threshold 0"
    assert chart_title("x", "%", [(T0, math.nan)], threshold=None, start=T0, end=T1).endswith("UTC: no data")


def test_the_uploaded_charts_title_and_alt_text_carry_the_range_and_times(
    mon_stack: Stack, fake_prom: FakePrometheus
) -> None:
    open_window(mon_stack)
    fake_prom.values = {"trading_auth_failures_total": 14.0}
    watcher(mon_stack).tick()
    (row,) = store(mon_stack).open_alerts("breach")
    uploaded = mon_stack.peer.files.get(str(row.chart_file_id))
    assert uploaded is not None and uploaded.data is not None
    title = uploaded.title
    found = re.fullmatch(
        r"platform auth failures over the window (\d\d:\d\d:\d\d)\u2013(\d\d:\d\d:\d\d) UTC: "
        r"14 failures throughout; dashed line: threshold 10 failures",
        title,
    )
    assert found and found[1] != found[2], title  # a window seconds old: its two times still differ
    assert uploaded.alt_txt in ("", title)  # the peer keeps alt_txt when the client sends it at the first step
    completed = mon_stack.peer.calls_to("files.completeUploadExternal")
    assert json.loads(completed[0].args["files"])[0]["title"] == title
    image = decode(uploaded.data)
    assert image.find("10", THRESHOLD) and image.find("UTC", TEXT)
