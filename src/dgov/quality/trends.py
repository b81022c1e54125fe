"""Quality score trends over time (质量趋势): daily snapshots of scorecards, series, comparisons, rankings.

A :class:`~dgov.quality.models.ScoreSnapshot` keeps one day's score of a department (its scorecard:
the results of the rules it owns in every registry's latest successful run) or of a registry (its
latest successful run). Snapshots are derived data, written by two paths that compute them the same
way, with :func:`dgov.quality.scoring.summarize` over the same results the live scorecards read:

* :func:`record_run`, called by :func:`dgov.quality.services.execute_run` inside the transaction of
  every successful run: upserts today's snapshot of the run's registry and of every department
  whose scorecard the run changed — the owners of the run's results and of the registry's previous
  successful run's results (a rule that changed hands moves a department off the scorecard too).
  ``open_orders`` is the number of active rectification orders (整改工单, open or submitted) then.
* :func:`backfill` (``dgov quality trends --backfill``) replays the stored successful runs in order,
  day by day, so an installation that ran checks before snapshots existed gets its history. A
  day's snapshot is the state at the end of that day; ``open_orders`` is reconstructed from the
  orders' opening day and closing time. Existing snapshots are kept unless ``replace``.

A score holds until the next run changes it, so a trend is a step series: the snapshots within the
period plus the one in effect at its start (the *baseline*). The comparison of a period is the
change from the score at its start (the baseline, or the first snapshot when the history began
within the period) to its last snapshot, overall and per dimension.

Who may read what is :mod:`dgov.quality.services`' rule: a department's trend by the department,
covering data administrators and platform administrators; a registry's by those who may read the
registry's quality. Backfill is for those who manage rules (CLI, platform administrators,
provincial data administrators) and is audited (``quality.trends.backfill``); the snapshots written
by a run are covered by the run's own audit record.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import groupby

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Max, Min, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from dgov.kernel.models import Organization
from dgov.kernel.services import audit
from dgov.quality import scoring, services
from dgov.quality.models import Dimension, QualityRun, RectificationOrder, RuleResult, ScoreSnapshot
from dgov.registry.models import Registry

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_DAYS",
    "MAX_DAYS",
    "PERIODS",
    "BackfillReport",
    "Comparison",
    "Point",
    "RankingRow",
    "Trend",
    "backfill",
    "compare",
    "period",
    "ranking",
    "record_run",
    "subject",
    "trend",
]

PERIODS = (30, 90, 365)  # the pages' period selector
DEFAULT_DAYS = 90
MAX_DAYS = 3660  # ten years: the longest period one request may ask for
ACTIVE_ORDERS = (RectificationOrder.Status.OPEN, RectificationOrder.Status.SUBMITTED)
DEPARTMENT = ScoreSnapshot.Scope.DEPARTMENT
REGISTRY = ScoreSnapshot.Scope.REGISTRY


# --- Values -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """One snapshot of a trend: the day's score, grade, dimension scores, counts and active orders."""

    day: datetime.date
    score: Decimal | None
    grade: str
    dimensions: dict[str, Decimal]
    rules: int = 0
    checked: int = 0
    failed: int = 0
    open_orders: int = 0

    @classmethod
    def of(cls, snapshot: ScoreSnapshot) -> Point:
        """A stored snapshot as a point (JSON floats back to decimals)."""
        return cls(
            day=snapshot.day,
            score=Decimal(snapshot.score) if snapshot.score is not None else None,
            grade=snapshot.grade,
            dimensions={key: _decimal(value) for key, value in (snapshot.dimension_scores or {}).items()},
            rules=snapshot.rules,
            checked=snapshot.checked,
            failed=snapshot.failed,
            open_orders=snapshot.open_orders,
        )

    def as_dict(self) -> dict:
        """JSON-able form (scores as floats, the day as ISO text)."""
        return {
            "day": self.day.isoformat(),
            "score": float(self.score) if self.score is not None else None,
            "grade": self.grade,
            "dimensions": {key: float(value) for key, value in self.dimensions.items()},
            "rules": self.rules,
            "checked": self.checked,
            "failed": self.failed,
            "open_orders": self.open_orders,
        }


