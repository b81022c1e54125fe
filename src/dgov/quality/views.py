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
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from dgov.kernel import dataload
from dgov.kernel.models import Organization
from dgov.quality import charts, rectification, scoring, services, trends
from dgov.quality import io as quality_io
from dgov.quality.models import Dimension, QualityRule, QualityRun, RectificationOrder
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
            rules = quality_io.parse_rule_set(text, fmt=dataload.format_of(upload_file.name))
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
        **_trend_context(request, trends.REGISTRY, target.code, user),
        **_orders_summary(user, registry=target),
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
    prefix = services.sample_prefix(user, found.registry)  # once, not per result
    rows = [{"result": r, "samples": services.visible_samples(r.samples, prefix)} for r in results]
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
        **_trend_context(request, trends.DEPARTMENT, target.code, user),
        **_orders_summary(user, department=target),
    }
    return render(request, "quality/department.html", context)


# --- Trends (质量趋势) ------------------------------------------------------------------------------------


def _period_days(request) -> int:
    """The period chosen with ``?days=`` (30, 90 or 365; anything else: 90)."""
    try:
        days = int(request.GET.get("days", trends.DEFAULT_DAYS))
    except (TypeError, ValueError):
        return trends.DEFAULT_DAYS
    return days if days in trends.PERIODS else trends.DEFAULT_DAYS


def _trend_context(request, scope: str, key: str, user) -> dict:
    """The trend block of a scorecard or registry page: chart, table fallback, comparison, period selector."""
    days = _period_days(request)
    found = trends.trend(scope, key, actor=user, days=days)
    return {
        "trend": found,
        "trend_chart": charts.trend_chart(found),
        "trend_rows": charts.table_rows(found),
        "trend_days": days,
        "trend_periods": trends.PERIODS,
        "dimension_heads": [label for _value, label in Dimension.choices],
    }


@login_required
def overview(request):
    """The provincial overview (质量趋势总览): departments and registries by score, with the change over the period."""
    user = _official(request)
    days = _period_days(request)
    since, until, departments = trends.ranking(trends.DEPARTMENT, actor=user, days=days)
    _since, _until, registries = trends.ranking(trends.REGISTRY, actor=user, days=days)
    context = {
        "since": since,
        "until": until,
        "departments": departments,
        "registries": registries,
        "trend_days": days,
        "trend_periods": trends.PERIODS,
    }
    return render(request, "quality/trends.html", context)


# --- Rectification work orders (整改工单) ---------------------------------------------------------------


ORDERS_PER_PAGE = 50


class AnswerForm(forms.Form):
    """The department's answer to an order (整改反馈)."""

    note = forms.CharField(label=_("整改说明"), max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))


class RecheckForm(forms.Form):
    """A request to re-check an order now."""

    note = forms.CharField(label=_("说明（可选）"), max_length=2000, required=False)


class CancelForm(forms.Form):
    """A data administrator's cancellation of an order, with its reason."""

    reason = forms.CharField(label=_("撤销原因"), max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


def _orders_summary(user, **scope) -> dict:
    """Active order counts for a registry or department page (``registry=`` or ``department=``), as the user may see."""
    orders = rectification.visible_orders(user)
    if "registry" in scope:
        orders = orders.filter(registry=scope["registry"])
    if "department" in scope:
        orders = orders.filter(department=scope["department"])
    active = orders.filter(status__in=rectification.ACTIVE)
    return {
        "open_orders": active.count(),
        "overdue_orders": rectification.filter_orders(active, overdue=True).count(),
    }


def _visible_order(user, code: str):
    """An order the user may read (404 for unknown orders and other departments' orders alike)."""
    found = rectification.visible_orders(user).filter(code=code).first()
    if found is None:
        raise Http404(gettext("整改工单不存在。"))
    return found


@login_required
def orders(request):
    """整改工单 list: the user's department's orders (data administrators: their division's; provincial: all)."""
    user = _official(request)
    base = rectification.visible_orders(user)
    status = request.GET.get("status", "active")
    department = request.GET.get("department", "").strip()
    registry_code = request.GET.get("registry", "").strip()
    overdue = request.GET.get("overdue") == "1"
    try:
        found = rectification.filter_orders(
            base, status=status, department=department, registry=registry_code, overdue=overdue
        )
    except ValidationError as exc:
        messages.error(request, "；".join(exc.messages))
        status = "active"
        found = rectification.filter_orders(base, status=status)
    found = found.order_by("due_on", "id") if status == "active" else found.order_by("-opened_on", "-id")
    page = Paginator(found, ORDERS_PER_PAGE).get_page(request.GET.get("page"))
    rows = [(order, rectification.deadline(order)) for order in page.object_list]
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "page": page,
        "rows": rows,
        "status": status,
        "statuses": [("active", gettext("未办结")), ("all", gettext("全部")), *RectificationOrder.Status.choices],
        "department": department,
        "departments": Organization.objects.filter(pk__in=base.values("department_id")).order_by("code"),
        "registry": registry_code,
        "registries": Registry.objects.filter(pk__in=base.values("registry_id")).order_by("code"),
        "overdue": overdue,
        "query": query.urlencode(),
    }
    return render(request, "quality/orders.html", context)


@login_required
def order(request, code: str):
    """An order: finding, deadline, masked samples, timeline, and the actions the user may take."""
    user = _official(request)
    found = _visible_order(user, code)
    context = {
        "order": found,
        "deadline": rectification.deadline(found),
        "samples": rectification.order_samples(found, user),
        "events": list(found.events.all()),
        "action_labels": rectification.ACTION_LABELS,
        "may_answer": rectification.may_answer(user, found),
        "may_recheck": rectification.may_recheck(user, found),
        "may_cancel": rectification.may_cancel(user, found),
        "answer_form": AnswerForm(),
        "recheck_form": RecheckForm(),
        "cancel_form": CancelForm(),
    }
    return render(request, "quality/order.html", context)


def _order_action(request, code: str, form_class, act, done: str):
    """Run one order action from a posted form; errors become messages, refusals 403."""
    user = _official(request)
    found = _visible_order(user, code)
    form = form_class(request.POST)
    if not form.is_valid():
        messages.error(request, "；".join(m for errors in form.errors.values() for m in errors))
        return redirect("quality:order", code=found.code)
    try:
        act(found, user, form.cleaned_data)
    except ValidationError as exc:
        messages.error(request, "；".join(exc.messages))
    else:
        messages.success(request, done)
    return redirect("quality:order", code=found.code)


@login_required
@require_POST
def order_answer(request, code: str):
    """The department answers an order: note, status submitted, re-check requested."""
    return _order_action(
        request,
        code,
        AnswerForm,
        lambda order, user, data: rectification.answer_order(order, actor=user, note=data["note"]),
        gettext("已提交整改反馈，系统将自动复核。"),
    )


@login_required
@require_POST
def order_recheck(request, code: str):
    """Request a re-check of an order now."""
    return _order_action(
        request,
        code,
        RecheckForm,
        lambda order, user, data: rectification.request_recheck(order, actor=user, note=data["note"]),
        gettext("已申请复核，稍后刷新查看结果。"),
    )


@login_required
@require_POST
def order_cancel(request, code: str):
    """Cancel an order with a reason (data administrators)."""
    return _order_action(
        request,
        code,
        CancelForm,
        lambda order, user, data: rectification.cancel_order(order, actor=user, reason=data["reason"]),
        gettext("已撤销工单。"),
    )
