"""The service metrics API (政务服务指标接口) at /api/v1/services/metrics.

``GET /api/v1/services/metrics?group=department&from=2026-06-01&to=2026-11-30&department=&division=&item=``
answers the figures of the caller's scope (:mod:`dgov.services.metrics`): the total and one row
per group (``item``, ``department``, ``division``, ``day``, ``week``, ``month``). Callers: officials
and administrators (session or bearer token); others get 403. A bad parameter (unknown group,
malformed or reversed dates, a department outside the caller's scope, an unknown division or item)
is a 400 problem+json with ``errors[].loc = [parameter]``.
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from dgov.api.auth import bearer_auth, session_auth
from dgov.services import metrics

router = Router(tags=["services"], auth=[bearer_auth, session_auth])


class MetricsQuery(Schema):
    """Grouping and filters of the metrics."""

    group: str = Field("department", max_length=100, description="item / department / division / day / week / month")
    from_: str = Field("", alias="from", max_length=100, description="开始日期 YYYY-MM-DD（默认近六个月）")
    to: str = Field("", max_length=100, description="结束日期 YYYY-MM-DD（默认今天）")
    department: str = Field("", max_length=100, description="部门编码")
    division: str = Field("", max_length=100, description="行政区划代码")
    item: str = Field("", max_length=100, description="事项基本编码")


class FiguresOut(Schema):
    """The figures of one group (rates as decimals, null when there is nothing to divide by)."""

    submitted: int
    accepted: int
    closed: int
    approved: int
    denied: int
    rejected: int
    overdue_open: int
    ratings: int
    bad: int
    full_online_rate: float | None
    instant_rate: float | None
    on_time_rate: float | None
    compression: float | None
    avg_days_used: float | None
    avg_legal_days: float | None
    used_vs_legal: float | None
    avg_visits: float | None
    satisfaction_rate: float | None
    avg_score: float | None


class RowOut(FiguresOut):
    """One group: its key (code, or the first day of a period) and label."""

    key: str
    label: str


class MetricsOut(Schema):
    """The metrics of the caller's scope under the filters."""

    group: str
    from_: str = Field(..., alias="from")
    to: str
    department: str | None
    division: str | None
    item: str | None
    total: FiguresOut
    rows: list[RowOut]


@router.get("", response=MetricsOut, by_alias=True, summary="政务服务指标")
def metrics_view(request: HttpRequest, params: Query[MetricsQuery]):
    """The figures of the caller's scope, in total and per group; 400 problem+json on bad parameters."""
    user = request.auth
    filters = metrics.parse_filters(
        actor=user,
        since=params.from_,
        until=params.to,
        department=params.department,
        division=params.division,
        item=params.item,
    )
    return metrics.compute(user, group=params.group, filters=filters).as_dict()
