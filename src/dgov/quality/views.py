"""Officials' data quality pages (数据质量): overview, a registry's rules and runs, a run's results, scorecards.

Thin views: parse, authorize, call :mod:`dgov.quality.services`, render. The workbench is for
officials and administrators; the services decide again who may change rules, start runs and
read which results (department and division scope), and audit what they do.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from dgov.kernel.models import Organization
from dgov.quality import io as quality_io
from dgov.quality import scoring, services
from dgov.quality.models import Dimension, QualityRule, QualityRun
from dgov.registry import services as registry_services
from dgov.registry.models import Registry
from dgov.web import navigation

RECENT_RUNS = 10


class RuleSetForm(forms.Form):
    """Upload of a YAML/JSON rule set."""

    file = forms.FileField(label=_("规则集文件（YAML 或 JSON）"))
    dry_run = forms.BooleanField(label=_("仅检查，不保存"), required=False)


def _official(request):
    """The user, when an official or administrator; PermissionDenied for anyone else."""
    user = request.user
    if not navigation.officials_only(user):
        raise PermissionDenied(gettext("数据质量页面仅向工作人员和系统管理员开放。"))
    return user


def _registry(code: str, user) -> Registry:
    """A registry whose quality the user may read (404 unknown, 403 not allowed)."""
    registry = Registry.objects.select_related("owner").filter(code=code).first()
    if registry is None:
        raise Http404(gettext("信息库不存在。"))
    if not services.can_view_registry(user, registry):
        raise PermissionDenied(gettext("无权查看该信息库的数据质量。"))
    return registry


def _dimension_rows(dimensions: dict) -> list[tuple[str, object]]:
    """(label, score) of each dimension in the standard's order (None where not scored)."""
    return [(label, dimensions.get(value)) for value, label in Dimension.choices]


@login_required
def index(request):
    """Registries with their latest scores, departments' scores, and the rule-set upload for managers."""
    user = _official(request)
    context = {
        "registries": services.registry_scores(user),
        "departments": services.department_scores(user),
        "may_manage": services.may_manage_rules(user),
        "form": RuleSetForm(),
        "own": registry_services.department_of(user),
    }
    return render(request, "quality/index.html", context)


@login_required
@require_POST
def upload(request):
    """Load an uploaded rule set (all or nothing); show the report."""
    user = _official(request)
    form = RuleSetForm(request.POST, request.FILES)
    report = None
    if form.is_valid():
        upload_file = form.cleaned_data["file"]
        try:
            if upload_file.size > quality_io.MAX_BYTES:
                raise quality_io.RuleSetError(gettext("规则文件过大（上限 4 MiB）"))
            text = upload_file.read().decode("utf-8-sig")
            name = upload_file.name.lower()
            fmt = "json" if name.endswith(".json") else "yaml" if name.endswith((".yaml", ".yml")) else ""
            rules = quality_io.parse_rule_set(text, fmt=fmt)
            report = services.load_rules(
                rules, actor=user, source=upload_file.name, dry_run=form.cleaned_data["dry_run"]
            )
        except UnicodeDecodeError:
            form.add_error("file", gettext("规则文件应为 UTF-8 编码"))
        except quality_io.RuleSetError as exc:
            form.add_error("file", str(exc))
    if report is not None and report.ok and not form.cleaned_data["dry_run"]:
        messages.success(request, report.to_text())
        return redirect("quality:index")
    context = {"form": form, "report": report, "dry_run": form.is_valid() and form.cleaned_data["dry_run"]}
    return render(request, "quality/upload.html", context, status=200 if report is None or report.ok else 422)


@login_required
def registry(request, code: str):
    """A registry's rules, its recent runs and its latest score."""
    user = _official(request)
    target = _registry(code, user)
    latest = services.latest_run(target)
    context = {
        "registry": target,
        "rules": list(services.rules_of(target)),
        "runs": list(QualityRun.objects.filter(registry=target).order_by("-requested_at", "-id")[:RECENT_RUNS]),
        "latest": latest,
        "dimensions": _dimension_rows(latest.dimension_scores if latest else {}),
        "may_manage": services.may_manage_rules(user),
        "may_write_sql": services.may_write_sql(user),
    }
    return render(request, "quality/registry.html", context)


@login_required
@require_POST
def toggle(request, code: str):
    """Enable or disable a rule (managers)."""
    user = _official(request)
    rule = QualityRule.objects.select_related("registry", "resource", "owner").filter(code=code).first()
    if rule is None:
        raise Http404(gettext("规则不存在。"))
    enabled = request.POST.get("enabled") == "1"
    services.set_rule_enabled(rule, enabled, actor=user)
    messages.success(request, gettext("已启用规则。") if enabled else gettext("已停用规则。"))
    return redirect("quality:registry", code=rule.registry.code)


@login_required
@require_POST
def run_now(request, code: str):
    """Queue a run of the registry's rules for the background worker (managers)."""
    user = _official(request)
    target = _registry(code, user)
    try:
        run = services.request_run(target, actor=user)
    except ValidationError as exc:
        messages.error(request, "；".join(exc.messages))
        return redirect("quality:registry", code=target.code)
    messages.success(request, gettext("已提交质量检查，稍后刷新查看结果。"))
    return redirect("quality:run", run_id=run.pk)


@login_required
def run(request, run_id: int):
    """A run's results per rule, with masked samples of failing rows within the user's division."""
    user = _official(request)
    found = QualityRun.objects.select_related("registry").filter(pk=run_id).first()
    if found is None or not services.can_view_registry(user, found.registry):
        raise Http404(gettext("质量检查记录不存在。"))
    results = list(found.results.select_related("owner", "resource").order_by("dimension", "rule_code"))
    rows = [{"result": r, "samples": services.run_samples(found, r, user)} for r in results]
    context = {
        "run": found,
        "rows": rows,
        "summary": scoring.summarize(results),
        "dimensions": _dimension_rows(found.dimension_scores or {}),
        "dimension_labels": dict(Dimension.choices),
    }
    return render(request, "quality/run.html", context)


@login_required
def department(request, code: str):
    """A department's scorecard: overall, by dimension, by registry, and its rules' results."""
    user = _official(request)
    target = Organization.objects.select_related("division").filter(code=code).first()
    if target is None:
        raise Http404(gettext("部门不存在。"))
    card = services.department_scorecard(target, actor=user)
    context = {
        "department": target,
        "card": card,
        "dimensions": _dimension_rows(card.summary.dimensions),
        "dimension_labels": dict(Dimension.choices),
    }
    return render(request, "quality/department.html", context)
