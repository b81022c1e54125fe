"""The data quality API (数据质量接口) at /api/v1/quality/: scores, runs with samples, rules — read-only.

=======  ====================================  ==================================================
method   path                                  what
=======  ====================================  ==================================================
GET      ``/registries``                       each visible registry's latest score and grade
GET      ``/registries/{code}``                a registry's latest successful run: dimensions, rules
GET      ``/registries/{code}/rules``          the registry's rules (as data)
GET      ``/registries/{code}/runs``           the registry's recent runs (failed ones with their error)
GET      ``/runs/{id}``                        one run with per-rule results and masked samples
GET      ``/departments``                      departments' scores (those the caller may see)
GET      ``/departments/{code}``               a department's scorecard
GET      ``/resources/{key}``                  a catalogue resource's score
GET      ``/trends?scope=&key=&days=``         a department's or registry's score trend and change
GET      ``/trends/ranking?scope=&days=``      departments (or registries) by score, with the change
GET      ``/orders``                           rectification work orders (整改工单): filters, paging
GET      ``/orders/{code}``                    an order with masked samples and its timeline
POST     ``/orders/{code}/answer``             the department's answer (整改反馈); re-checked at once
POST     ``/orders/{code}/recheck``            ask for a re-check now
=======  ====================================  ==================================================

Callers: officials and administrators (session or bearer token) and API clients holding the
``quality:read`` scope (HTTP Basic or a client-credentials token); anyone else is refused (403).
Department scope as in :mod:`dgov.quality.services`: a registry's results for those who may read
the registry (samples within their division), a department's scorecard for the department itself,
covering data administrators and platform administrators. Errors are problem+json.
"""

from __future__ import annotations

import datetime
from typing import Any, Literal

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError

from dgov.api.auth import bearer_auth, client_auth, session_auth
from dgov.kernel.models import Organization
from dgov.quality import rectification, scoring, services, trends
from dgov.quality.models import QualityRule, QualityRun, RectificationOrder, RuleResult
from dgov.registry.models import Registry

router = Router(tags=["quality"], auth=[client_auth, bearer_auth, session_auth])

SCOPE = "quality:read"
RECENT_RUNS = 20


# --- Schemas -------------------------------------------------------------------------------------------


class SummaryOut(Schema):
    """A score with grade and dimension scores (0–100; null when nothing could be scored)."""

    score: float | None
    grade: str
    dimensions: dict[str, float]
    rules: int
    scored: int
    checked: int
    failed: int


class RunBrief(Schema):
    """A run without its results."""

    id: int
    registry: str
    status: str
    requested_by: str
    requested_at: str
    started_at: str | None
    finished_at: str | None
    rows: int
    rule_count: int
    score: float | None
    grade: str
    dimension_scores: dict[str, float]
    error: str


class ResultOut(Schema):
    """One rule's result in a run."""

    rule: str
    name: str
    type: str
    dimension: str
    weight: int
    owner: str
    resource: str | None
    fields: list[str]
    checked: int
    failed: int
    pass_rate: float | None
    samples: list[dict[str, Any]] | None = None


class RegistryScore(Schema):
    """A registry and its latest successful run (if any)."""

    code: str
    name: str
    owner: str
    run: RunBrief | None


class RegistryDetail(Schema):
    """A registry's latest successful run with its summary and results (no samples: see the run)."""

    code: str
    name: str
    run: RunBrief | None
    summary: SummaryOut
    results: list[ResultOut]


class RunDetail(Schema):
    """A run with per-rule results and the samples the caller may see."""

    run: RunBrief
    summary: SummaryOut
    results: list[ResultOut]


class RuleOut(Schema):
    """A rule as data."""

    code: str
    name: str
    description: str
    registry: str
    resource: str | None
    fields: list[str]
    type: str
    params: dict[str, Any]
    sql: str
    dimension: str
    severity: str
    weight: int
    enabled: bool
    owner: str


class DepartmentScore(Schema):
    """A department and its summary."""

    code: str
    name: str
    summary: SummaryOut


class ScorecardRegistry(Schema):
    """One registry in a scorecard."""

    code: str
    name: str
    run: int
    summary: SummaryOut


class ScorecardOut(Schema):
    """A department's scorecard."""

    code: str
    name: str
    summary: SummaryOut
    registries: list[ScorecardRegistry]
    results: list[ResultOut]


