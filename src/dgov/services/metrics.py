"""Service metrics of 一网通办 (政务服务指标), computed from the applications and their event log.

Nothing here is typed in: every figure is counted with aggregate SQL (``GROUP BY`` over the
application rows, their :class:`~dgov.services.models_process.ApplicationEvent` log and the
:class:`~dgov.services.models_cases.ServiceRating` rows), on SQLite and PostgreSQL alike. Python
only walks the grouped rows: the working-day calendar (weekends, holidays, 调休) lives in
:mod:`dgov.kernel.services.calendar`, so day-based figures are grouped by *day* in SQL and the
calendar is applied once per distinct day, never once per application.

Definitions (also in ``docs/services.md``). "办结" (closed) means approved or denied; 不予受理
(rejected) is counted on its own. Each figure is counted on the date that makes it final:

========================  ==========================================================================
figure                    definition (period filter on …)
========================  ==========================================================================
submitted 申请量            applications submitted (``submitted_at``)
accepted 受理量             applications accepted (``accepted_at``)
closed 办结量               applications approved or denied (``completed_at``)
rejected 不予受理量          applications rejected at acceptance (``completed_at``)
overdue_open 超期在办       open applications past their promised due date today: flagged overdue by
                          the SLA clock, or not paused (补正) and ``promised_due`` < today. A snapshot
                          of today, not limited by the period; in period groupings a row counts those
                          whose promised due date falls in it
full_online_rate 全程网办率  closed applications submitted online, with no in-person visit (``visit``
                          event) and the result delivered electronically / closed (``completed_at``)
instant_rate 即办率          closed applications completed on the working day they were submitted —
                          the completion day is not after the submission day, or, for a submission on
                          a non-working day, not after the next working day (``add_working_days(day,
                          0)``, the due date of an item promising 0 days) / closed (``completed_at``)
compression 承诺时限压缩比    1 − Σ promised limit / Σ legal limit of the items of the applications
                          submitted (``submitted_at``), i.e. weighted by applications
avg_days_used 平均办理用时     working days from the submission day to the completion day, less the days
                          paused for 补正, averaged over the closed (``completed_at``); shown beside
                          ``avg_legal_days``, the average legal limit of the same applications
on_time_rate 按时办结率       closed on or before ``promised_due`` (which moved by the 补正 pause) /
                          closed (``completed_at``)
avg_visits 平均跑动次数       ``visit`` events (跑动一次 each, whenever they happened) of the closed
                          applications / closed (``completed_at``)
satisfaction_rate 满意率     ratings scored 4 or 5 / ratings (rating ``created_at``); also
                          ``avg_score`` and ``bad`` 差评 (score 1 or 2)
========================  ==========================================================================

Groupings: ``item``, ``department``, ``division`` (one level below the division filter: a
province's cities — the first four digits of the application's division code — a city's
counties; the province's or city's own applications form the row 省本级 / 市本级), and periods
``day`` / ``week`` (ISO, from Monday) / ``month``, each figure in the period of its own date.

Scope (who sees what, :func:`applications_in_scope`): platform administrators, system actors and
the provincial 大数据局 (DSJ) / 政务服务管理办公室 (ZWFW) see every application; a city's DSJ /
ZWFW the applications of the departments in its city (its counties included); any other official
those of their own department. Everyone else is refused.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, DateField, Exists, F, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import Substr, Trunc, TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from dgov.kernel.models import Division, Organization
from dgov.kernel.services import calendar
from dgov.kernel.services.divisions import scope_prefix
from dgov.registry.services import department_of, is_admin
from dgov.services.catalogue import ADMIN_KINDS
from dgov.services.models import ServiceItem
from dgov.services.models_cases import ServiceRating
from dgov.services.models_process import Application, ApplicationEvent

__all__ = [
    "GROUPS",
    "PERIOD_GROUPS",
    "MAX_DAYS",
    "Figures",
    "Filters",
    "Report",
    "Row",
    "applications_in_scope",
    "compute",
    "departments_in_scope",
    "overdue_q",
    "parse_filters",
    "scope_q",
    "sees_all",
]

Status = Application.Status
CLOSED = (Status.APPROVED, Status.DENIED)  # 办结
GROUPS = ("item", "department", "division", "day", "week", "month")
PERIOD_GROUPS = ("day", "week", "month")
MAX_DAYS = 1830  # five years: the longest period one request may ask for
DEFAULT_MONTHS = 6
# A submission on a non-working day is 即办 when completed by the next working day; no run of
# non-working days is longer than this, so pairs further apart need not be looked at.
INSTANT_WINDOW = datetime.timedelta(days=16)


# --- Values ------------------------------------------------------------------------------------------


def _ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, or None when there is nothing to divide by."""
    return numerator / denominator if denominator else None


