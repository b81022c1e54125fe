"""Scores and grades (评分与等级) from rule results.

* A rule's **pass rate** is ``(checked − failed) / checked × 100``; a rule that checked nothing
  (an empty table, a pattern on a column that is always empty) has no rate and does not count.
* A **dimension score** is the weight-averaged pass rate of the dimension's rules.
* An **overall score** (of a registry's run, a resource, a department) is the average of its
  dimension scores weighted by ``settings.QUALITY_DIMENSION_WEIGHTS`` (default: every dimension
  1), over the dimensions that have a score — so a dimension with many rules does not drown the
  others, and a province can stress, say, 准确性 by configuration.
* The **grade** is A (≥ 95), B (≥ 85), C (≥ 75), D (≥ 60), else E.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings

from dgov.quality.models import Dimension

__all__ = ["GRADES", "Summary", "grade", "pass_rate", "summarize"]

GRADES = (("A", Decimal(95)), ("B", Decimal(85)), ("C", Decimal(75)), ("D", Decimal(60)))
LOWEST_GRADE = "E"
_CENT = Decimal("0.01")


def _round(value: Decimal) -> Decimal:
    """Two decimal places, half up."""
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


def pass_rate(checked: int, failed: int) -> Decimal | None:
    """The pass rate in percent (two decimals), or None when nothing was checked."""
    if not checked:
        return None
    return _round(Decimal(checked - failed) * 100 / Decimal(checked))


def grade(score: Decimal | float | None) -> str:
    """The five-level grade of a score (empty for no score)."""
    if score is None:
        return ""
    value = Decimal(str(score))
    for letter, threshold in GRADES:
        if value >= threshold:
            return letter
    return LOWEST_GRADE


def dimension_weights() -> dict[str, Decimal]:
    """The weight of each dimension in overall scores (settings.QUALITY_DIMENSION_WEIGHTS, default 1)."""
    configured = getattr(settings, "QUALITY_DIMENSION_WEIGHTS", None) or {}
    return {dimension: Decimal(str(configured.get(dimension, 1))) for dimension in Dimension.values}


@dataclass
class Summary:
    """A score with its grade, dimension scores and how many rules it was made of (and how many had a rate)."""

    score: Decimal | None = None
    grade: str = ""
    dimensions: dict[str, Decimal] = field(default_factory=dict)
    rules: int = 0
    scored: int = 0
    checked: int = 0
    failed: int = 0

    def as_dict(self) -> dict:
        """JSON-able form (scores as floats)."""
        return {
            "score": float(self.score) if self.score is not None else None,
            "grade": self.grade,
            "dimensions": {key: float(value) for key, value in self.dimensions.items()},
            "rules": self.rules,
            "scored": self.scored,
            "checked": self.checked,
            "failed": self.failed,
        }


def summarize(items: Iterable) -> Summary:
    """Summarize results: objects (or tuples) with ``dimension``, ``weight``, ``checked``, ``failed``."""
    sums: dict[str, tuple[Decimal, Decimal]] = {}
    summary = Summary()
    for item in items:
        if isinstance(item, tuple):
            dimension, weight, checked, failed = item
        else:
            dimension, weight, checked, failed = item.dimension, item.weight, item.checked, item.failed
        summary.rules += 1
        summary.checked += checked
        summary.failed += failed
        rate = pass_rate(checked, failed)
        if rate is None or not weight:
            continue
        summary.scored += 1
        total, weights = sums.get(dimension, (Decimal(0), Decimal(0)))
        sums[dimension] = (total + rate * weight, weights + weight)
    order = {value: index for index, value in enumerate(Dimension.values)}
    summary.dimensions = {
        dimension: _round(total / weights)
        for dimension, (total, weights) in sorted(sums.items(), key=lambda kv: order.get(kv[0], 99))
    }
    configured = dimension_weights()
    weighted = [(score, configured.get(dimension, Decimal(1))) for dimension, score in summary.dimensions.items()]
    weight_sum = sum((w for _s, w in weighted), Decimal(0))
    if weighted and weight_sum > 0:
        summary.score = _round(sum((s * w for s, w in weighted), Decimal(0)) / weight_sum)
        summary.grade = grade(summary.score)
    return summary
