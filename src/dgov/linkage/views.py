"""Officials' entity-resolution pages (数据比对) under /workbench/linkage/: runs, a run, its golden records.

Thin views: parse, authorize, call :mod:`dgov.linkage.services`, render. Starting a run is for
provincial data administrators (the service decides again and audits a refusal); a run and its
golden records are shown to those who may read every registry of the run in full
(:func:`~dgov.linkage.services.can_view_run`). Values are masked before they reach a template, a
lookup by ID number travels by POST (never in a URL), and opening a golden record is audited.
"""

from __future__ import annotations

import math

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from dgov.linkage import services
from dgov.linkage.config import ROLES, LinkageConfigError
from dgov.linkage.golden import CONFLICT_DIMENSIONS
from dgov.linkage.models import GoldenRecord, LinkageRun
from dgov.registry.models import Registry
from dgov.web import navigation

PAGE_SIZE = 50
GENERIC_EXAMPLE = """\
name: 比对名称
mode: link            # link（多个信息库之间）| dedupe（一个信息库内查重）| link_and_dedupe
entity: person        # person | organization
tables:
  - name: a
    registry: 信息库编码
    fields: {字段名: full_name, 证件号字段: identifier}
  - name: b
    registry: 另一个信息库编码
    fields: {字段名: full_name, 证件号字段: identifier}
"""
CONFLICT_KINDS = {
    "differs": _("与权威值不一致"),
    "authority_inconsistent": _("权威来源自身不一致"),
    "missing_in_authority": _("权威来源缺值"),
}


class RunForm(forms.Form):
    """The settings of a new run as YAML."""

    settings = forms.CharField(
        label=_("比对设置（YAML）"),
        widget=forms.Textarea(attrs={"rows": 24, "spellcheck": "false", "class": "code"}),
        max_length=services.SETTINGS_MAX_BYTES,
    )


class GoldenSearchForm(forms.Form):
    """Exact lookup of a golden record by ID number or USCC (sent by POST)."""

    identifier = forms.CharField(label=_("证件号码（精确查询）"), max_length=32, required=False)
    cluster = forms.IntegerField(label=_("聚类编号"), min_value=0, required=False)


def _official(request):
    """The user, when an official or administrator; PermissionDenied for anyone else."""
    user = request.user
    if not navigation.officials_only(user):
        raise PermissionDenied(gettext("数据比对页面仅向工作人员和系统管理员开放。"))
    return user


def _run(run_id: int, user) -> LinkageRun:
    """A run the user may see (404 unknown, 403 not allowed)."""
    run = LinkageRun.objects.filter(pk=run_id).first()
    if run is None:
        raise Http404(gettext("数据比对记录不存在。"))
    if not services.can_view_run(user, run):
        raise PermissionDenied(gettext("无权查看该数据比对的结果。"))
    return run


def example_settings() -> str:
    """The settings a new run starts from: the demo pair when its registries are installed, else a skeleton."""
    if Registry.objects.filter(code__in=["population.person", "social_security.insured"]).count() == 2:
        return services.DEMO_SETTINGS.read_text(encoding="utf-8")
    return GENERIC_EXAMPLE


@login_required
def index(request):
    """The runs the user may see, newest first, and the way to start one."""
    user = _official(request)
    context = {"runs": services.visible_runs(user), "may_run": services.may_run(user)}
    return render(request, "linkage/index.html", context)


@login_required
def new(request):
    """Start a run (provincial data administrators): YAML settings, validated before it is queued."""
    user = _official(request)
    if not services.may_run(user):
        if request.method == "POST":
            raise services.refusal(user)  # an attempted start is audited
        raise PermissionDenied(gettext("只有省级数据管理员可以发起数据比对。"))
    if request.method != "POST":
        form = RunForm(initial={"settings": example_settings()})
        return render(request, "linkage/new.html", {"form": form})
    form = RunForm(request.POST)
    if form.is_valid():
        try:
            data = services.parse_settings_text(form.cleaned_data["settings"])
            run = services.request_run(data, actor=user)
        except LinkageConfigError as exc:
            form.add_error("settings", str(exc))
        else:
            messages.success(request, gettext("已提交数据比对，稍后刷新查看结果。"))
            return redirect("linkage:run", run_id=run.pk)
    return render(request, "linkage/new.html", {"form": form}, status=422)


