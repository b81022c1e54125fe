"""Exchange monitoring (调用监控): what providers, consumers and data administrators read off the exchange log.

Every figure is an aggregate query (``GROUP BY``) over :class:`~dgov.exchange.models.ExchangeLogEntry`
restricted to a *scope* and a *period* of local (Asia/Shanghai) days; no row of the log is
loaded into Python, and no personal value is involved (the log holds none).

Scopes
    * **department** — entries where the actor's department is the consumer or the provider
      (``role`` narrows it to one side), the same rows the department's log page lists;
    * **platform** — every department the actor covers: **data administrators** (officials of a
      大数据局, ``catalog`` department kind ``DSJ``) see the departments whose division lies in
      their own (the provincial bureau: the whole province, a city bureau: its city and
      counties), platform administrators see everything. ``department`` narrows the view to one
      department. Anyone else is refused (PermissionDenied).

Figures: totals (calls, served, refused ``denied``, failed ``error``), calls per day (every day of
the period, zero where nothing happened), top consumers (department and client), top resources,
top providers, and refusals and failures broken down by code.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied
from django.db.models import Count, Max, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from dgov.catalog import services as catalog_services
from dgov.catalog.models import InformationResource
from dgov.exchange.models import ExchangeLogEntry
from dgov.kernel.models import Organization
from dgov.kernel.services.divisions import scope_prefix
from dgov.registry import services as registry_services

__all__ = [
    "DEFAULT_DAYS",
    "MAX_DAYS",
    "MonitorScope",
    "Period",
    "can_monitor_platform",
    "code_label",
    "entries_in",
    "parse_period",
    "scope_for",
    "summarize",
]

DEFAULT_DAYS = 14  # the period shown when none is asked for: the last two weeks
MAX_DAYS = 366  # the longest period one page aggregates (a year, leap day included)
TOP = 10  # rows of each "top" table
ROLES = ("consumer", "provider")

_OK, _DENIED, _ERROR = ExchangeLogEntry.Result.OK, ExchangeLogEntry.Result.DENIED, ExchangeLogEntry.Result.ERROR

# What the gateway's refusal and failure codes mean, for people (the code itself is shown beside).
CODE_LABELS = {
    "client_token_required": gettext_lazy("未使用部门应用的客户端凭证"),
    "scope_missing": gettext_lazy("凭证缺少调用权限范围"),
    "rate_limited": gettext_lazy("调用过于频繁（限流）"),
    "resource_not_found": gettext_lazy("信息资源不存在或未发布"),
    "no_grant": gettext_lazy("没有共享授权"),
    "grant_revoked": gettext_lazy("共享授权已撤销"),
    "grant_expired": gettext_lazy("共享授权已过期"),
    "item_not_granted": gettext_lazy("信息项未获授权"),
    "too_large": gettext_lazy("应答超出大小或记录数限制"),
    "no_data_service": gettext_lazy("未提供接口数据服务"),
    "record_not_found": gettext_lazy("未找到对应记录"),
    "bad_operator": gettext_lazy("不支持的核验操作"),
    "bad_value": gettext_lazy("核验值格式不正确"),
    "timeout": gettext_lazy("推送超时"),
}


def code_label(code: str) -> str:
    """A person's reading of a result code (empty for an unknown code: the code speaks for itself)."""
    if code in CODE_LABELS:
        return str(CODE_LABELS[code])
    if code.startswith("http_"):
        return _("接收方返回 HTTP %(status)s") % {"status": code[5:]}
    if code.startswith("connection"):
        return _("无法连接接收方")
    return ""


# --- Period --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """An inclusive range of local days, and what was corrected in the asked-for one (for the page)."""

    since: datetime.date
    until: datetime.date
    notes: tuple[str, ...] = ()

    @property
    def days(self) -> list[datetime.date]:
        """Every day of the period, oldest first."""
        return [self.since + datetime.timedelta(days=n) for n in range((self.until - self.since).days + 1)]

    def bounds(self) -> tuple[datetime.datetime, datetime.datetime]:
        """The first moment of ``since`` and the first moment after ``until`` (aware, local time)."""
        start = datetime.datetime.combine(self.since, datetime.time.min)
        end = datetime.datetime.combine(self.until + datetime.timedelta(days=1), datetime.time.min)
        return timezone.make_aware(start), timezone.make_aware(end)


def _date(text: str | None) -> datetime.date | None:
    """An ISO date, or None for an empty or malformed one."""
    try:
        return datetime.date.fromisoformat((text or "").strip()) if (text or "").strip() else None
    except ValueError:
        return None


