"""A small PNG line chart of one signal over its monitoring window, written with zlib and struct.

No plotting library: an 8-bit palette image (a few kB) with a light grid, the threshold as a red
dashed line and the signal as a blue line; a gap in the data is a gap in the line. A built-in 5x7
bitmap font labels the scale, so the size of a breach and when it began can be read off the image:

- the y axis runs over two to five round steps (1, 2, 2.5, 5 x 10^n) from min(0, data, threshold) to
  the first step at or above max(data, threshold) (0-300 for a peak of 284); each of its grid lines is
  labelled on the left (`1.5k`, `2.5M`, `20%` for a signal whose unit is a percentage);
- the threshold's value sits in red at the right end of its dashed line;
- the start and end of the window are under the x axis (`03:58`, `04:09 UTC`), with round times
  between them (every 1, 2, 5, 10, 15, 30 min, 1, 2, 3, 6 or 12 h) as light vertical grid lines.

`chart_title` says the same in words for the upload's title and alt text. Both are pure and
deterministic (the same input gives the same bytes); a chart takes a few milliseconds.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from bot.monitoring.signals import figure, number

WIDTH, HEIGHT, MARGIN = 480, 180, 10
WHITE, GRID, THRESHOLD, LINE, AXIS, TEXT = range(6)
PALETTE = bytes([255, 255, 255, 232, 232, 236, 214, 40, 40, 30, 100, 200, 120, 120, 130, 50, 50, 60])
X_AXIS_GAP = 30  # from the x axis to the bottom edge: ticks, then the time labels
SCALE = 2  # each font pixel is SCALE x SCALE image pixels: legible when Slack shrinks the image
GLYPH_HEIGHT, LABEL_GAP = 7 * SCALE, 4

# 5x7 glyphs (HD44780 style): (width, rows top to bottom, each row's bits right-aligned in `width`).
_GLYPHS = {
    "0": (5, "0E 11 13 15 19 11 0E"),
    "1": (5, "04 0C 04 04 04 04 0E"),
    "2": (5, "0E 11 01 02 04 08 1F"),
    "3": (5, "1F 02 04 02 01 11 0E"),
    "4": (5, "02 06 0A 12 1F 02 02"),
    "5": (5, "1F 10 1E 01 01 11 0E"),
    "6": (5, "06 08 10 1E 11 11 0E"),
    "7": (5, "1F 01 02 04 08 08 08"),
    "8": (5, "0E 11 11 0E 11 11 0E"),
    "9": (5, "0E 11 11 0F 01 02 0C"),
    ".": (2, "00 00 00 00 00 03 03"),
    ":": (2, "00 03 03 00 03 03 00"),
    "-": (4, "00 00 00 0F 00 00 00"),
    "%": (5, "18 19 02 04 08 13 03"),
    " ": (2, "00 00 00 00 00 00 00"),
    "k": (4, "08 08 09 0A 0C 0A 09"),
    "M": (5, "11 1B 15 15 11 11 11"),
    "G": (5, "0E 11 10 17 11 11 0F"),
    "U": (5, "11 11 11 11 11 11 0E"),
    "T": (5, "1F 04 04 04 04 04 04"),
    "C": (5, "0E 11 10 10 10 11 0E"),
}
FONT: dict[str, tuple[int, tuple[int, ...]]] = {
    ch: (w, tuple(int(row, 16) for row in rows.split())) for ch, (w, rows) in _GLYPHS.items()
}
# Round time steps for the x axis, in minutes.
_TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440)


class Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(width * height)  # palette indices, all WHITE

    def dot(self, x: int, y: int, colour: int) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            self.pixels[y * self.width + x] = colour

    def line(self, x0: int, y0: int, x1: int, y1: int, colour: int, *, thick: bool = False) -> None:
        """Bresenham; `thick` doubles the line downwards so it reads at Slack's preview size."""
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
        err = dx + dy
        while True:
            self.dot(x0, y0, colour)
            if thick:
                self.dot(x0, y0 + 1, colour)
            if x0 == x1 and y0 == y1:
                return
            e2 = 2 * err
            if e2 >= dy:
                err, x0 = err + dy, x0 + sx
            if e2 <= dx:
                err, y0 = err + dx, y0 + sy

    def text(self, x: int, y: int, text: str, colour: int) -> None:
        """`text` with its top-left corner at (x, y), each font pixel a SCALE x SCALE block; a character the
        font lacks is left out."""
        block = bytes([colour]) * SCALE
        for ch in text:
            width, rows = FONT.get(ch, (0, ()))
            for row, bits in enumerate(rows):
                for col in range(width):
                    left = x + col * SCALE
                    if bits >> (width - 1 - col) & 1 and 0 <= left <= self.width - SCALE:
                        for line in range(y + row * SCALE, y + (row + 1) * SCALE):
                            if 0 <= line < self.height:
                                self.pixels[line * self.width + left : line * self.width + left + SCALE] = block
            if width:
                x += (width + 1) * SCALE

    def png(self) -> bytes:
        rows = b"".join(b"\x00" + bytes(self.pixels[y * self.width : (y + 1) * self.width]) for y in range(self.height))
        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 3, 0, 0, 0)  # 8-bit palette
        return (
            b"\x89PNG\r\n\x1a\n"
            + _chunk(b"IHDR", header)
            + _chunk(b"PLTE", PALETTE)
            + _chunk(b"IDAT", zlib.compress(rows, 9))
            + _chunk(b"IEND", b"")
        )