class ResourceScore(Schema):
    """A catalogue resource's score from its registry's latest successful run."""

    code: str
    name: str
    run: int | None
    summary: SummaryOut
    results: list[ResultOut]


# --- Helpers -------------------------------------------------------------------------------------------


def _reader(request: HttpRequest):
    """The authenticated principal, if it may read quality results at all (else 403)."""
    principal = request.auth
    if hasattr(principal, "client_id"):
        if not principal.has_scope(SCOPE):
            raise PermissionDenied(gettext("当前凭证没有 %(scope)s 权限范围。") % {"scope": SCOPE})
        return principal
    if getattr(principal, "kind", "") in ("official", "admin") or getattr(principal, "is_superuser", False):
        return principal
    raise PermissionDenied(gettext("数据质量接口仅向工作人员和部门应用开放。"))


def _iso(value) -> str | None:
    """A datetime as ISO text, or None."""
    return value.isoformat() if value is not None else None


def _run_brief(run: QualityRun) -> dict:
    """A run as :class:`RunBrief`."""
    return {
        "id": run.pk,
        "registry": run.registry.code,
        "status": run.status,
        "requested_by": run.requested_by,
        "requested_at": run.requested_at.isoformat(),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "rows": run.rows,
        "rule_count": run.rule_count,
        "score": float(run.score) if run.score is not None else None,
        "grade": run.grade,
        "dimension_scores": run.dimension_scores or {},
        "error": run.error,
    }


def _result(result: RuleResult, samples: list[dict] | None = None) -> dict:
    """A result as :class:`ResultOut`."""
    return {
        "rule": result.rule_code,
        "name": result.rule_name,
        "type": result.rule_type,
        "dimension": result.dimension,
        "weight": result.weight,
        "owner": result.owner.code,
        "resource": result.resource.code if result.resource_id else None,
        "fields": result.fields,
        "checked": result.checked,
        "failed": result.failed,
        "pass_rate": float(result.pass_rate) if result.pass_rate is not None else None,
        "samples": samples,
    }


def _registry(code: str, principal) -> Registry:
    """A registry whose quality the caller may read (404 unknown, 403 not allowed)."""
    registry = Registry.objects.select_related("owner").filter(code=code).first()
    if registry is None:
        raise HttpError(404, gettext("信息库不存在。"))
    if not services.can_view_registry(principal, registry):
        raise PermissionDenied(gettext("无权查看该信息库的数据质量。"))
    return registry


def _results(run: QualityRun):
    """A run's results with owners and resources."""
    return run.results.select_related("owner", "resource").order_by("rule_code")


# --- Routes --------------------------------------------------------------------------------------------


@router.get("/registries", response=list[RegistryScore], summary="各信息库最新质量评分")
def registry_scores(request: HttpRequest):
    """Every registry with quality rules or runs that the caller may see, with its latest successful run."""
    principal = _reader(request)
    return [
        {
            "code": registry.code,
            "name": registry.name,
            "owner": registry.owner.code,
            "run": _run_brief(run) if run is not None else None,
        }
        for registry, run in services.registry_scores(principal)
    ]


@router.get("/registries/{code}", response=RegistryDetail, summary="信息库质量评分详情")
def registry_detail(request: HttpRequest, code: str):
    """The registry's latest successful run: summary by dimension and per-rule results."""
    principal = _reader(request)
    registry = _registry(code, principal)
    run = services.latest_run(registry)
    results = list(_results(run)) if run is not None else []
    return {
        "code": registry.code,
        "name": registry.name,
        "run": _run_brief(run) if run is not None else None,
        "summary": scoring.summarize(results).as_dict(),
        "results": [_result(r) for r in results],
    }


@router.get("/registries/{code}/rules", response=list[RuleOut], summary="信息库的质量规则")
def registry_rules(request: HttpRequest, code: str):
    """The registry's rules, enabled or not, as data."""
    principal = _reader(request)
    registry = _registry(code, principal)
    rules: list[QualityRule] = list(services.rules_of(registry))
    return [
        {
            "code": rule.code,
            "name": rule.name,
            "description": rule.description,
            "registry": registry.code,
            "resource": rule.resource.code if rule.resource_id else None,
            "fields": rule.fields,
            "type": rule.rule_type,
            "params": rule.params or {},
            "sql": rule.sql,
            "dimension": rule.dimension,
            "severity": rule.severity,
            "weight": rule.weight,
            "enabled": rule.enabled,
            "owner": rule.owner.code,
        }
        for rule in rules
    ]


