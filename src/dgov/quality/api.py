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
=======  ====================================  ==================================================

Callers: officials and administrators (session or bearer token) and API clients holding the
``quality:read`` scope (HTTP Basic or a client-credentials token); anyone else is refused (403).
Department scope as in :mod:`dgov.quality.services`: a registry's results for those who may read
the registry (samples within their division), a department's scorecard for the department itself,
covering data administrators and platform administrators. Errors are problem+json.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.utils.translation import gettext
from ninja import Router, Schema
from ninja.errors import HttpError

from dgov.api.auth import bearer_auth, client_auth, session_auth
from dgov.kernel.models import Organization
from dgov.quality import scoring, services
from dgov.quality.models import QualityRule, QualityRun, RuleResult
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
    return {
        "run": _run_brief(run),
        "summary": scoring.summarize(results).as_dict(),
        "results": [_result(r, services.run_samples(run, r, principal)) for r in results],
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