def _decimal(value) -> Decimal:
    """A stored JSON score as a decimal of two places, like the scores computed by :mod:`dgov.quality.scoring`."""
    return Decimal(str(value)).quantize(Decimal("0.01"))


def _direction(change: Decimal | None) -> str:
    """``up``, ``down``, ``flat`` — or empty when there is no change to speak of."""
    if change is None:
        return ""
    return "up" if change > 0 else "down" if change < 0 else "flat"


def _difference(start: Decimal | None, end: Decimal | None) -> Decimal | None:
    """``end − start`` when both exist."""
    return None if start is None or end is None else end - start


@dataclass(frozen=True)
class DimensionChange:
    """A dimension's score at the start and end of a period and the change."""

    dimension: str
    label: str
    start: Decimal | None
    end: Decimal | None
    change: Decimal | None

    @property
    def direction(self) -> str:
        """``up`` / ``down`` / ``flat`` / empty."""
        return _direction(self.change)


@dataclass(frozen=True)
class Comparison:
    """The change of a period: from the score at its start to its last snapshot, overall and per dimension.

    ``change`` is None when there is nothing to compare: no snapshot at all, a score missing at
    either end, or a single snapshot that both starts and ends the period's history.
    """

    start: Point | None = None
    end: Point | None = None
    change: Decimal | None = None
    dimensions: tuple[DimensionChange, ...] = ()

    @property
    def direction(self) -> str:
        """``up`` / ``down`` / ``flat`` / empty."""
        return _direction(self.change)

    def as_dict(self) -> dict:
        """JSON-able form."""
        return {
            "start": self.start.as_dict() if self.start else None,
            "end": self.end.as_dict() if self.end else None,
            "change": float(self.change) if self.change is not None else None,
            "direction": self.direction,
            "dimensions": {
                item.dimension: {
                    "start": float(item.start) if item.start is not None else None,
                    "end": float(item.end) if item.end is not None else None,
                    "change": float(item.change) if item.change is not None else None,
                    "direction": item.direction,
                }
                for item in self.dimensions
            },
        }


def compare(start: Point | None, end: Point | None, *, same: bool = False) -> Comparison:
    """The comparison of two points (``same``: they are one snapshot — nothing changed *observably*)."""
    if start is None or end is None:
        return Comparison(start, end)
    labels = dict(Dimension.choices)
    dimensions = tuple(
        DimensionChange(
            dimension,
            str(labels[dimension]),
            start.dimensions.get(dimension),
            end.dimensions.get(dimension),
            None if same else _difference(start.dimensions.get(dimension), end.dimensions.get(dimension)),
        )
        for dimension in Dimension.values
        if dimension in start.dimensions or dimension in end.dimensions
    )
    return Comparison(start, end, None if same else _difference(start.score, end.score), dimensions)


@dataclass
class Trend:
    """A department's or registry's series over a period, with the baseline and the comparison."""

    scope: str
    key: str
    name: str
    since: datetime.date
    until: datetime.date
    points: list[Point] = field(default_factory=list)
    baseline: Point | None = None
    comparison: Comparison = field(default_factory=Comparison)

    @property
    def days(self) -> int:
        """The length of the period in days."""
        return (self.until - self.since).days

    def as_dict(self) -> dict:
        """JSON-able form (the API's answer)."""
        return {
            "scope": self.scope,
            "key": self.key,
            "name": self.name,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "days": self.days,
            "baseline": self.baseline.as_dict() if self.baseline else None,
            "points": [point.as_dict() for point in self.points],
            "comparison": self.comparison.as_dict(),
        }


