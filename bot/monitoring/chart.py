"""A small PNG line chart of one signal over its monitoring window, written with zlib and struct.

No plotting library: an 8-bit palette image (a few kB) with a light grid, the threshold as a red
dashed line and the signal as a blue line; a gap in the data is a gap in the line. The alert's text
carries the numbers, so the chart has no labels.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence

WIDTH, HEIGHT, MARGIN = 480, 160, 8
WHITE, GRID, THRESHOLD, LINE, AXIS = range(5)
PALETTE = bytes([255, 255, 255, 232, 232, 236, 214, 40, 40, 30, 100, 200, 120, 120, 130])


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

    def png(self) -> bytes:
        rows = b"".join(b"\x00" + bytes(self.pixels[y * self.width:(y + 1) * self.width])
                        for y in range(self.height))
        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 3, 0, 0, 0)  # 8-bit palette
        return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"PLTE", PALETTE)
                + _chunk(b"IDAT", zlib.compress(rows, 9)) + _chunk(b"IEND", b""))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def line_chart(points: Sequence[tuple[float, float]], *, threshold: float | None, start: float, end: float,
               width: int = WIDTH, height: int = HEIGHT) -> bytes:
    """The PNG of `points` ((unix seconds, value); NaN is a gap) from `start` to `end`."""
    canvas = Canvas(width, height)
    finite = [v for _, v in points if math.isfinite(v)]
    low, high = _range(finite + ([threshold] if threshold is not None else []))
    span = max(end - start, 1e-9)

    def px(at: float) -> int:
        return MARGIN + round((at - start) / span * (width - 2 * MARGIN - 1))

    def py(value: float) -> int:
        return height - MARGIN - 1 - round((value - low) / (high - low) * (height - 2 * MARGIN - 1))

    _grid(canvas)
    if threshold is not None:
        y = py(threshold)
        for x in range(MARGIN, width - MARGIN, 8):
            canvas.line(x, y, min(x + 4, width - MARGIN - 1), y, THRESHOLD)
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


def _range(values: list[float]) -> tuple[float, float]:
    low = min([0.0, *values])
    high = max([0.0, *values])
    if high - low < 1e-9:
        high = low + 1.0
    return low, high + (high - low) * 0.1


def _grid(canvas: Canvas) -> None:
    w, h = canvas.width, canvas.height
    for i in range(1, 4):
        y = MARGIN + i * (h - 2 * MARGIN) // 4
        canvas.line(MARGIN, y, w - MARGIN - 1, y, GRID)
    canvas.line(MARGIN, h - MARGIN - 1, w - MARGIN - 1, h - MARGIN - 1, AXIS)
    canvas.line(MARGIN, MARGIN, MARGIN, h - MARGIN - 1, AXIS)
