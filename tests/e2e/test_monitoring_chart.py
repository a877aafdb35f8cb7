"""The alert chart as an operator reads it: the PNG is decoded with Pillow and looked at pixel by pixel
where the chart's own figure says its scale, threshold and labels are; the upload's title says the same."""

from __future__ import annotations

import io
import json
import math
import re
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

from matplotlib.figure import Figure
from matplotlib.text import Text
from PIL import Image

from commands.webapi.charts import HEIGHT, LINE, THRESHOLD, WIDTH, chart_figure, chart_title, line_chart, short
from rehearsal.sim.stack import Stack
from tests.support.monitoring import FakePrometheus, open_window, store, watcher

T0 = datetime(2024, 6, 3, 3, 58, tzinfo=UTC).timestamp()
T1 = datetime(2024, 6, 3, 4, 9, tzinfo=UTC).timestamp()
Pixel = tuple[int, int, int]


def rgb(colour: str) -> Pixel:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def near(pixel: Pixel, colour: str, tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, rgb(colour), strict=True))


def dark(pixel: Pixel) -> bool:
    return max(pixel) < 130


class Chart:
    """One chart: the PNG as uploaded (decoded) and the figure it was drawn from (for where things are)."""

    def __init__(self, points: list[tuple[float, float]], **kwargs: Any) -> None:
        self.png = line_chart(points, **kwargs)
        decoded = Image.open(io.BytesIO(self.png))
        assert decoded.format == "PNG"
        self.image = decoded.convert("RGB")
        self._pixels = self.image.load()
        self.figure: Figure = chart_figure(points, **kwargs)
        self.figure.canvas.draw()
        self.ax = self.figure.axes[0]

    def at(self, x: int, y: int) -> Pixel:
        r, g, b = self._pixels[x, y]
        return int(r), int(g), int(b)

    def row_of(self, value: float) -> float:
        """The image row (from the top) where `value` sits on the y axis."""
        return HEIGHT - float(self.ax.transData.transform((self.ax.get_xlim()[0], value))[1])

    def column_of(self, at: float) -> float:
        return float(self.ax.transData.transform((at, self.ax.get_ylim()[0]))[0])

    def plot_box(self) -> tuple[int, int, int, int]:
        """The plot area in image pixels (left, top, right, bottom), just inside its frame."""
        box = self.ax.get_window_extent()
        return math.ceil(box.x0) + 2, math.ceil(HEIGHT - box.y1) + 2, int(box.x1) - 2, int(HEIGHT - box.y0) - 2

    def drawn(self, text: Text, test: Any = dark) -> bool:
        """`text` is inside the image and its box holds pixels that pass `test` (it was drawn, not clipped)."""
        box = text.get_window_extent()
        x0, x1, y0, y1 = int(box.x0), math.ceil(box.x1), int(HEIGHT - box.y1), math.ceil(HEIGHT - box.y0)
        assert 0 <= x0 < x1 <= WIDTH and 0 <= y0 < y1 <= HEIGHT, (text.get_text(), box)
        return any(test(self.at(x, y)) for x in range(x0, x1) for y in range(y0, y1))

    def y_labels(self) -> list[str]:
        """The scale's labels from bottom to top, each checked to be drawn."""
        labels = sorted(self.ax.get_yticklabels(), key=lambda t: t.get_window_extent().y0)
        assert all(self.drawn(t) for t in labels)
        return [t.get_text() for t in labels]

    def x_labels(self) -> list[str]:
        labels = sorted(self.ax.get_xticklabels(), key=lambda t: t.get_window_extent().x0)
        assert all(self.drawn(t) for t in labels)
        return [t.get_text() for t in labels]

    def threshold_label(self) -> Text:
        (label,) = [t for t in self.ax.texts if near(rgb(str(t.get_color())), THRESHOLD, 0)]
        return label


def rising(peak: float) -> list[tuple[float, float]]:
    """Quiet, then a climb to `peak` from 04:02, with a gap in the data."""
    step = (T1 - T0) / 200
    return [
        (T0 + i * step, math.nan if 150 <= i < 155 else 0.0 if i < 72 else min(peak, (i - 72) * peak / 80))
        for i in range(201)
    ]


def test_the_chart_is_a_small_png_of_the_expected_size() -> None:
    chart = Chart(rising(284), threshold=10, start=T0, end=T1, unit="failures")
    assert chart.image.size == (WIDTH, HEIGHT) == (600, 300)
    assert len(chart.png) < 40_000  # a few tens of kB: a quick Slack upload
    noisy = [(T0 + i * 2.75, 5 + 10 * math.sin(i / 7) + (i % 3)) for i in range(240)]  # a full query_range
    assert len(line_chart(noisy, threshold=12.0, start=T0, end=T1)) < 60_000
    empty = Chart([], threshold=None, start=0, end=1)
    assert empty.image.size == (WIDTH, HEIGHT) and empty.y_labels()[0] == "0" and not empty.ax.texts


def test_the_threshold_is_a_red_dashed_line_at_its_value_with_the_value_beside_it() -> None:
    chart = Chart(rising(284), threshold=10, start=T0, end=T1, unit="failures")
    left, top, right, bottom = chart.plot_box()
    red_rows = {y: sum(near(chart.at(x, y), THRESHOLD) for x in range(left, right)) for y in range(top, bottom)}
    row = max(red_rows, key=lambda y: red_rows[y])
    assert abs(row - chart.row_of(10)) <= 1.5, (row, chart.row_of(10))
    # On the scale the operator reads: a tenth of the way from the 0 line up to the 100 line.
    assert abs((chart.row_of(0) - row) - (chart.row_of(0) - chart.row_of(100)) / 10) <= 1.5
    runs = sum(
        1
        for x in range(left + 1, right)
        if near(chart.at(x, row), THRESHOLD) and not near(chart.at(x - 1, row), THRESHOLD)
    )
    assert runs > 20  # dashed, not solid
    label = chart.threshold_label()
    assert label.get_text() == "10" and chart.drawn(label, lambda p: near(p, THRESHOLD))
    box = label.get_window_extent()
    assert box.x0 > right and abs((HEIGHT - (box.y0 + box.y1) / 2) - row) <= 3  # at the line's right end