@dataclass
class Figures:
    """The counts of one group; the rates are properties over them (None when the base is empty)."""

    submitted: int = 0
    accepted: int = 0
    closed: int = 0
    approved: int = 0
    denied: int = 0
    rejected: int = 0
    overdue_open: int = 0
    full_online: int = 0
    instant: int = 0
    on_time: int = 0
    promised_days: int = 0  # Σ promised limit over the submitted
    legal_days: int = 0  # Σ legal limit over the submitted
    used_days: int = 0  # Σ working days used (pauses deducted) over the closed
    closed_legal_days: int = 0  # Σ legal limit over the closed
    visits: int = 0
    ratings: int = 0
    satisfied: int = 0
    bad: int = 0
    score_total: int = 0

    @property
    def full_online_rate(self) -> float | None:
        """全程网办率."""
        return _ratio(self.full_online, self.closed)

    @property
    def instant_rate(self) -> float | None:
        """即办率."""
        return _ratio(self.instant, self.closed)

    @property
    def on_time_rate(self) -> float | None:
        """按时办结率."""
        return _ratio(self.on_time, self.closed)

    @property
    def compression(self) -> float | None:
        """承诺时限压缩比: 1 − Σ promised / Σ legal over the submitted."""
        ratio = _ratio(self.promised_days, self.legal_days)
        return None if ratio is None else 1 - ratio

    @property
    def avg_days_used(self) -> float | None:
        """Average working days used by the closed (pauses for 补正 deducted)."""
        return _ratio(self.used_days, self.closed)

    @property
    def avg_legal_days(self) -> float | None:
        """Average legal limit of the closed."""
        return _ratio(self.closed_legal_days, self.closed)

    @property
    def used_vs_legal(self) -> float | None:
        """Working days used as a share of the legal limit (closed applications)."""
        return _ratio(self.used_days, self.closed_legal_days)

    @property
    def avg_visits(self) -> float | None:
        """平均跑动次数 per closed application."""
        return _ratio(self.visits, self.closed)

    @property
    def satisfaction_rate(self) -> float | None:
        """满意率: ratings of 4 or 5 / ratings."""
        return _ratio(self.satisfied, self.ratings)

    @property
    def avg_score(self) -> float | None:
        """Average rating score (1–5)."""
        return _ratio(self.score_total, self.ratings)

    RATES = (
        "full_online_rate",
        "instant_rate",
        "on_time_rate",
        "compression",
        "avg_days_used",
        "avg_legal_days",
        "used_vs_legal",
        "avg_visits",
        "satisfaction_rate",
        "avg_score",
    )
    COUNTS = ("submitted", "accepted", "closed", "approved", "denied", "rejected", "overdue_open", "ratings", "bad")

    def add(self, other: Figures) -> None:
        """Add another group's counts to these (every field is a count or a sum, so groups add up)."""
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict:
        """JSON-able form: the counts and the rates (four decimals, None when undefined)."""
        answer: dict = {name: getattr(self, name) for name in self.COUNTS}
        for name in self.RATES:
            value = getattr(self, name)
            answer[name] = None if value is None else round(value, 4)
        return answer


@dataclass
class Row:
    """One line of a grouping: its key (code, ISO day …), its label and its figures."""

    key: str
    label: str
    figures: Figures


@dataclass(frozen=True)
class Filters:
    """The period (inclusive local dates) and the optional department, division and item filters."""

    since: datetime.date
    until: datetime.date
    department: Organization | None = None
    division: Division | None = None
    item: ServiceItem | None = None

    def as_dict(self) -> dict:
        """JSON-able form."""
        return {
            "from": self.since.isoformat(),
            "to": self.until.isoformat(),
            "department": self.department.code if self.department else None,
            "division": self.division.code if self.division else None,
            "item": self.item.basic_code if self.item else None,
        }


@dataclass
class Report:
    """The metrics of a scope: the filters, the grouping, the total and one row per group."""

    group: str
    filters: Filters
    total: Figures
    rows: list[Row] = field(default_factory=list)

    def as_dict(self) -> dict:
        """JSON-able form (the API's answer)."""
        return {
            "group": self.group,
            **self.filters.as_dict(),
            "total": self.total.as_dict(),
            "rows": [{"key": row.key, "label": row.label, **row.figures.as_dict()} for row in self.rows],
        }


