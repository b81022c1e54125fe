"""Workbench pages of service metrics (服务指标) and supervision (督办).

Thin views: parse, authorize, call :mod:`dgov.services.metrics` / :mod:`dgov.services.supervision`,
render. Both pages are for officials (and administrators); what each sees is the scope of
:func:`dgov.services.metrics.applications_in_scope`. The dashboard shows the headline figures, the
monthly trend (server-side SVG, :mod:`dgov.web.charts`, with its table), one table per grouping
(tabs) and exports the chosen grouping as CSV (``?format=csv``, audited ``services.metrics.export``).
"""

from __future__ import annotations

import csv
import io

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from dgov.kernel.models import Division
from dgov.kernel.services import audit
from dgov.services import metrics, supervision
from dgov.services.models import ServiceItem
from dgov.web import charts, navigation

GROUP_LABELS = {
    "department": _("按部门"),
    "item": _("按事项"),
    "division": _("按区划"),
    "day": _("按日"),
    "week": _("按周"),
    "month": _("按月"),
}
KEY_HEADS = {
    "department": _("部门"),
    "item": _("事项"),
    "division": _("区划"),
    "day": _("日期"),
    "week": _("周"),
    "month": _("月份"),
}
# CSV columns: (figure, Chinese heading); rates as decimals (0.9 = 90%).
CSV_COLUMNS = (
    ("submitted", _("申请量")),
    ("accepted", _("受理量")),
    ("closed", _("办结量")),
    ("rejected", _("不予受理量")),
    ("overdue_open", _("超期在办")),
    ("full_online_rate", _("全程网办率")),
    ("instant_rate", _("即办率")),
    ("on_time_rate", _("按时办结率")),
    ("compression", _("承诺时限压缩比")),
    ("avg_days_used", _("平均办理用时（工作日）")),
    ("avg_legal_days", _("平均法定时限（工作日）")),
    ("avg_visits", _("平均跑动次数")),
    ("satisfaction_rate", _("满意率")),
    ("avg_score", _("平均评分")),
    ("ratings", _("评价数")),
    ("bad", _("差评数")),
)
# The monthly trend chart's lines (rates, drawn in percent).
TREND_SERIES = (
    ("on_time_rate", _("按时办结率")),
    ("full_online_rate", _("全程网办率")),
    ("instant_rate", _("即办率")),
    ("satisfaction_rate", _("满意率")),
)
SUPERVISION_PAGE = 50


def _official(request):
    """The user when an official or administrator; PermissionDenied otherwise."""
    if not navigation.officials_only(request.user):
        raise PermissionDenied(gettext("服务指标和督办仅向工作人员开放。"))
    return request.user


def _options(user) -> dict:
    """Choices of the filter form: departments, divisions and items that have applications in the user's scope."""
    apps = metrics.applications_in_scope(user)
    departments = (
        metrics.departments_in_scope(user)
        .filter(service_applications__in=apps.values("pk"))
        .distinct()
        .order_by("division__code", "code")
        .values_list("code", "name")
    )
    codes = set(apps.order_by().values_list("division__code", flat=True).distinct()[:2000])
    wanted = {code[:4] + "00" for code in codes if len(code) >= 6} | {code[:6] for code in codes if len(code) >= 6}
    divisions = Division.objects.filter(code__in=wanted).order_by("code").values_list("code", "full_name", "name")
    items = (
        ServiceItem.objects.filter(applications__in=apps.values("pk"))
        .distinct()
        .order_by("basic_code")
        .values_list("basic_code", "name")
    )
    return {
        "departments": list(departments),
        "divisions": [(code, full or name) for code, full, name in divisions],
        "items": list(items),
    }


def _percent(value: float | None) -> float | None:
    """A rate in percent, for the chart."""
    return None if value is None else round(value * 100, 1)


def _trend_chart(report: metrics.Report):
    """The monthly trend of the rates as a line chart."""
    labels = [row.label for row in report.rows]
    series = [
        (name, str(label), [_percent(getattr(row.figures, name)) for row in report.rows])
        for name, label in TREND_SERIES
    ]
    return charts.line_chart(
        labels,
        series,
        title=gettext("服务指标月度趋势（%(since)s 至 %(until)s）")
        % {"since": report.filters.since.isoformat(), "until": report.filters.until.isoformat()},
        description=gettext("按时办结率、全程网办率、即办率与满意率的月度变化（百分比）；下表列出各月数值。"),
        y_min=0,
        y_max=100,
        unit="%",
    )