# --- Reading ------------------------------------------------------------------------------------------------


def period(
    *,
    days: int | None = None,
    since: datetime.date | None = None,
    until: datetime.date | None = None,
    today: datetime.date | None = None,
) -> tuple[datetime.date, datetime.date]:
    """The (since, until) of a period: ``days`` back from ``until`` (default today), or ``since``–``until``.

    ValidationError (keyed by parameter) for a period that makes no sense: ``days`` outside
    1–:data:`MAX_DAYS`, ``days`` together with ``since``, ``since`` after ``until``, or longer than
    :data:`MAX_DAYS`.
    """
    errors: dict[str, str] = {}
    if days is not None and (isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS):
        errors["days"] = _("days 应为 1–%(max)d 的整数") % {"max": MAX_DAYS}
    if days is not None and since is not None:
        errors["since"] = _("days 与 since 只能给出其一")
    if errors:
        raise ValidationError(errors)
    until = until or today or timezone.localdate()
    if since is None:
        try:
            since = until - datetime.timedelta(days=days or DEFAULT_DAYS)
        except OverflowError:  # until near 0001-01-01
            raise ValidationError({"until": _("until 超出可用日期范围")}) from None
    if since > until:
        raise ValidationError({"since": _("since 不能晚于 until")})
    if (until - since).days > MAX_DAYS:
        raise ValidationError({"since": _("统计周期最长 %(max)d 天") % {"max": MAX_DAYS}})
    return since, until


def subject(scope: str, key: str) -> Organization | Registry:
    """The department (by code) or registry (by code) a trend is about; ValidationError for a bad scope.

    Raises the model's ``DoesNotExist`` when there is no such department or registry.
    """
    if scope == DEPARTMENT:
        return Organization.objects.select_related("division").get(code=key)
    if scope == REGISTRY:
        return Registry.objects.select_related("owner").get(code=key)
    raise ValidationError({"scope": _("scope 应为 department 或 registry")})


def _authorize(scope: str, target, actor) -> None:
    """PermissionDenied unless the actor may read the department's scorecard / the registry's quality."""
    allowed = (
        services.can_view_department(actor, target)
        if scope == DEPARTMENT
        else services.can_view_registry(actor, target)
    )
    if not allowed:
        raise PermissionDenied(
            _("无权查看该部门的数据质量评分") if scope == DEPARTMENT else _("无权查看该信息库的数据质量。")
        )


def trend(
    scope: str,
    key: str,
    *,
    actor,
    days: int | None = None,
    since: datetime.date | None = None,
    until: datetime.date | None = None,
) -> Trend:
    """The series of a department's or registry's scores over a period (default the last 90 days).

    ValidationError for bad parameters (see :func:`period`, :func:`subject`), ``DoesNotExist`` for
    an unknown department or registry, PermissionDenied when the actor may not read it.
    """
    since, until = period(days=days, since=since, until=until)
    target = subject(scope, key)
    _authorize(scope, target, actor)
    snapshots = ScoreSnapshot.objects.filter(scope=scope, key=key)
    points = [Point.of(row) for row in snapshots.filter(day__gte=since, day__lte=until).order_by("day")]
    before = snapshots.filter(day__lt=since).order_by("-day").first()
    baseline = Point.of(before) if before is not None else None
    start = baseline or (points[0] if points else None)
    end = points[-1] if points else baseline
    return Trend(
        scope=scope,
        key=key,
        name=target.name,
        since=since,
        until=until,
        points=points,
        baseline=baseline,
        comparison=compare(start, end, same=baseline is None and len(points) == 1),
    )


