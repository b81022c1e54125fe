"""Server-rendered trend charts (趋势图) of quality scores: the geometry of an inline SVG, no script.

:func:`trend_chart` turns a :class:`dgov.quality.trends.Trend` into coordinates and SVG path data
that ``quality/_trend.html`` writes out: the overall score and each dimension's score as **step
lines** (a score holds until the next run changes it, so the line stays level between snapshots
and runs on to the end of the period), a marker with a tooltip on each snapshot of the overall
score, a y axis fitted to the values (never above 100, never below 0) and dated x ticks. Lines
differ by dash pattern as well as colour, so they can be told apart without colour vision; the
values are also given as a table beside the chart (:func:`table_rows`) for screen readers and
for anyone who wants numbers.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import replace
from decimal import Decimal

from django.utils import timezone
from django.utils.translation import gettext as _

from dgov.quality.models import Dimension
from dgov.quality.trends import Point, Trend
from dgov.web.charts import LineChart, LineSeries

__all__ = ["Chart", "Series", "table_rows", "trend_chart"]

# (stroke colour, dash pattern, width) per series; the overall score is the heavy solid line.
STYLES = {
    "total": ("#0b4a8f", "", 3),
    Dimension.CONFORMITY: ("#1b6b3a", "", 1.5),
    Dimension.COMPLETENESS: ("#b3591f", "6 3", 1.5),
    Dimension.ACCURACY: ("#7a1fa2", "2 3", 1.5),
    Dimension.CONSISTENCY: ("#b3181f", "8 3 2 3", 1.5),
    Dimension.TIMELINESS: ("#00796b", "4 4", 1.5),
    Dimension.ACCESSIBILITY: ("#5b6675", "1 3", 1.5),
}


# The geometry is the shared line chart's (dgov.web.charts); only the step lines are drawn here.
Series = LineSeries
Chart = LineChart


def _fmt(value: Decimal | float | None) -> str:
    """A score as text (two decimals), or a dash."""
    return "—" if value is None else f"{Decimal(str(value)):.2f}"


def _signed(value: Decimal | None) -> str:
    """A change with its sign."""
    return "—" if value is None else f"{value:+.2f}"


def _observations(trend: Trend) -> list[tuple[Point, bool]]:
    """(point, in the period): the baseline moved to the period's start (the score then), then the snapshots."""
    seen = []
    if trend.baseline is not None:
        seen.append((replace(trend.baseline, day=trend.since), False))
    return seen + [(point, True) for point in trend.points]


def trend_chart(trend: Trend, *, width: int = 640, height: int = 260, today: datetime.date | None = None) -> Chart:
    """The chart of a trend: overall and per-dimension step lines over the period."""
    left, top, right, bottom = 44, 12, width - 12, height - 28
    labels = dict(Dimension.choices)
    comparison = trend.comparison
    title = _("%(name)s 数据质量得分趋势（%(since)s 至 %(until)s）") % {
        "name": trend.name,
        "since": trend.since.isoformat(),
        "until": trend.until.isoformat(),
    }
    chart = Chart(width, height, left, top, right, bottom, title, "")
    observations = _observations(trend)
    values = [p.score for p, _real in observations if p.score is not None]
    values += [v for p, _real in observations for v in p.dimensions.values()]
    if not values:
        chart.description = _("该期间没有评分快照。")
        return chart
    chart.empty = False
    chart.description = _(
        "综合得分由 %(start)s 变为 %(end)s（%(change)s），共 %(count)d 次快照；下表列出各日得分。"
    ) % {
        "start": _fmt(comparison.start.score if comparison.start else None),
        "end": _fmt(comparison.end.score if comparison.end else None),
        "change": _signed(comparison.change),
        "count": len(trend.points),
    }
    low = max(0, math.floor((float(min(values)) - 5) / 10) * 10)
    span_days = max(1, (trend.until - trend.since).days)
    end_day = min(trend.until, today or timezone.localdate())

    def x_of(day: datetime.date) -> float:
        return round(left + (right - left) * (day - trend.since).days / span_days, 1)

    def y_of(value: Decimal) -> float:
        return round(bottom - (bottom - top) * (float(value) - low) / (100 - low), 1)

    x_end = max(x_of(end_day), x_of(observations[-1][0].day))
    keys = ["total"] + [d for d in Dimension.values if any(d in p.dimensions for p, _real in observations)]
    for key in keys:
        color, dash, stroke = STYLES[key]
        parts: list[str] = []
        markers = []
        held = False
        for point, real in observations:
            value = point.score if key == "total" else point.dimensions.get(key)
            x = x_of(point.day)
            if value is None:
                if held:
                    parts.append(f"H{x}")
                held = False
                continue
            y = y_of(value)
            parts.append(f"H{x}V{y}" if held else f"M{x} {y}")
            held = True
            if key == "total" and real:
                markers.append((x, y, f"{point.day.isoformat()} {_('综合得分')} {_fmt(value)} {point.grade}"))
        if held:
            parts.append(f"H{x_end}")
        label = _("综合得分") if key == "total" else str(labels[key])
        chart.series.append(Series(key, label, color, dash, stroke, "".join(parts), markers))
    ticks = 4
    chart.y_ticks = [
        (y_of(Decimal(low + (100 - low) * i / ticks)), f"{low + (100 - low) * i / ticks:g}") for i in range(ticks + 1)
    ]
    middle = trend.since + datetime.timedelta(days=span_days // 2)
    chart.x_ticks = [
        (x_of(trend.since), trend.since.isoformat(), "start"),
        (x_of(middle), middle.isoformat(), "middle"),
        (x_of(trend.until), trend.until.isoformat(), "end"),
    ]
    return chart


def table_rows(trend: Trend) -> list[dict]:
    """The chart's values as table rows, oldest first: the baseline (flagged) and each snapshot."""
    seen = [(trend.baseline, True)] if trend.baseline is not None else []
    seen += [(point, False) for point in trend.points]
    return [
        {
            "day": point.day,
            "baseline": is_baseline,
            "score": point.score,
            "grade": point.grade,
            "dimensions": [point.dimensions.get(dimension) for dimension in Dimension.values],
            "rules": point.rules,
            "failed": point.failed,
            "open_orders": point.open_orders,
        }
        for point, is_baseline in seen
    ]