def test_the_scale_and_the_times_are_labelled() -> None:
    chart = Chart(rising(284), threshold=10, start=T0, end=T1, unit="failures", title="platform auth failures")
    assert chart.y_labels() == ["0", "100", "200", "300"]  # round steps up to the first at or above 284
    assert chart.ax.get_ylabel() == "failures" and chart.drawn(chart.ax.yaxis.label)
    times = chart.x_labels()
    assert times[0] == "03:58" and times[-1] == "04:09" and "04:05" in times[1:-1]  # a round time between
    assert chart.ax.get_xlabel() == "UTC" and chart.drawn(chart.ax.xaxis.label)
    (title,) = [t for t in chart.figure.findobj(Text) if t.get_text() == "platform auth failures"]
    assert chart.drawn(title) and title.get_window_extent().y0 > chart.ax.get_window_extent().y1  # above the plot
    untitled = Chart(rising(284), threshold=10, start=T0, end=T1)
    assert untitled.ax.get_title(loc="left") == "" and untitled.ax.get_ylabel() == ""


def test_the_signal_line_follows_the_data_and_breaks_at_a_gap() -> None:
    points = rising(284)
    chart = Chart(points, threshold=10, start=T0, end=T1, unit="failures")
    _, top, _, bottom = chart.plot_box()

    def blue_rows(at: float) -> list[int]:
        x = round(chart.column_of(at))
        return [y for y in range(top - 4, bottom + 4) if near(chart.at(x, y), LINE)]

    quiet, peak = blue_rows(points[30][0]), blue_rows(points[180][0])
    assert quiet and abs(min(quiet) - chart.row_of(0)) <= 3  # on the 0 line before the climb
    assert peak and abs(min(peak) - chart.row_of(284)) <= 3  # near the top at the peak
    assert blue_rows(points[152][0]) == []  # no data, no line
    lone = Chart([(T0, math.nan), (T1 - 60, 14.0), (T1, math.nan)], threshold=10, start=T0, end=T1)
    _, top, _, bottom = lone.plot_box()
    dot = [y for y in range(top, bottom) if near(lone.at(round(lone.column_of(T1 - 60)), y), LINE)]
    assert dot and abs(sum(dot) / len(dot) - lone.row_of(14)) <= 2  # a reading alone between gaps is a dot


def test_the_labels_follow_the_data() -> None:
    large = Chart(rising(2840), threshold=10, start=T0, end=T1)
    assert large.y_labels() == ["0", "1k", "2k", "3k"]
    later = Chart(rising(284), threshold=10, start=T0 + 3600, end=T1 + 3600)
    assert later.x_labels()[0] == "04:58" and later.x_labels()[-1] == "05:09"
    percent = Chart([(T0, 1.5), (T1, 9.5)], threshold=5, start=T0, end=T1, unit="% of responses")
    assert percent.y_labels() == ["0%", "2.5%", "5%", "7.5%", "10%"] and percent.threshold_label().get_text() == "5%"
    millions = Chart([(T0, 2.5e6), (T1, 1.2e6)], threshold=2e6, start=T0, end=T1, unit="bytes")
    assert millions.y_labels() == ["0", "1M", "2M", "3M"] and millions.threshold_label().get_text() == "2M"
    below = Chart([(T0, -40.0), (T1, 20.0)], threshold=10, start=T0, end=T1)
    assert below.y_labels()[0].startswith("-") and "0" in below.y_labels()  # the scale reaches below zero


def test_a_short_window_labels_distinct_times_in_seconds() -> None:
    start, end = T0 + 5, T0 + 50  # both 03:58 to the minute
    times = Chart(rising(284), threshold=10, start=start, end=end).x_labels()
    assert times[0] == "03:58:05" and times[-1] == "03:58:50" and len(set(times)) == len(times)
    assert "03:58:05\u201303:58:50 UTC" in chart_title("x", "", rising(3), threshold=None, start=start, end=end)


def test_it_is_deterministic() -> None:
    points = [(T0 + i * 2.75, 5 + 10 * math.sin(i / 7)) for i in range(240)]
    first = line_chart(points, threshold=12.0, start=T0, end=T1, title="x")
    assert line_chart(points, threshold=12.0, start=T0, end=T1, title="x") == first
    assert b"matplotlib" not in first  # no version stamp: the bytes do not change with the library's version


def test_matplotlib_is_loaded_only_to_draw() -> None:
    code = "import sys, commands.server.app, bot.monitoring.alerts; print('matplotlib' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert loaded.stdout.strip() == "False"


def test_short_labels() -> None:
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
        5.551115123125783e-17: "0",
    }
    assert {v: short(v) for v in cases} == cases


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
    image = Image.open(io.BytesIO(uploaded.data)).convert("RGB")
    assert image.size == (WIDTH, HEIGHT)
    colours = {colour for _, colour in image.getcolors(maxcolors=WIDTH * HEIGHT) or []}
    assert rgb(THRESHOLD) in colours and rgb(LINE) in colours  # the threshold and the signal are drawn