def text_width(text: str) -> int:
    widths = [FONT[ch][0] for ch in text if ch in FONT]
    return (sum(widths) + len(widths) - 1) * SCALE if widths else 0


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def line_chart(
    points: Sequence[tuple[float, float]],
    *,
    threshold: float | None,
    start: float,
    end: float,
    unit: str = "",
    width: int = WIDTH,
    height: int = HEIGHT,
) -> bytes:
    """The PNG of `points` ((unix seconds, value); NaN is a gap) from `start` to `end`, labelled.

    `unit` is the signal's: one starting with "%" adds "%" to the value labels."""
    canvas = Canvas(width, height)
    finite = [v for _, v in points if math.isfinite(v)]
    levels = _levels(finite, threshold)
    low, high = levels[0], levels[-1]
    suffix = "%" if unit.startswith("%") else ""
    y_labels = [short(v) + suffix for v in levels]
    threshold_label = short(threshold) + suffix if threshold is not None else ""
    left = LABEL_GAP + max(text_width(s) for s in y_labels) + LABEL_GAP
    right = width - 1 - (LABEL_GAP + text_width(threshold_label) + LABEL_GAP if threshold_label else MARGIN)
    top, bottom = MARGIN, height - X_AXIS_GAP
    span = max(end - start, 1e-9)

    def px(at: float) -> int:
        return left + round((at - start) / span * (right - left))

    def py(value: float) -> int:
        return bottom - round((value - low) / (high - low) * (bottom - top))

    ticks = _time_ticks(start, end)
    for at in ticks:
        canvas.line(px(at), top, px(at), bottom - 1, GRID)
    for value, label in zip(levels, y_labels, strict=True):
        y = py(value)
        canvas.line(left, y, right, y, GRID if value != low else AXIS)
        canvas.text(left - LABEL_GAP - text_width(label), y - GLYPH_HEIGHT // 2, label, TEXT)
    canvas.line(left, top, left, bottom, AXIS)
    clock = _clock(start, end)
    _time_labels(
        canvas,
        [(px(at), clock(at)) for at in ticks],
        start=(left, clock(start)),
        end=(right, clock(end) + " UTC"),
        axis=bottom,
    )
    if threshold is not None:
        y = py(threshold)
        for x in range(left, right + 1, 8):
            canvas.line(x, y, min(x + 4, right), y, THRESHOLD)
        label_y = min(max(y - GLYPH_HEIGHT // 2, 0), height - GLYPH_HEIGHT)
        canvas.text(right + LABEL_GAP, label_y, threshold_label, THRESHOLD)
    previous: tuple[int, int] | None = None
    for at, value in points:
        if not math.isfinite(value):
            previous = None
            continue
        here = (px(at), py(value))
        if previous is not None:
            canvas.line(*previous, *here, LINE, thick=True)
        else:
            canvas.line(*here, *here, LINE, thick=True)
        previous = here
    return canvas.png()


def chart_title(
    name: str, unit: str, points: Sequence[tuple[float, float]], *, threshold: float | None, start: float, end: float
) -> str:
    """The chart in words, for the upload's title and alt text: "platform auth failures over the window
    03:58\u201304:09 UTC: 0 to 284 failures; dashed line: threshold 10 failures" (an en dash between the times)."""
    finite = [v for _, v in points if math.isfinite(v)]
    if not finite:
        values = "no data"
    elif min(finite) == max(finite):
        values = f"{figure(finite[0], unit)} throughout"
    else:
        values = f"{number(min(finite))} to {figure(max(finite), unit)}"
    clock = _clock(start, end)
    title = f"{name} over the window {clock(start)}\u2013{clock(end)} UTC: {values}"
    if threshold is not None:
        title += f"; dashed line: threshold {figure(threshold, unit)}"
    return title


def short(value: float) -> str:
    """A scale label in few characters: 0, 0.25, 7.5, 284, 1.5k, 12k, 2.5M, 3G."""
    if value == 0 or not math.isfinite(value):
        return "0"
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return _digits(value / size) + suffix
    return _digits(value)


def _digits(value: float) -> str:
    text = f"{value:.3g}"
    if "e" in text:  # below 0.001 (or above 1e12): plain decimals, which the font has
        text = f"{value:.12f}".rstrip("0").rstrip(".") if abs(value) < 1 else f"{value:.0f}"
    return text


def _levels(values: list[float], threshold: float | None) -> list[float]:
    """The grid levels: two to five equal round steps (1, 2, 2.5 or 5 x 10^n; whole numbers when every value
    is one) covering 0, `values` and `threshold` as tightly as they can (then with four steps rather than two)."""
    every = values + ([threshold] if threshold is not None else [])
    low, high = min([0.0, *every]), max([0.0, *every])
    integral = all(v == round(v) for v in every)
    if high - low < 1e-9:
        high = low + 1.0
    smallest = math.floor(math.log10((high - low) / 5))
    best: tuple[float, int, float, float, int] | None = None  # (span, |steps - 4|, base, step, steps), least
    for exponent in range(smallest, smallest + 3):
        for mantissa in (1.0, 2.0, 2.5, 5.0):
            step = mantissa * 10.0**exponent
            if integral and step != round(step):
                continue
            base = math.floor(low / step + 1e-9) * step
            steps = max(2, math.ceil((high - base) / step - 1e-9))
            if steps <= 5 and (best is None or (steps * step, abs(steps - 4)) < best[:2]):
                best = (steps * step, abs(steps - 4), base, step, steps)
    assert best is not None  # 10^(smallest + 2) is at least 20 times (high - low) / 5
    _, _, base, step, steps = best
    return [base + i * step for i in range(steps + 1)]


def _time_ticks(start: float, end: float) -> list[float]:
    """Round times strictly inside (start, end), at most four of them."""
    for minutes in _TIME_STEPS:
        step = minutes * 60
        first = math.floor(start / step) * step + step
        ticks = [float(t) for t in range(int(first), int(end), step) if start < t < end]
        if len(ticks) <= 4:
            return ticks
    return []


def _time_labels(
    canvas: Canvas, ticks: list[tuple[int, str]], *, start: tuple[int, str], end: tuple[int, str], axis: int
) -> None:
    """Ticks under the axis and their times; the start and end always, a round time between if it fits."""
    y = axis + 11
    start_x, start_text = start
    end_x, end_text = end
    taken = [(start_x, start_x + text_width(start_text)), (end_x - text_width(end_text), end_x)]
    canvas.text(start_x, y, start_text, TEXT)
    canvas.text(end_x - text_width(end_text), y, end_text, TEXT)
    for x in (start_x, end_x):
        canvas.line(x, axis + 1, x, axis + 4, AXIS)
    for x, text in ticks:
        canvas.line(x, axis + 1, x, axis + 4, AXIS)
        x0 = x - text_width(text) // 2
        x1 = x0 + text_width(text)
        if all(x1 + 8 <= a or x0 >= b + 8 for a, b in taken):
            canvas.text(x0, y, text, TEXT)
            taken.append((x0, x1))


def _hhmm(at: float) -> str:
    return datetime.fromtimestamp(at, tz=UTC).strftime("%H:%M")


def _hhmmss(at: float) -> str:
    return datetime.fromtimestamp(at, tz=UTC).strftime("%H:%M:%S")


def _clock(start: float, end: float) -> Callable[[float], str]:
    """Minutes, unless the start and end would read the same (a window of a minute or two): then seconds."""
    return _hhmm if _hhmm(start) != _hhmm(end) and end - start >= 120 else _hhmmss