def _order_url(code: str) -> str:
    """The page of a rectification order, when the quality app has one."""
    if not code:
        return ""
    try:
        return reverse("quality:order", kwargs={"code": code})
    except NoReverseMatch:
        return ""


@login_required
def run(request, run_id: int):
    """A run: status, figures, conflicts by role and kind, the findings it raised and cleared."""
    user = _official(request)
    found = _run(run_id, user)
    metrics = found.metrics or {}
    conflicts = [
        {
            "role": role,
            "role_label": ROLES.get(role, role),
            "kinds": [
                {
                    "kind": kind,
                    "label": CONFLICT_KINDS.get(kind, kind),
                    "dimension": CONFLICT_DIMENSIONS.get(kind, ""),
                    "count": n,
                }
                for kind, n in sorted(kinds.items())
            ],
            "total": sum(kinds.values()),
        }
        for role, kinds in sorted((metrics.get("conflicts_by_role") or {}).items())
    ]
    findings = [{**f, "url": _order_url(f.get("order", ""))} for f in metrics.get("findings") or []]
    authority = [
        {"role": role, "role_label": ROLES.get(role, role), **value}
        for role, value in (metrics.get("authority") or {}).items()
    ]
    context = {
        "run": found,
        "metrics": metrics,
        "records": sorted((metrics.get("records") or {}).items()),
        "conflicts": conflicts,
        "findings": findings,
        "cleared": metrics.get("cleared") or [],
        "authority": authority,
        "seconds": sorted((metrics.get("seconds") or {}).items(), key=lambda kv: kv[0] == "total"),
    }
    return render(request, "linkage/run.html", context)


@login_required
def golden(request, run_id: int):
    """A run's golden records: paginated, or found by exact ID number (POST) or cluster number."""
    user = _official(request)
    found = _run(run_id, user)
    form = GoldenSearchForm(request.POST if request.method == "POST" else request.GET or None)
    identifier = ""
    cluster = None
    if form.is_bound and form.is_valid():
        cluster = form.cleaned_data.get("cluster")
        if request.method == "POST":
            identifier = (form.cleaned_data.get("identifier") or "").strip()
    records = services.find_golden_records(found, actor=user, identifier=identifier, cluster=cluster)
    total = records.count()
    pages = max(1, math.ceil(total / PAGE_SIZE))
    try:
        page = min(max(int(request.GET.get("page", "1")), 1), pages)
    except ValueError:
        page = 1
    rows = [
        {"record": record, "values": services.golden_summary(found, record)}
        for record in records[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    ]
    base = reverse("linkage:golden", kwargs={"run_id": found.pk})
    suffix = f"&cluster={cluster}" if cluster is not None else ""
    context = {
        "run": found,
        "form": GoldenSearchForm(initial={"cluster": cluster}),
        "rows": rows,
        "roles": [(role, ROLES[role]) for role in ROLES if role in (found.metrics or {}).get("authority", {})],
        "total": total,
        "page": page,
        "pages": pages,
        "prev_url": f"{base}?page={page - 1}{suffix}" if page > 1 else "",
        "next_url": f"{base}?page={page + 1}{suffix}" if page < pages else "",
        "searched": bool(identifier) or cluster is not None,
    }
    return render(request, "linkage/golden.html", context)


@login_required
def golden_record(request, run_id: int, cluster: int):
    """One golden record: masked values with their sources, members and conflicts (the view is audited)."""
    user = _official(request)
    found = _run(run_id, user)
    try:
        view = services.golden_record_view(found, cluster, actor=user)
    except GoldenRecord.DoesNotExist:
        raise Http404(gettext("黄金记录不存在。")) from None
    context = {"run": found, "view": view, "kinds": CONFLICT_KINDS}
    return render(request, "linkage/golden_record.html", context)