def parse_period(since: str | None, until: str | None, *, today: datetime.date | None = None) -> Period:
    """The period asked for by two ISO dates (either may be empty), corrected into 1..MAX_DAYS days.

    Defaults: ``until`` today, ``since`` DEFAULT_DAYS − 1 days before ``until``. A reversed range
    is swapped; a range longer than MAX_DAYS keeps its end and is cut to MAX_DAYS days.
    """
    today = today or timezone.localdate()
    notes = []
    start, end = _date(since), _date(until)
    if (since and start is None) or (until and end is None):
        notes.append(_("日期格式不正确，已按默认范围查询。"))
    end = end or today
    start = start or end - datetime.timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        start, end = end, start
        notes.append(_("起始日期晚于截止日期，已对调。"))
    if (end - start).days + 1 > MAX_DAYS:
        start = end - datetime.timedelta(days=MAX_DAYS - 1)
        notes.append(_("统计范围最长 %(days)s 天，已从截止日期向前截取。") % {"days": MAX_DAYS})
    return Period(start, end, tuple(notes))


# --- Scope ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MonitorScope:
    """Which exchange-log entries a monitoring page aggregates, and how to name that set."""

    kind: str  # "department" or "platform"
    filter: Q
    role: str = ""
    department: Organization | None = None  # the actor's department, or the one a platform view narrows to
    covered: str = ""  # the data administrator's division prefix ("" for a platform administrator)
    empty: bool = False


def can_monitor_platform(actor) -> bool:
    """Whether the actor may see the platform-wide view: a data administrator or a platform administrator."""
    return registry_services.is_admin(actor) or catalog_services.is_data_admin(actor)


def _side(code: str, role: str) -> Q:
    """Entries where the department with this code is the consumer, the provider or (no role) either."""
    if role == "consumer":
        return Q(consumer_code=code)
    if role == "provider":
        return Q(provider_code=code)
    return Q(consumer_code=code) | Q(provider_code=code)


def scope_for(actor, *, platform: bool = False, role: str = "", department_code: str = "") -> MonitorScope:
    """The entries an actor may monitor: their department's (``role``-narrowed), or the platform view.

    ``platform`` needs :func:`can_monitor_platform` (PermissionDenied otherwise); a data
    administrator's view covers the departments of their division. ``department_code`` narrows a
    platform view to one department (ignored in the department view: a department sees only itself).
    """
    role = role if role in ROLES else ""
    if not platform:
        department = registry_services.department_of(actor)
        if department is None:
            return MonitorScope("department", Q(), role=role, empty=True)
        return MonitorScope("department", _side(department.code, role), role=role, department=department)
    if not can_monitor_platform(actor):
        raise PermissionDenied(_("全平台监控仅向数据管理员开放。"))
    scope, covered = Q(), ""
    if not registry_services.is_admin(actor):
        covered = scope_prefix(registry_services.department_of(actor).division.code)
        codes = Organization.objects.filter(division__code__startswith=covered).values("code")
        scope = Q(consumer_code__in=codes) | Q(provider_code__in=codes)
    narrowed = None
    department_code = (department_code or "").strip()
    if department_code:
        narrowed = Organization.objects.filter(code=department_code).first()
        if narrowed is None:
            return MonitorScope("platform", Q(), role=role, covered=covered, empty=True)
        scope &= _side(narrowed.code, role)
    elif role:
        role = ""  # a role means something only for one department
    return MonitorScope("platform", scope, role=role, department=narrowed, covered=covered)


def entries_in(scope: MonitorScope, period: Period) -> QuerySet[ExchangeLogEntry]:
    """The scope's entries in the period (unordered: every use aggregates)."""
    if scope.empty:
        return ExchangeLogEntry.objects.none()
    start, end = period.bounds()
    return ExchangeLogEntry.objects.filter(scope.filter, at__gte=start, at__lt=end).order_by()


# --- Figures -------------------------------------------------------------------------------------


def _counts() -> dict:
    """The aggregate columns every table shares: calls, served, refused, failed."""
    return {
        "total": Count("seq"),
        "ok": Count("seq", filter=Q(result=_OK)),
        "denied": Count("seq", filter=Q(result=_DENIED)),
        "error": Count("seq", filter=Q(result=_ERROR)),
    }


def _pct(part: int, whole: int) -> str:
    """``part`` as a percentage of ``whole``, one decimal, as text for SVG and CSS (never localized)."""
    return f"{(100.0 * part / whole) if whole else 0.0:.1f}"


def _with_bars(rows: list[dict]) -> list[dict]:
    """Add bar widths (percent of the largest row; served, refused, failed stacked) and the failure rate."""
    top = max((row["total"] for row in rows), default=0)
    for row in rows:
        row["bar_ok"], row["bar_denied"], row["bar_error"] = (
            _pct(row["ok"], top),
            _pct(row["denied"], top),
            _pct(row["error"], top),
        )
        row["bar_denied_x"] = _pct(row["ok"], top)
        row["bar_error_x"] = _pct(row["ok"] + row["denied"], top)
        row["failed"] = row["denied"] + row["error"]
        row["failure_rate"] = _pct(row["failed"], row["total"])
    return rows