def comparisons(scope: str, keys: Iterable[str], since: datetime.date, until: datetime.date) -> dict[str, Comparison]:
    """The comparison of many departments' or registries' periods in three queries (as :func:`trend` computes it)."""
    keys = list(keys)
    if not keys:
        return {}
    snapshots = ScoreSnapshot.objects.filter(scope=scope, key__in=keys)
    bounds = {
        row["key"]: row
        for row in snapshots.filter(day__gte=since, day__lte=until)
        .values("key")
        .annotate(first=Min("day"), last=Max("day"), n=Count("id"))
    }
    before = {
        row["key"]: row["last"] for row in snapshots.filter(day__lt=since).values("key").annotate(last=Max("day"))
    }
    wanted = {(key, row["first"]) for key, row in bounds.items()} | {(key, row["last"]) for key, row in bounds.items()}
    wanted |= set(before.items())
    candidates = snapshots.filter(key__in={key for key, _day in wanted}, day__in={day for _key, day in wanted})
    found = {(row.key, row.day): Point.of(row) for row in candidates if (row.key, row.day) in wanted}
    answer = {}
    for key in keys:
        row = bounds.get(key)
        baseline = found.get((key, before[key])) if key in before else None
        start = baseline or (found.get((key, row["first"])) if row else None)
        end = found.get((key, row["last"])) if row else baseline
        answer[key] = compare(start, end, same=baseline is None and row is not None and row["n"] == 1)
    return answer


@dataclass
class RankingRow:
    """One line of the overview: a department or registry, its current score and the change over the period."""

    target: Organization | Registry
    summary: scoring.Summary
    comparison: Comparison

    @property
    def code(self) -> str:
        """The department's or registry's code."""
        return self.target.code


def ranking(scope: str, *, actor, days: int | None = None) -> tuple[datetime.date, datetime.date, list[RankingRow]]:
    """The overview (省级总览): departments or registries the actor may see, best score first, with their change.

    The score is the live one (:func:`dgov.quality.services.department_scores` /
    :func:`~dgov.quality.services.registry_scores`); the change over the period is the comparison of
    its snapshots, as on each one's trend page.
    """
    since, until = period(days=days)
    if scope == DEPARTMENT:
        scored = services.department_scores(actor)
    elif scope == REGISTRY:
        scored = []
        for registry, run in services.registry_scores(actor):
            summary = scoring.Summary()
            if run is not None:
                summary = scoring.Summary(
                    score=run.score,
                    grade=run.grade,
                    dimensions={k: _decimal(v) for k, v in (run.dimension_scores or {}).items()},
                    rules=run.rule_count,
                )
            scored.append((registry, summary))
        scored.sort(key=lambda row: (row[1].score is None, -(row[1].score or 0), row[0].code))
    else:
        raise ValidationError({"scope": _("scope 应为 department 或 registry")})
    changes = comparisons(scope, [target.code for target, _summary in scored], since, until)
    rows = [RankingRow(target, summary, changes.get(target.code, Comparison())) for target, summary in scored]
    return since, until, rows


# --- Writing ------------------------------------------------------------------------------------------------


def _summaries(rows: Iterable[tuple]) -> dict[int, scoring.Summary]:
    """``(group, dimension, weight, checked, failed)`` rows summarized per group with the scorecards' formula."""
    grouped: dict[int, list[tuple]] = {}
    for group, *rest in rows:
        grouped.setdefault(group, []).append(tuple(rest))
    return {group: scoring.summarize(items) for group, items in grouped.items()}


_RESULT_COLUMNS = ("dimension", "weight", "checked", "failed")


def _department_summaries(department_ids: set[int], runs) -> dict[int, scoring.Summary]:
    """Each department's scorecard summary over the given (latest) runs: the results of the rules it owns."""
    if not department_ids:
        return {}
    rows = RuleResult.objects.filter(run__in=runs, owner_id__in=department_ids).values_list(
        "owner_id", *_RESULT_COLUMNS
    )
    return _summaries(rows)


def _registry_summaries(run_ids: Iterable[int]) -> dict[int, scoring.Summary]:
    """Each run's summary (the registry's score, as computed when the run finished), keyed by run id."""
    rows = RuleResult.objects.filter(run_id__in=list(run_ids)).values_list("run_id", *_RESULT_COLUMNS)
    return _summaries(rows)