@router.get("/registries/{code}/runs", response=list[RunBrief], summary="信息库的质量检查记录")
def registry_runs(request: HttpRequest, code: str):
    """The registry's most recent runs, newest first (failed runs with their error)."""
    principal = _reader(request)
    registry = _registry(code, principal)
    runs = QualityRun.objects.filter(registry=registry).select_related("registry").order_by("-requested_at", "-id")
    return [_run_brief(run) for run in runs[:RECENT_RUNS]]


@router.get("/runs/{run_id}", response=RunDetail, summary="质量检查结果（含不合格样例）")
def run_detail(request: HttpRequest, run_id: int):
    """One run with per-rule results and masked samples of failing rows (within the caller's division)."""
    principal = _reader(request)
    run = QualityRun.objects.select_related("registry").filter(pk=run_id).first()
    if run is None or not services.can_view_registry(principal, run.registry):
        raise HttpError(404, gettext("质量检查记录不存在。"))
    results = list(_results(run))
    prefix = services.sample_prefix(principal, run.registry)  # once, not per result
    return {
        "run": _run_brief(run),
        "summary": scoring.summarize(results).as_dict(),
        "results": [_result(r, services.visible_samples(r.samples, prefix)) for r in results],
    }


@router.get("/departments", response=list[DepartmentScore], summary="各部门数据质量评分")
def department_scores(request: HttpRequest):
    """Departments (as rule owners) with their weighted scores, best first — those the caller may see."""
    principal = _reader(request)
    return [
        {"code": department.code, "name": department.name, "summary": summary.as_dict()}
        for department, summary in services.department_scores(principal)
    ]


@router.get("/departments/{code}", response=ScorecardOut, summary="部门数据质量成绩单")
def department_scorecard(request: HttpRequest, code: str):
    """A department's scorecard: overall and per registry, with its rules' results."""
    principal = _reader(request)
    department = Organization.objects.select_related("division").filter(code=code).first()
    if department is None:
        raise HttpError(404, gettext("部门不存在。"))
    card = services.department_scorecard(department, actor=principal)
    return {
        "code": department.code,
        "name": department.name,
        "summary": card.summary.as_dict(),
        "registries": [
            {"code": registry.code, "name": registry.name, "run": run.pk, "summary": summary.as_dict()}
            for registry, run, summary in card.registries
        ],
        "results": [_result(r) for r in card.results],
    }


@router.get("/resources/{key}", response=ResourceScore, summary="信息资源的数据质量评分")
def resource_score(request: HttpRequest, key: str):
    """A catalogue resource's score: its own rules and the registry rules on its items' fields."""
    principal = _reader(request)
    resource = services.find_resource(key)
    if resource is None:
        raise HttpError(404, gettext("信息资源不存在。"))
    registry, _links, _problems = services.resource_target(resource)
    if registry is not None and not services.can_view_registry(principal, registry):
        raise PermissionDenied(gettext("无权查看该信息资源的数据质量。"))
    run, summary, results = services.resource_score(resource)
    return {
        "code": resource.code,
        "name": resource.name,
        "run": run.pk if run is not None else None,
        "summary": summary.as_dict(),
        "results": [_result(r) for r in results],
    }


# --- Trends (质量趋势) ------------------------------------------------------------------------------------


class TrendPoint(Schema):
    """One day's snapshot: score, grade, dimension scores, counts and active rectification orders."""

    day: str
    score: float | None
    grade: str
    dimensions: dict[str, float]
    rules: int
    checked: int
    failed: int
    open_orders: int


class DimensionChangeOut(Schema):
    """A dimension at the start and end of the period."""

    start: float | None
    end: float | None
    change: float | None
    direction: str


class ComparisonOut(Schema):
    """The change over the period (start: the score in effect when it began, or the first snapshot)."""

    start: TrendPoint | None
    end: TrendPoint | None
    change: float | None
    direction: str
    dimensions: dict[str, DimensionChangeOut]


class TrendOut(Schema):
    """A department's or registry's series over a period."""

    scope: str
    key: str
    name: str
    since: str
    until: str
    days: int
    baseline: TrendPoint | None
    points: list[TrendPoint]
    comparison: ComparisonOut


class RankingRowOut(Schema):
    """A department or registry with its current score and the change over the period."""

    code: str
    name: str
    score: float | None
    grade: str
    change: float | None
    direction: str