# --- Scope -------------------------------------------------------------------------------------------


def _supervising_office(department: Organization | None) -> bool:
    """An active 大数据局 or 政务服务管理办公室 (at any level)."""
    return bool(department is not None and department.is_active and department.kind in ADMIN_KINDS)


def sees_all(actor) -> bool:
    """System actors, platform administrators and the provincial DSJ / ZWFW see every application."""
    if isinstance(actor, str) or is_admin(actor):
        return True
    department = department_of(actor)
    return _supervising_office(department) and department.level == Organization.Level.PROVINCE


def _check_actor(actor) -> None:
    """Only officials, administrators and system actors read metrics."""
    if isinstance(actor, str) or is_admin(actor):
        return
    if not getattr(actor, "is_authenticated", False) or getattr(actor, "kind", "") != "official":
        raise PermissionDenied(_("服务指标和督办仅向工作人员开放。"))


def scope_q(actor, prefix: str = "") -> Q:
    """The Q limiting applications (``prefix`` = the path to them, e.g. ``application__``) to the actor's scope."""
    _check_actor(actor)
    if sees_all(actor):
        return Q()
    department = department_of(actor)
    if department is None or not department.is_active:
        return Q(pk__in=[])
    if _supervising_office(department):
        code = scope_prefix(department.division.code)
        return Q(**{f"{prefix}department__division__code__startswith": code})
    return Q(**{f"{prefix}department": department})


def overdue_q(today: datetime.date) -> Q:
    """Overdue (超期): flagged by the SLA clock, or running (not paused for 补正) and past the promised due date."""
    return Q(overdue=True) | Q(paused_since__isnull=True, promised_due__lt=today)


def applications_in_scope(actor) -> QuerySet[Application]:
    """The applications the actor may see in metrics and supervision (see the module docstring)."""
    return Application.objects.filter(scope_q(actor))


def departments_in_scope(actor) -> QuerySet[Organization]:
    """The departments whose applications the actor may see (for filters)."""
    _check_actor(actor)
    departments = Organization.objects.filter(is_active=True)
    if sees_all(actor):
        return departments
    department = department_of(actor)
    if department is None:
        return departments.none()
    if _supervising_office(department):
        return departments.filter(division__code__startswith=scope_prefix(department.division.code))
    return departments.filter(pk=department.pk)


# --- Filters -----------------------------------------------------------------------------------------