@dataclass
class Summary:
    """The figures of one monitoring page."""

    totals: dict
    daily: list[dict]
    daily_max: int
    consumers: list[dict]
    resources: list[dict]
    providers: list[dict]
    failures: list[dict]
    names: dict[str, str] = field(default_factory=dict)


def _daily(entries: QuerySet[ExchangeLogEntry], period: Period) -> tuple[list[dict], int]:
    """Calls per local day over the period (every day, zero-filled), with column heights for the chart."""
    grouped = (
        entries.annotate(day=TruncDate("at", tzinfo=timezone.get_current_timezone()))
        .values("day")
        .annotate(**_counts())
        .order_by("day")
    )
    by_day = {row["day"]: row for row in grouped}
    days = []
    for day in period.days:
        row = by_day.get(day) or {"day": day, "total": 0, "ok": 0, "denied": 0, "error": 0}
        days.append(dict(row))
    top = max((row["total"] for row in days), default=0)
    for n, row in enumerate(days):
        # The chart's columns: x in day units, heights in percent of the busiest day, stacked from the bottom.
        row["x"] = f"{n + 0.1:.1f}"
        heights = [(100.0 * row[key] / top) if top else 0.0 for key in ("ok", "denied", "error")]
        bottom = 100.0
        for key, height in zip(("ok", "denied", "error"), heights, strict=True):
            bottom -= height
            row[f"h_{key}"], row[f"y_{key}"] = f"{height:.2f}", f"{bottom:.2f}"
        row["failed"] = row["denied"] + row["error"]
    return days, top


def _names(codes_of_departments: set[str], codes_of_resources: set[str]) -> dict[str, str]:
    """Names of the departments and resources the tables mention, looked up in two queries."""
    names = dict(
        Organization.objects.filter(code__in=[c for c in codes_of_departments if c]).values_list("code", "name")
    )
    resources = dict(
        InformationResource.objects.filter(code__in=[c for c in codes_of_resources if c]).values_list("code", "name")
    )
    return {**{f"org:{k}": v for k, v in names.items()}, **{f"res:{k}": v for k, v in resources.items()}}


def summarize(scope: MonitorScope, period: Period, *, top: int = TOP) -> Summary:
    """The monitoring figures of a scope over a period: seven aggregate queries and two name look-ups."""
    entries = entries_in(scope, period)
    totals = entries.aggregate(**_counts(), consumers=Count("consumer_code", distinct=True))
    totals["failed"] = totals["denied"] + totals["error"]
    totals["failure_rate"] = _pct(totals["failed"], totals["total"])
    daily, daily_max = _daily(entries, period)
    consumers = _with_bars(
        list(
            entries.values("consumer_code", "client_id")
            .annotate(**_counts(), last_at=Max("at"))
            .order_by("-total", "consumer_code", "client_id")[:top]
        )
    )
    resources = _with_bars(
        list(
            # A call refused before its resource was looked up names no provider: Max picks the named one.
            entries.values("resource_code")
            .annotate(**_counts(), consumers=Count("consumer_code", distinct=True), provider_code=Max("provider_code"))
            .order_by("-total", "resource_code")[:top]
        )
    )
    providers = []
    if scope.kind == "platform":
        providers = _with_bars(
            list(entries.values("provider_code").annotate(**_counts()).order_by("-total", "provider_code")[:top])
        )
    failures = list(
        entries.exclude(result=_OK)
        .values("code", "result")
        .annotate(total=Count("seq"), status=Max("status"), consumers=Count("consumer_code", distinct=True))
        .annotate(last_at=Max("at"))
        .order_by("-total", "code")
    )
    most = max((row["total"] for row in failures), default=0)
    for row in failures:
        row["label"] = code_label(row["code"])
        row["bar"] = _pct(row["total"], most)
        row["share"] = _pct(row["total"], totals["failed"])
    departments = {r["consumer_code"] for r in consumers} | {r["provider_code"] for r in resources + providers}
    if scope.department is not None:
        departments.add(scope.department.code)
    names = _names(departments, {r["resource_code"] for r in resources})
    for row in consumers:
        row["name"] = names.get(f"org:{row['consumer_code']}", "")
    for row in resources:
        row["name"] = names.get(f"res:{row['resource_code']}", "")
        row["provider_name"] = names.get(f"org:{row['provider_code']}", "")
    for row in providers:
        row["name"] = names.get(f"org:{row['provider_code']}", "")
    return Summary(totals, daily, daily_max, consumers, resources, providers, failures, names)