def _csv(report: metrics.Report, user) -> HttpResponse:
    """The grouping's table as CSV (UTF-8 with BOM, so spreadsheet programs read the Chinese)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([gettext("代码"), str(KEY_HEADS[report.group])] + [str(head) for _name, head in CSV_COLUMNS])

    def line(key: str, label: str, figures: metrics.Figures) -> list:
        data = figures.as_dict()
        return [key, label] + ["" if data[name] is None else data[name] for name, _head in CSV_COLUMNS]

    for row in report.rows:
        writer.writerow(line(row.key, row.label, row.figures))
    writer.writerow(line("", gettext("合计"), report.total))
    with transaction.atomic():
        audit.record(
            "services.metrics.export",
            actor=user,
            detail={"group": report.group, **report.filters.as_dict(), "rows": len(report.rows)},
        )
    name = f"service-metrics-{report.group}-{report.filters.since:%Y%m%d}-{report.filters.until:%Y%m%d}.csv"
    response = HttpResponse("\ufeff" + buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@login_required
def dashboard(request):
    """服务指标: headline figures, the monthly trend, a table per grouping (tabs), CSV export."""
    user = _official(request)
    params = request.GET
    group = params.get("group", "department")
    if group not in metrics.GROUPS:
        group = "department"
    values = {name: params.get(name, "").strip() for name in ("from", "to", "department", "division", "item")}
    errors: dict = {}
    try:
        filters = metrics.parse_filters(
            actor=user,
            since=values["from"],
            until=values["to"],
            department=values["department"],
            division=values["division"],
            item=values["item"],
        )
    except ValidationError as exc:
        errors = exc.message_dict
        filters = metrics.parse_filters(actor=user)
    report = metrics.compute(user, group=group, filters=filters)
    if params.get("format") == "csv" and not errors:
        return _csv(report, user)
    trend = report if group == "month" else metrics.compute(user, group="month", filters=filters)
    query = params.copy()
    query.pop("group", None)
    query.pop("format", None)
    context = {
        "report": report,
        "total": report.total,
        "filters": filters,
        "values": values,
        "shown_from": values["from"] if errors else filters.since.isoformat(),
        "shown_to": values["to"] if errors else filters.until.isoformat(),
        "errors": errors,
        "group": group,
        "groups": [(name, GROUP_LABELS[name]) for name in metrics.GROUPS],
        "key_head": KEY_HEADS[group],
        "trend": trend,
        "trend_chart": _trend_chart(trend),
        "base_query": query.urlencode(),
        **_options(user),
    }
    return render(request, "services/metrics.html", context, status=400 if errors else 200)


@login_required
def supervision_list(request):
    """超期/临期办件: the open overdue and due-soon applications of the user's scope, sortable, with 督办."""
    user = _official(request)
    state = request.GET.get("state", "all")
    sort = request.GET.get("sort", "days")
    department = request.GET.get("department", "").strip()[:32]
    try:
        found = supervision.due_applications(user, state=state, sort=sort, department=department)
    except ValidationError as exc:
        messages.error(request, "；".join(exc.messages))
        state, sort = "all", "days"
        found = supervision.due_applications(user, department=department)
    page = Paginator(found, SUPERVISION_PAGE).get_page(request.GET.get("page"))
    rows = supervision.rows_of(page.object_list)
    for row in rows:
        row["may_supervise"] = supervision.may_supervise(user, row["app"])
    departments = metrics.departments_in_scope(user).order_by("division__code", "code").values_list("code", "name")
    return render(
        request,
        "services/supervision.html",
        {
            "page": page,
            "rows": rows,
            "state": state,
            "sort": sort,
            "department": department,
            "states": (("all", _("全部")), ("overdue", _("超期")), ("warned", _("临期"))),
            "departments": departments[:500] if metrics.sees_all(user) else departments,
        },
    )


@login_required
@require_POST
def supervise(request, number: str):
    """督办 one application (POST, with an optional note); another scope's application is a 404."""
    user = _official(request)
    app = supervision.visible_application(user, number)
    if app is None:
        raise Http404
    try:
        supervision.supervise(app, actor=user, note=request.POST.get("note", ""))
    except ValidationError as exc:
        messages.error(request, "；".join(exc.messages))
    else:
        messages.success(request, gettext("已督办办件 %(number)s，并通知承办部门。") % {"number": app.number})
    return redirect("services:supervision")