class RankingOut(Schema):
    """The overview: best score first."""

    scope: str
    since: str
    until: str
    rows: list[RankingRowOut]


@router.get("/trends", response=TrendOut, summary="数据质量得分趋势")
def score_trend(
    request: HttpRequest,
    scope: Literal["department", "registry"],
    key: str,
    days: int | None = None,
    since: datetime.date | None = None,
    until: datetime.date | None = None,
):
    """A department's (scorecard) or registry's daily scores over a period, with the change overall and per dimension.

    ``days`` back from today (default 90), or ``since``/``until``; a department's trend for the
    department itself, covering data administrators and platform administrators, a registry's for
    those who may read its quality.
    """
    principal = _reader(request)
    try:
        found = trends.trend(scope, key, actor=principal, days=days, since=since, until=until)
    except (Organization.DoesNotExist, Registry.DoesNotExist):
        raise HttpError(404, gettext("部门不存在。") if scope == "department" else gettext("信息库不存在。")) from None
    return found.as_dict()


@router.get("/trends/ranking", response=RankingOut, summary="数据质量评分排名及变化")
def score_ranking(request: HttpRequest, scope: Literal["department", "registry"] = "department", days: int = 90):
    """Departments (or registries) the caller may see, best score first, with the change over the last ``days``."""
    principal = _reader(request)
    since, until, rows = trends.ranking(scope, actor=principal, days=days)
    return {
        "scope": scope,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "rows": [
            {
                "code": row.code,
                "name": row.target.name,
                "score": float(row.summary.score) if row.summary.score is not None else None,
                "grade": row.summary.grade,
                "change": float(row.comparison.change) if row.comparison.change is not None else None,
                "direction": row.comparison.direction,
            }
            for row in rows
        ],
    }


# --- Rectification work orders (整改工单) ------------------------------------------------------------------

ORDER_SCOPE = "quality:rectify"
MAX_ORDER_PAGE_SIZE = 100


class OrderQuery(Schema):
    """Filters and paging of the order list."""

    status: str = Field(
        "active", max_length=16, description="active（未办结，默认）/ all / open / submitted / resolved / cancelled"
    )
    department: str = Field("", max_length=32, description="整改部门编码")
    registry: str = Field("", max_length=100, description="信息库编码")
    source: str = Field("", max_length=8, description="rule / linkage")
    overdue: bool = Field(False, description="仅逾期工单")
    page: int = Field(1, ge=1, le=100000)
    page_size: int = Field(20, ge=1, le=MAX_ORDER_PAGE_SIZE)


class OrderOut(Schema):
    """A rectification work order (without samples and timeline)."""

    code: str
    source: str
    registry: str
    registry_name: str
    finding_key: str
    rule: str | None
    title: str
    dimension: str
    department: str
    department_name: str
    fields: list[str]
    status: str
    failed_at_open: int
    failed_now: int
    deadline_days: int
    opened_on: str
    due_on: str
    remaining_days: int
    overdue_days: int
    overdue: bool
    escalation_level: int
    escalated_at: str | None
    recheck_requested_at: str | None
    closed_at: str | None
    closed_by: str


class OrderEventOut(Schema):
    """One step of an order's timeline."""

    at: str
    actor: str
    action: str
    note: str
    data: dict[str, Any]


class OrderDetailOut(OrderOut):
    """An order with its masked samples (within the caller's division), answer, runs and timeline."""

    response: str
    detail: dict[str, Any]
    opened_run: int | None
    last_run: int | None
    samples: list[dict[str, Any]]
    events: list[OrderEventOut]


class OrderPage(Schema):
    """One page of orders."""

    count: int
    page: int
    pages: int
    results: list[OrderOut]


class AnswerIn(Schema):
    """The department's answer (整改说明)."""

    note: str = Field(..., min_length=1, max_length=2000)


