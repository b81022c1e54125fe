"""Server-side SVG line charts for dashboards (no JavaScript, no chart library).

:func:`line_chart` turns a few series of values over labelled points (months, days …) into the
geometry the template ``web/_line_chart.html`` draws: paths, point markers with their values as
tooltips, y ticks and x labels. The data-quality trend chart (:mod:`dgov.quality.charts`) draws its
step lines into the same :class:`LineChart`. Conventions: a ``<title>`` and ``<desc>`` for screen
readers, lines told apart by dash pattern as well as colour (readable without colour vision), and
the values given as a table beside the chart by the page. A missing value (``None``) breaks its
line instead of drawing zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["PALETTE", "LineChart", "LineSeries", "line_chart"]

# (stroke colour, dash pattern, width) for the series in order; the first is the heavy solid line.
PALETTE = (
    ("#0b4a8f", "", 3),
    ("#1b6b3a", "6 3", 2),
    ("#b3591f", "2 3", 2),
    ("#7a1fa2", "8 3 2 3", 2),
    ("#b3181f", "4 4", 2),
    ("#00796b", "1 3", 2),
)


@dataclass
class LineSeries:
    """One line: key, label, style, SVG path and markers ``(x, y, tooltip)``."""

    key: str
    label: str
    color: str
    dash: str
    width: float
    path: str
    markers: list[tuple[float, float, str]] = field(default_factory=list)


@dataclass
class LineChart:
    """The geometry of a line chart (``empty`` when no series has a value)."""

    width: int
    height: int
    left: int
    top: int
    right: int
    bottom: int
    title: str
    description: str
    series: list[LineSeries] = field(default_factory=list)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    x_ticks: list[tuple[float, str, str]] = field(default_factory=list)  # (x, label, anchor)
    empty: bool = True


def _format(value: float, unit: str) -> str:
    """A value as shown on ticks and tooltips."""
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{text}{unit}"


def line_chart(
    labels: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[float | None]]],
    *,
    title: str,
    description: str = "",
    y_min: float = 0,
    y_max: float | None = None,
    unit: str = "",
    width: int = 640,
    height: int = 260,
    ticks: int = 4,
) -> LineChart:
    """A chart of ``series`` — ``(key, label, values)``, one value per label — over the labelled points.

    ``y_max`` defaults to the largest value (at least ``y_min + 1``); ``unit`` is appended to tick
    and tooltip values (e.g. ``"%"``).
    """
    left, top, right, bottom = 48, 12, width - 16, height - 28
    chart = LineChart(width, height, left, top, right, bottom, title, description)
    values = [v for _key, _label, points in series for v in points if v is not None]
    if not labels or not values:
        return chart
    chart.empty = False
    top_value = y_max if y_max is not None else max(max(values), y_min + 1)
    span = (top_value - y_min) or 1
    count = len(labels)

    def x_of(index: int) -> float:
        if count == 1:
            return round((left + right) / 2, 1)
        return round(left + (right - left) * index / (count - 1), 1)

    def y_of(value: float) -> float:
        value = min(max(value, y_min), top_value)
        return round(bottom - (bottom - top) * (value - y_min) / span, 1)

    for position, (key, label, points) in enumerate(series):
        color, dash, stroke = PALETTE[position % len(PALETTE)]
        parts: list[str] = []
        markers = []
        drawing = False
        for index, value in enumerate(points[:count]):
            if value is None:
                drawing = False
                continue
            x, y = x_of(index), y_of(value)
            parts.append(f"L{x} {y}" if drawing else f"M{x} {y}")
            drawing = True
            markers.append((x, y, f"{labels[index]} {label} {_format(value, unit)}"))
        chart.series.append(LineSeries(key, label, color, dash, stroke, "".join(parts), markers))
    chart.y_ticks = [
        (y_of(y_min + span * i / ticks), _format(y_min + span * i / ticks, unit)) for i in range(ticks + 1)
    ]
    # At most about eight x labels, always the first and the last.
    step = max(1, round(count / 8))
    shown = sorted({*range(0, count, step), count - 1})
    chart.x_ticks = [
        (x_of(i), labels[i], "start" if i == 0 and count > 1 else "end" if i == count - 1 and count > 1 else "middle")
        for i in shown
    ]
    return chart
