"""A small PNG line chart of one signal over its monitoring window, drawn with matplotlib (Agg).

600x300 px, a few tens of kB: the signal as a blue line (a gap in the data is a gap in the line), the
threshold as a red dashed line with its value in red at the right end, a light grid, and a labelled
scale, so the size of a breach and when it began can be read off the image:

- the y axis runs over a few round steps (1, 2, 2.5, 5 x 10^n) from min(0, data, threshold) to the
  first step at or above max(data, threshold) (0-300 for a peak of 284), labelled `1.5k`, `2.5M`,
  `20%`; the signal's unit names the axis;
- the x axis starts and ends with the window (`03:58`, `04:09`), with round times between, in UTC.

matplotlib is imported inside `chart_figure`: the bot starts, and most tests run, without loading it.
`chart_title` says the same in words for the upload's title and alt text. Both are deterministic
(the same input gives the same bytes).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bot.monitoring.signals import figure, number

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

WIDTH, HEIGHT, DPI = 600, 300, 100
LINE, THRESHOLD, GRID, TEXT = "#1e64c8", "#d62828", "#e8e8ec", "#32323c"
Y_STEPS = (1, 2, 2.5, 5, 10)  # round steps of the y axis, times a power of ten
EDGE_ROOM = 0.12  # a round time this close (share of the window) to the start or end is not labelled


def line_chart(
    points: Sequence[tuple[float, float]],
    *,
    threshold: float | None,
    start: float,
    end: float,
    unit: str = "",
    title: str = "",
    width: int = WIDTH,
    height: int = HEIGHT,
) -> bytes:
    """The PNG of `points` ((unix seconds, value); NaN is a gap) from `start` to `end`, labelled.

    `unit` is the signal's: it names the y axis, and one starting with "%" adds "%" to the value labels."""
    fig = chart_figure(
        points, threshold=threshold, start=start, end=end, unit=unit, title=title, width=width, height=height
    )
    out = io.BytesIO()
    # No "Software" text chunk: the bytes do not depend on the matplotlib version.
    fig.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    return out.getvalue()


def chart_figure(
    points: Sequence[tuple[float, float]],
    *,
    threshold: float | None,
    start: float,
    end: float,
    unit: str = "",
    title: str = "",
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Figure:
    """The chart as a matplotlib figure, ready to save; once drawn, its artists sit where the PNG has them
    (the tests read the scale's positions from it)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)  # Agg without pyplot: no global figure state shared between threads
    ax = fig.add_subplot()
    suffix = "%" if unit.startswith("%") else ""
    _y_axis(ax, [v for _, v in points if math.isfinite(v)], threshold, suffix, unit)
    _x_axis(ax, start, end)
    ax.plot([at for at, _ in points], [v for _, v in points], color=LINE, linewidth=2, zorder=3)
    alone = _isolated(points)  # a line needs two points: a reading between gaps is drawn as a dot
    ax.plot(
        [at for at, _ in alone],
        [v for _, v in alone],
        color=LINE,
        linestyle="none",
        marker="o",
        markersize=5,
        zorder=3,
        clip_on=False,
    )
    if threshold is not None:
        ax.axhline(threshold, color=THRESHOLD, linestyle=(0, (4, 3)), linewidth=1.5, zorder=2)
        ax.annotate(
            short(threshold) + suffix,
            (1, threshold),
            xycoords=("axes fraction", "data"),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            color=THRESHOLD,
            fontsize=9,
        )
    if title:
        ax.set_title(title, fontsize=10, color=TEXT, loc="left")
    return fig


def _isolated(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The finite points whose neighbours on both sides are gaps (or the ends of the series)."""
    finite = [math.isfinite(v) for _, v in points]
    return [
        p
        for i, p in enumerate(points)
        if finite[i] and not (i > 0 and finite[i - 1]) and not (i + 1 < len(points) and finite[i + 1])
    ]


def _y_axis(ax: Axes, values: list[float], threshold: float | None, suffix: str, unit: str) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    every = values + ([threshold] if threshold is not None else [])
    low, high = min([0.0, *every]), max([0.0, *every])
    if high - low < 1e-9:
        high = low + 1.0
    integral = all(v == round(v) for v in every)
    ticks = MaxNLocator(nbins=4, steps=list(Y_STEPS), integer=integral, min_n_ticks=3).tick_values(low, high)
    ax.set_ylim(float(ticks[0]), float(ticks[-1]))
    ax.set_yticks([float(t) for t in ticks])
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: short(value) + suffix))
    ax.set_ylabel(unit, color=TEXT, fontsize=9)
    ax.grid(True, color=GRID, linewidth=1)
    ax.set_axisbelow(True)
    ax.tick_params(labelsize=9, colors=TEXT)


def _x_axis(ax: Axes, start: float, end: float) -> None:
    """Unix seconds along x (as the points are); ticks at the start, the end, and round times between."""
    span = max(end - start, 1e-9)
    ax.set_xlim(start, start + span)
    between = [
        t for t in _round_times(start, start + span) if start + EDGE_ROOM * span < t < start + (1 - EDGE_ROOM) * span
    ]
    clock = _clock(start, end)
    ax.set_xticks([start, *between, end], [clock(t) for t in (start, *between, end)])
    ax.set_xlabel("UTC", color=TEXT, fontsize=9)


def _round_times(start: float, end: float) -> list[float]:
    """Two to five round times (every 5 s, 15 s, 1 min, 5 min, 1 h...) over [start, end], as matplotlib's date
    axis picks them; matplotlib.dates has no type hints."""
    from matplotlib.dates import AutoDateLocator, num2date

    locator = AutoDateLocator(minticks=2, maxticks=5)  # type: ignore[no-untyped-call]
    days = locator.tick_values(datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC))  # type: ignore[no-untyped-call]
    return [float(num2date(day).timestamp()) for day in days]  # type: ignore[no-untyped-call]


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
    if abs(value) < 1e-12 or not math.isfinite(value):
        return "0"
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return _digits(value / size) + suffix
    return _digits(value)


def _digits(value: float) -> str:
    text = f"{value:.3g}"
    if "e" in text:  # below 0.001 (or above 1e12): plain decimals read better than 5e-04
        text = f"{value:.12f}".rstrip("0").rstrip(".") if abs(value) < 1 else f"{value:.0f}"
    return text


def _hhmm(at: float) -> str:
    return datetime.fromtimestamp(at, tz=UTC).strftime("%H:%M")


def _hhmmss(at: float) -> str:
    return datetime.fromtimestamp(at, tz=UTC).strftime("%H:%M:%S")


def _clock(start: float, end: float) -> Callable[[float], str]:
    """Minutes, unless the start and end would read the same (a window of a minute or two): then seconds."""
    return _hhmm if _hhmm(start) != _hhmm(end) and end - start >= 120 else _hhmmss