def _active_orders(column: str, ids: set[int], day: datetime.date | None = None) -> dict[int, int]:
    """Active rectification orders per department (``column="department"``) or registry, now or at a day's end."""
    if not ids:
        return {}
    orders = RectificationOrder.objects.filter(**{f"{column}_id__in": ids})
    if day is None:
        orders = orders.filter(status__in=ACTIVE_ORDERS)
    else:
        orders = orders.filter(opened_on__lte=day).filter(Q(status__in=ACTIVE_ORDERS) | Q(closed_at__gte=_day_end(day)))
    return {row[column]: row["n"] for row in orders.values(column).annotate(n=Count("id"))}


def _day_end(day: datetime.date) -> datetime.datetime:
    """The first instant after a local day."""
    return timezone.make_aware(datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time.min))


def _snapshot(scope: str, key: str, day: datetime.date, summary: scoring.Summary, open_orders: int) -> ScoreSnapshot:
    """An unsaved snapshot of a summary."""
    return ScoreSnapshot(
        scope=scope,
        key=key,
        day=day,
        score=summary.score,
        grade=summary.grade,
        dimension_scores={name: float(value) for name, value in summary.dimensions.items()},
        rules=summary.rules,
        checked=summary.checked,
        failed=summary.failed,
        open_orders=open_orders,
    )


_UPDATED = ("score", "grade", "dimension_scores", "rules", "checked", "failed", "open_orders")


def _upsert(snapshots: list[ScoreSnapshot], *, replace: bool = True) -> None:
    """Insert the snapshots, replacing (or, without ``replace``, keeping) those of the same scope, key and day."""
    if not snapshots:
        return
    if replace:
        ScoreSnapshot.objects.bulk_create(
            snapshots, update_conflicts=True, unique_fields=["scope", "key", "day"], update_fields=list(_UPDATED)
        )
    else:
        ScoreSnapshot.objects.bulk_create(snapshots, ignore_conflicts=True)


def _day_snapshots(
    day: datetime.date,
    registry_runs: dict[int, int],
    department_ids: set[int],
    runs,
    *,
    historical: bool,
) -> list[ScoreSnapshot]:
    """The snapshots of a day: ``registry_runs`` (registry id → its latest run then), the departments over ``runs``."""
    codes = dict(Registry.objects.filter(pk__in=registry_runs).values_list("pk", "code"))
    by_run = _registry_summaries(registry_runs.values())
    registry_orders = _active_orders("registry", set(registry_runs), day if historical else None)
    snapshots = [
        _snapshot(
            REGISTRY,
            codes[registry_id],
            day,
            by_run.get(run_id, scoring.Summary()),
            registry_orders.get(registry_id, 0),
        )
        for registry_id, run_id in registry_runs.items()
    ]
    departments = dict(Organization.objects.filter(pk__in=department_ids).values_list("pk", "code"))
    summaries = _department_summaries(department_ids, runs)
    department_orders = _active_orders("department", department_ids, day if historical else None)
    snapshots += [
        _snapshot(DEPARTMENT, code, day, summaries.get(pk, scoring.Summary()), department_orders.get(pk, 0))
        for pk, code in departments.items()
    ]
    return snapshots


def _owners(run_ids: Iterable[int]) -> set[int]:
    """The departments owning results of the given runs."""
    return set(RuleResult.objects.filter(run_id__in=list(run_ids)).values_list("owner_id", flat=True).distinct())