def _parse_date(value, name: str, errors: dict) -> datetime.date | None:
    """A date from a date or ISO text; an error under ``name`` otherwise."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime.date):
        return value
    try:
        return datetime.date.fromisoformat(str(value).strip())
    except ValueError:
        errors[name] = [_("日期格式应为 YYYY-MM-DD。")]
        return None


def default_since(today: datetime.date) -> datetime.date:
    """The first day of the month :data:`DEFAULT_MONTHS` − 1 months before today's (six whole months)."""
    month = today.year * 12 + today.month - 1 - (DEFAULT_MONTHS - 1)
    return datetime.date(month // 12, month % 12 + 1, 1)


def parse_filters(
    *,
    actor,
    since=None,
    until=None,
    department: str = "",
    division: str = "",
    item: str = "",
    today: datetime.date | None = None,
) -> Filters:
    """Filters from request parameters; ValidationError with one message per bad parameter.

    ``since``/``until`` are ISO dates (default: the last six months up to today); ``department``
    a department code within the actor's scope, ``division`` a division code, ``item`` a basic
    code. A department outside the scope is refused like an unknown one.
    """
    _check_actor(actor)
    errors: dict[str, list[str]] = {}
    today = today or timezone.localdate()
    start = _parse_date(since, "from", errors)
    end = _parse_date(until, "to", errors)
    end = end or today
    start = start or default_since(end)
    if "from" not in errors and "to" not in errors:
        if start > end:
            errors["from"] = [_("开始日期不能晚于结束日期。")]
        elif (end - start).days > MAX_DAYS:
            errors["from"] = [_("统计周期最长 %(max)d 天。") % {"max": MAX_DAYS}]
    found_department = found_division = found_item = None
    if department:
        found_department = departments_in_scope(actor).filter(code=str(department)[:32]).first()
        if found_department is None:
            errors["department"] = [_("未知的部门。")]
    if division:
        found_division = Division.objects.filter(code=str(division)[:12]).first()
        if found_division is None:
            errors["division"] = [_("未知的行政区划代码。")]
    if item:
        found_item = ServiceItem.objects.filter(basic_code=str(item)[:32]).first()
        if found_item is None:
            errors["item"] = [_("未知的事项。")]
    if errors:
        raise ValidationError(errors)
    return Filters(start, end, found_department, found_division, found_item)


# --- Computing ---------------------------------------------------------------------------------------


def _tz() -> datetime.tzinfo:
    """The platform's time zone (days are local days)."""
    return timezone.get_default_timezone()


def _bounds(filters: Filters) -> tuple[datetime.datetime, datetime.datetime]:
    """The period as [start, end) aware datetimes at local midnight."""
    tz = _tz()
    start = datetime.datetime.combine(filters.since, datetime.time.min, tzinfo=tz)
    end = datetime.datetime.combine(filters.until + datetime.timedelta(days=1), datetime.time.min, tzinfo=tz)
    return start, end


def _filter_q(filters: Filters, prefix: str = "") -> Q:
    """The department / division / item filters on applications at ``prefix``."""
    q = Q()
    if filters.department is not None:
        q &= Q(**{f"{prefix}department": filters.department})
    if filters.division is not None:
        q &= Q(**{f"{prefix}division__code__startswith": scope_prefix(filters.division.code)})
    if filters.item is not None:
        q &= Q(**{f"{prefix}item": filters.item})
    return q


def _division_width(filters: Filters) -> int:
    """How many code digits make a division row: 4 (cities) below a province, 6 (counties) below a city."""
    division = filters.division
    if division is None or division.level == Division.Level.PROVINCE:
        return 4
    return 6


def _key(group: str | None, filters: Filters, prefix: str, date_field: str):
    """The GROUP BY expression of a grouping for rows at ``prefix`` whose period date is ``date_field``."""
    if group is None:
        return None
    if group == "item":
        return F(f"{prefix}item__basic_code")
    if group == "department":
        return F(f"{prefix}department__code")
    if group == "division":
        return Substr(f"{prefix}division__code", 1, _division_width(filters))
    if date_field.endswith("_due"):  # a DateField: truncated as it is
        return Trunc(date_field, group, output_field=DateField())
    return Trunc(date_field, group, output_field=DateField(), tzinfo=_tz())


def _norm(group: str | None, value) -> str:
    """A group key as text (period keys as ISO dates of their first day)."""
    if group is None or value is None:
        return ""
    if group in PERIOD_GROUPS:
        return _as_day(value).isoformat()
    return str(value)


def _grouped(qs: QuerySet, key, group: str | None, **aggregates) -> dict[str, dict]:
    """{key text: {aggregate: value}} of ``qs`` grouped by ``key`` (one group "" without a grouping)."""
    if key is None:
        return {"": qs.aggregate(**aggregates)}
    rows = qs.order_by().values(k=key).annotate(**aggregates).order_by()
    answer: dict[str, dict] = {}
    for row in rows:
        name = _norm(group, row.pop("k"))
        if name in answer:  # two raw keys falling on one local day
            for aggregate, value in row.items():
                answer[name][aggregate] = (answer[name][aggregate] or 0) + (value or 0)
        else:
            answer[name] = row
    return answer


def _collect(actor, group: str | None, filters: Filters, *, today: datetime.date) -> dict[str, Figures]:
    """Every figure of every group, from a handful of grouped queries."""
    figures: dict[str, Figures] = defaultdict(Figures)
    start, end = _bounds(filters)
    tz = _tz()
    apps = Application.objects.filter(scope_q(actor), _filter_q(filters))

    def add(rows: dict[str, dict], **names: str) -> None:
        for key, values in rows.items():
            target = figures[key]
            for attribute, aggregate in names.items():
                setattr(target, attribute, getattr(target, attribute) + int(values.get(aggregate) or 0))

    # Submitted: counts and the promised / legal limits (承诺时限压缩比).
    submitted = apps.filter(submitted_at__gte=start, submitted_at__lt=end)
    add(
        _grouped(
            submitted,
            _key(group, filters, "", "submitted_at"),
            group,
            n=Count("id"),
            promised=Sum("item__promised_limit_days"),
            legal=Sum("item__legal_limit_days"),
        ),
        submitted="n",
        promised_days="promised",
        legal_days="legal",
    )
    # Accepted.
    accepted = apps.filter(accepted_at__gte=start, accepted_at__lt=end)
    add(_grouped(accepted, _key(group, filters, "", "accepted_at"), group, n=Count("id")), accepted="n")
    # Closed (办结) and rejected, by completion.
    finished = apps.filter(completed_at__gte=start, completed_at__lt=end)
    closed = finished.filter(status__in=CLOSED)
    closed_key = _key(group, filters, "", "completed_at")
    add(
        _grouped(finished.filter(status=Status.REJECTED), closed_key, group, n=Count("id")),
        rejected="n",
    )
    visited = ApplicationEvent.objects.filter(application=OuterRef("pk"), kind=ApplicationEvent.Kind.VISIT)
    done_day = TruncDate("completed_at", tzinfo=tz)
    closed_rows = _grouped(
        closed.alias(visited=Exists(visited), done_day=done_day),
        closed_key,
        group,
        n=Count("id"),
        approved=Count("id", filter=Q(status=Status.APPROVED)),
        denied=Count("id", filter=Q(status=Status.DENIED)),
        full_online=Count(
            "id",
            filter=Q(channel=Application.Channel.ONLINE, delivery=Application.Delivery.ELECTRONIC, visited=False),
        ),
        on_time=Count("id", filter=Q(promised_due__isnull=False, done_day__lte=F("promised_due"))),
        paused=Sum("paused_days"),
        legal=Sum("item__legal_limit_days"),
    )
    add(
        closed_rows,
        closed="n",
        approved="approved",
        denied="denied",
        full_online="full_online",
        on_time="on_time",
        closed_legal_days="legal",
    )
    for key, values in closed_rows.items():
        figures[key].used_days -= int(values.get("paused") or 0)
    # Working days used: Σ wd(submitted day, completed day) = Σ ord(completed day) − Σ ord(submitted day),
    # where ord(d) counts working days up to d — so one GROUP BY per side, one calendar lookup per day.
    # The calendar is looked up once per distinct day (an administrator may change it: no cache across calls).
    epoch = filters.since
    ordinals: dict[datetime.date, int] = {}
    deadlines: dict[datetime.date, datetime.date] = {}

    def ordinal(day: datetime.date) -> int:
        if day not in ordinals:
            ordinals[day] = calendar.working_days_between(epoch, day)
        return ordinals[day]

    def instant_deadline(day: datetime.date) -> datetime.date:
        """The last day an application submitted on ``day`` still counts as 即办 (that day's working day)."""
        if day not in deadlines:
            deadlines[day] = calendar.add_working_days(day, 0)
        return deadlines[day]

    for day_field, sign in (("completed_at", 1), ("submitted_at", -1)):
        day_key = TruncDate(day_field, tzinfo=tz)
        rows = closed.order_by().values(day=day_key)
        if closed_key is not None:
            rows = rows.annotate(k=closed_key)
        for row in rows.annotate(n=Count("id")).order_by():
            key = _norm(group, row.get("k")) if closed_key is not None else ""
            figures[key].used_days += sign * row["n"] * ordinal(_as_day(row["day"]))
    # 即办: completed no later than the submission day's working day (pairs of days close together only).
    near = closed.filter(completed_at__lt=F("submitted_at") + INSTANT_WINDOW)
    rows = near.order_by().values(sub=TruncDate("submitted_at", tzinfo=tz), done=TruncDate("completed_at", tzinfo=tz))
    if closed_key is not None:
        rows = rows.annotate(k=closed_key)
    for row in rows.annotate(n=Count("id")).order_by():
        if _as_day(row["done"]) <= instant_deadline(_as_day(row["sub"])):
            key = _norm(group, row.get("k")) if closed_key is not None else ""
            figures[key].instant += row["n"]
    # Visits (跑动次数) of the closed applications, whenever they happened.
    visits = ApplicationEvent.objects.filter(
        kind=ApplicationEvent.Kind.VISIT,
        application__in=closed.values("pk"),
    )
    add(
        _grouped(visits, _key(group, filters, "application__", "application__completed_at"), group, n=Count("id")),
        visits="n",
    )
    # Overdue open applications: a snapshot of today (by due date in period groupings).
    overdue = apps.exclude(status__in=Application.CLOSED).filter(overdue_q(today))
    if group in PERIOD_GROUPS:
        overdue = overdue.filter(promised_due__gte=filters.since, promised_due__lte=filters.until)
    add(_grouped(overdue, _key(group, filters, "", "promised_due"), group, n=Count("id")), overdue_open="n")
    # Ratings (好差评), by the rating's date.
    ratings = ServiceRating.objects.filter(
        scope_q(actor, "application__"),
        _filter_q(filters, "application__"),
        created_at__gte=start,
        created_at__lt=end,
    )
    add(
        _grouped(
            ratings,
            _key(group, filters, "application__", "created_at"),
            group,
            n=Count("id"),
            satisfied=Count("id", filter=Q(score__gte=ServiceRating.Score.GOOD)),
            bad=Count("id", filter=Q(score__lte=ServiceRating.Score.BAD)),
            score=Sum("score"),
        ),
        ratings="n",
        satisfied="satisfied",
        bad="bad",
        score_total="score",
    )
    return figures


def _as_day(value) -> datetime.date:
    """A day from a truncated value (SQLite may give text, datetimes or dates)."""
    if isinstance(value, datetime.datetime):
        return timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    if isinstance(value, datetime.date):
        return value
    return datetime.date.fromisoformat(str(value)[:10])


# --- Labels and periods ------------------------------------------------------------------------------


def _period_start(day: datetime.date, group: str) -> datetime.date:
    """The first day of the day's period."""
    if group == "week":
        return day - datetime.timedelta(days=day.weekday())
    if group == "month":
        return day.replace(day=1)
    return day


def _next_period(day: datetime.date, group: str) -> datetime.date:
    """The first day of the following period."""
    if group == "week":
        return day + datetime.timedelta(days=7)
    if group == "month":
        return (day.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)
    return day + datetime.timedelta(days=1)


def period_label(day: datetime.date, group: str) -> str:
    """How a period is named: 2026-11-02, 2026-W45, 2026-11."""
    if group == "week":
        year, week, _weekday = day.isocalendar()
        return f"{year}-W{week:02d}"
    if group == "month":
        return day.strftime("%Y-%m")
    return day.isoformat()


def _periods(filters: Filters, group: str) -> list[datetime.date]:
    """Every period of the range, so a trend has no gaps."""
    days = []
    day = _period_start(filters.since, group)
    while day <= filters.until:
        days.append(day)
        day = _next_period(day, group)
    return days


def _labels(group: str, keys: set[str], filters: Filters) -> dict[str, str]:
    """Display names of the keys of a grouping."""
    if group == "item":
        return dict(ServiceItem.objects.filter(basic_code__in=keys).values_list("basic_code", "name"))
    if group == "department":
        return dict(Organization.objects.filter(code__in=keys).values_list("code", "name"))
    if group == "division":
        width = _division_width(filters)
        codes = {key: (key + "0000")[:6] if width == 4 else key for key in keys}
        names = dict(Division.objects.filter(code__in=set(codes.values())).values_list("code", "name"))
        labels = {}
        for key, code in codes.items():
            if width == 4 and code.endswith("0000"):
                labels[key] = _("省本级")
            elif width == 6 and code.endswith("00"):
                labels[key] = _("市本级")
            else:
                labels[key] = names.get(code, key)
        return labels
    return {}


def compute(actor, *, group: str = "department", filters: Filters, today: datetime.date | None = None) -> Report:
    """The metrics of the actor's scope under the filters: the total and one row per group.

    ValidationError for an unknown grouping; PermissionDenied for anyone but officials,
    administrators and system actors.
    """
    if group not in GROUPS:
        raise ValidationError({"group": [_("分组方式应为 %(groups)s 之一。") % {"groups": "、".join(GROUPS)}]})
    _check_actor(actor)
    today = today or timezone.localdate()
    found = _collect(actor, group, filters, today=today)
    if group in PERIOD_GROUPS:  # the rows' 超期在办 count by due date in the period; the total is today's snapshot
        total = _collect(actor, None, filters, today=today).get("", Figures())
    else:  # every application and rating falls in exactly one row: the total is their sum
        total = Figures()
        for figures in found.values():
            total.add(figures)
    rows: list[Row] = []
    if group in PERIOD_GROUPS:
        for day in _periods(filters, group):
            key = day.isoformat()
            rows.append(Row(key, period_label(day, group), found.get(key, Figures())))
    else:
        labels = _labels(group, set(found), filters)
        for key in sorted(found):
            rows.append(Row(key, labels.get(key, key), found[key]))
    return Report(group=group, filters=filters, total=total, rows=rows)