def _order_out(order: RectificationOrder) -> dict:
    """An order as :class:`OrderOut`."""
    due = rectification.deadline(order)
    return {
        "code": order.code,
        "source": order.source,
        "registry": order.registry.code,
        "registry_name": order.registry.name,
        "finding_key": order.finding_key,
        "rule": order.rule.code if order.rule_id else None,
        "title": order.title,
        "dimension": order.dimension,
        "department": order.department.code,
        "department_name": order.department.name,
        "fields": list(order.fields or []),
        "status": order.status,
        "failed_at_open": order.failed_at_open,
        "failed_now": order.failed_now,
        "deadline_days": order.deadline_days,
        "opened_on": order.opened_on.isoformat(),
        "due_on": order.due_on.isoformat(),
        "remaining_days": due.remaining,
        "overdue_days": due.overdue,
        "overdue": due.is_overdue,
        "escalation_level": order.escalation_level,
        "escalated_at": _iso(order.escalated_at),
        "recheck_requested_at": _iso(order.recheck_requested_at),
        "closed_at": _iso(order.closed_at),
        "closed_by": order.closed_by,
    }


def _order_detail(order: RectificationOrder, principal) -> dict:
    """An order as :class:`OrderDetailOut`."""
    return {
        **_order_out(order),
        "response": order.response,
        "detail": order.detail or {},
        "opened_run": order.opened_run_id,
        "last_run": order.last_run_id,
        "samples": rectification.order_samples(order, principal),
        "events": [
            {"at": e.at.isoformat(), "actor": e.actor, "action": e.action, "note": e.note, "data": e.data or {}}
            for e in order.events.all()
        ],
    }


def _order_actor(request: HttpRequest):
    """Who acts on an order: an API client holding the ``quality:rectify`` scope (403 otherwise), or the reader."""
    principal = request.auth
    if hasattr(principal, "client_id"):
        if not principal.has_scope(ORDER_SCOPE):
            raise PermissionDenied(gettext("当前凭证没有 %(scope)s 权限范围。") % {"scope": ORDER_SCOPE})
        return principal
    return _reader(request)


def _state_conflict(exc: ValidationError) -> None:
    """A refused state change (``code="state"``) as 409; any other validation error passes on."""
    if getattr(exc, "code", None) == "state":
        raise HttpError(409, "；".join(exc.messages)) from None


def _order(code: str, principal) -> RectificationOrder:
    """An order the caller may read (404 for unknown orders and other departments' orders alike)."""
    found = rectification.visible_orders(principal).filter(code=code).first()
    if found is None:
        raise HttpError(404, gettext("整改工单不存在。"))
    return found


@router.get("/orders", response=OrderPage, summary="整改工单列表")
def order_list(request: HttpRequest, params: Query[OrderQuery]):
    """The orders the caller may see (its department's; data administrators: their division's), filtered and paged."""
    principal = _reader(request)
    orders = rectification.filter_orders(
        rectification.visible_orders(principal),
        status=params.status,
        department=params.department,
        registry=params.registry,
        source=params.source,
        overdue=params.overdue,
    )
    orders = orders.order_by("due_on", "id") if params.status == "active" else orders.order_by("-opened_on", "-id")
    count = orders.count()
    start = (params.page - 1) * params.page_size
    return {
        "count": count,
        "page": params.page,
        "pages": max(1, -(-count // params.page_size)),
        "results": [_order_out(order) for order in orders[start : start + params.page_size]],
    }


@router.get("/orders/{code}", response=OrderDetailOut, summary="整改工单详情（含办理记录）")
def order_detail(request: HttpRequest, code: str):
    """One order with masked samples, the department's answer and the timeline."""
    principal = _reader(request)
    return _order_detail(_order(code, principal), principal)


@router.post("/orders/{code}/answer", response=OrderDetailOut, summary="反馈整改情况（整改部门）")
def order_answer(request: HttpRequest, code: str, body: AnswerIn):
    """The order's department answers it: the note is kept, the order is submitted and re-checked at once.

    API clients need the ``quality:rectify`` scope; only the order's own department may answer
    (403), and only an open order (409).
    """
    principal = _order_actor(request)
    order = _order(code, principal)
    try:
        answered = rectification.answer_order(order, actor=principal, note=body.note)
    except ValidationError as exc:
        _state_conflict(exc)
        raise
    return _order_detail(answered, principal)


@router.post("/orders/{code}/recheck", response=OrderDetailOut, summary="申请复核整改工单")
def order_recheck(request: HttpRequest, code: str):
    """Ask for a re-check now (the order's department or a rule manager); a run is queued unless one is waiting."""
    principal = _order_actor(request)
    order = _order(code, principal)
    try:
        rectification.request_recheck(order, actor=principal)
    except ValidationError as exc:
        _state_conflict(exc)
        raise
    order.refresh_from_db()
    return _order_detail(order, principal)