def record_run(run: QualityRun) -> None:
    """Upsert today's snapshots after a successful run: its registry and the departments whose scorecard it changed.

    Called inside the run's transaction, after its results are saved (and after the rectification
    hook, so ``open_orders`` counts the orders the run opened or closed). A snapshot is derived
    data: a failure here is logged and rolled back to a savepoint, never the run's failure —
    ``dgov quality trends --backfill --replace`` rebuilds it.
    """
    try:
        with transaction.atomic():
            previous = (
                QualityRun.objects.filter(registry_id=run.registry_id, status=QualityRun.Status.SUCCEEDED)
                .exclude(pk=run.pk)
                .order_by("-finished_at", "-id")
                .values_list("id", flat=True)
                .first()
            )
            owners = _owners([run.pk] if previous is None else [run.pk, previous])
            day = timezone.localdate(run.finished_at)
            latest = services.latest_runs().values("id")
            _upsert(_day_snapshots(day, {run.registry_id: run.pk}, owners, latest, historical=False))
    except Exception:  # noqa: BLE001 - derived data must not fail the run; backfill repairs it
        logger.exception("quality snapshots of run %s could not be written", run.pk)


@dataclass
class BackfillReport:
    """What a backfill did: days replayed, snapshots written and kept."""

    days: int = 0
    written: int = 0
    kept: int = 0
    first: datetime.date | None = None
    last: datetime.date | None = None

    def as_dict(self) -> dict:
        """JSON-able form (the audit detail)."""
        return {
            "days": self.days,
            "written": self.written,
            "kept": self.kept,
            "first": self.first.isoformat() if self.first else None,
            "last": self.last.isoformat() if self.last else None,
        }


def backfill(*, actor, replace: bool = False, progress: Callable[[int, int], None] | None = None) -> BackfillReport:
    """Rebuild daily snapshots from the stored successful runs (one transaction, audited).

    Replays the runs in the order they finished; at the end of each local day that had runs, writes
    the snapshot of each registry that ran and of each department owning results of those runs or
    of the runs they replaced — over the latest run of every registry as of that day, exactly as
    :func:`record_run` does live. Snapshots that exist are kept (a live snapshot saw the real
    ``open_orders``) unless ``replace``. ``progress(done, total)`` is told the days replayed.
    PermissionDenied (audited) unless the actor may manage rules.
    """
    if not services.may_manage_rules(actor):
        raise services._deny(
            "quality.trends.backfill",
            actor=actor,
            target=None,
            message=_("只有数据管理员可以重建质量趋势"),
        )
    runs = list(
        QualityRun.objects.filter(status=QualityRun.Status.SUCCEEDED, finished_at__isnull=False)
        .order_by("finished_at", "id")
        .values_list("id", "registry_id", "finished_at")
    )
    days = [(day, list(items)) for day, items in groupby(runs, key=lambda row: timezone.localdate(row[2]))]
    report = BackfillReport(days=len(days))
    if days:
        report.first, report.last = days[0][0], days[-1][0]
    current: dict[int, int] = {}  # registry id -> its latest successful run so far
    with transaction.atomic():
        existing = set(ScoreSnapshot.objects.values_list("scope", "key", "day")) if not replace else set()
        for index, (day, items) in enumerate(days, start=1):
            registries = {registry_id for _run, registry_id, _at in items}
            replaced = [current[registry_id] for registry_id in registries if registry_id in current]
            for run_id, registry_id, _at in items:
                current[registry_id] = run_id
            owners = _owners([run_id for run_id, _registry, _at in items] + replaced)
            snapshots = _day_snapshots(
                day,
                {registry_id: current[registry_id] for registry_id in registries},
                owners,
                list(current.values()),
                historical=True,
            )
            fresh = [s for s in snapshots if (s.scope, s.key, s.day) not in existing]
            report.written += len(fresh)
            report.kept += len(snapshots) - len(fresh)
            _upsert(fresh, replace=replace)
            if progress is not None:
                progress(index, len(days))
        audit.record(
            "quality.trends.backfill",
            actor=services._audit_actor(actor),
            target=None,
            detail={**report.as_dict(), "replace": replace},
        )
    return report
