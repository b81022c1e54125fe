"""Officials' catalogue pages (资源目录): search with facets, entry, create/edit, my drafts, review inbox.

Thin views: parse the request, authorize, call ``dgov.catalog.services``, render. The workbench is
for officials and administrators; the services decide again who may edit, submit, review and retire
(department scope, data administrators), and refuse anything else themselves.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from dgov.catalog import dcat, search, services
from dgov.catalog.forms import DecisionForm, ItemFormSet, ReasonForm, ResourceForm, SearchForm, registry_choices
from dgov.catalog.models import InformationResource, OpenType, ResourceClass, SharingType
from dgov.kernel.models import Organization
from dgov.quality import services as quality_services
from dgov.web import navigation

FACET_TITLES = {
    "provider": _("提供部门"),
    "class_item": _("领域分类"),
    "sharing_type": _("共享类型"),
    "open_type": _("开放属性"),
    "format": _("资源格式"),
}


def _official(request):
    """``(user, department)`` for an official or administrator; PermissionDenied for anyone else."""
    user = request.user
    if not navigation.officials_only(user):
        raise PermissionDenied(gettext("资源目录页面仅向工作人员和系统管理员开放。"))
    return user, services.department_of(user)


def _entry(key: str) -> InformationResource:
    """The entry with this URL key, or 404."""
    resource = services.find_resource(key.replace("-", "/", 1))
    if resource is None:
        raise Http404(gettext("信息资源不存在。"))
    return resource


def _wants_partial(request) -> bool:
    """True for an htmx request that replaces part of the page."""
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-History-Restore-Request") != "true"


def _error_messages(exc: ValidationError) -> list[str]:
    """A service's validation messages as a flat list."""
    if hasattr(exc, "error_dict"):
        return [m for errors in exc.message_dict.values() for m in errors]
    return list(exc.messages)


# --- Search ---------------------------------------------------------------------------------------------


def _facet_links(request, result: search.SearchResult, params: dict) -> list[dict]:
    """Facets with labels, counts and the URL that toggles each value."""
    labels = {
        "sharing_type": dict(SharingType.choices),
        "open_type": dict(OpenType.choices),
        "format": dict(InformationResource.Format.choices),
    }
    org_ids = [int(v) for v in result.facets.get("provider", {})]
    orgs = {str(o.pk): o for o in Organization.objects.filter(pk__in=org_ids)}
    classes = dict(
        ResourceClass.objects.filter(code__in=list(result.facets.get("class_item", {}))).values_list("code", "name")
    )
    facets = []
    for name, counts in result.facets.items():
        values = []
        for value, count in counts.items():
            if name == "provider":
                org = orgs.get(value)
                param, label = (org.code, org.name) if org else (value, value)
            elif name == "class_item":
                param, label = value, f"{value} {classes.get(value, '')}"
            else:
                param, label = value, str(labels[name].get(value, value))
            active = params.get(name) == param
            query = {k: v for k, v in params.items() if v and k != "page"}
            if active:
                query.pop(name, None)
            else:
                query[name] = param
            values.append({"label": label, "count": count, "active": active, "url": "?" + urlencode(query)})
        facets.append({"name": name, "title": str(FACET_TITLES[name]), "values": values})
    return facets


@login_required
def index(request):
    """Search the published catalogue (Chinese segmentation, ranked) with facet counts."""
    _official(request)
    form = SearchForm(request.GET or None)
    params = form.cleaned_data if form.is_bound and form.is_valid() else {}
    params = {k: v for k, v in params.items() if v not in (None, "")}
    provider_id = None
    if params.get("provider"):
        provider_id = Organization.objects.filter(code=params["provider"]).values_list("pk", flat=True).first() or -1
    result = search.search(
        search.SearchQuery(
            text=params.get("q", ""),
            provider=provider_id,
            class_item=params.get("class_item", ""),
            sharing_type=params.get("sharing_type", ""),
            open_type=params.get("open_type", ""),
            format=params.get("format", ""),
            page=params.get("page") or 1,
        )
    )
    base = {k: str(v) for k, v in params.items() if k != "page"}
    page_url = lambda n: "?" + urlencode({**base, "page": n})  # noqa: E731
    quality = quality_services.resource_scores([e.resource for e in result.entries])
    context = {
        "form": form,
        "result": result,
        "rows": [
            {
                "entry": e,
                "key": dcat.resource_key(e.code),
                "score": result.scores.get(e.pk),
                "quality": quality.get(e.resource_id),
            }
            for e in result.entries
        ],
        "facets": _facet_links(request, result, base),
        "query": params.get("q", ""),
        "prev_url": page_url(result.page - 1) if result.page > 1 else "",
        "next_url": page_url(result.page + 1) if result.page < result.pages else "",
        "sharing_labels": dict(SharingType.choices),
        "format_labels": dict(InformationResource.Format.choices),
    }
    template = "catalog/_results.html" if _wants_partial(request) else "catalog/index.html"
    return render(request, template, context)


# --- Entry ----------------------------------------------------------------------------------------------


@login_required
def detail(request, key: str):
    """An entry: published version, working copy (for its department and reviewers), items, versions, conflicts."""
    user, department = _official(request)
    resource = _entry(key)
    insider = services.can_view(user, resource)
    published = None
    if resource.published_version_id and resource.status != InformationResource.Status.RETIRED:
        published = resource.published_version.snapshot
    if published is None and not insider:
        raise Http404(gettext("信息资源不存在。"))
    context = {
        "resource": resource,
        "key": key,
        "published": published,
        "insider": insider,
        "items": list(resource.items.select_related("registry")) if insider else [],
        "versions": list(resource.versions.order_by("-number")),
        "reviews": list(resource.reviews.select_related("actor_org").order_by("-at", "-id")) if insider else [],
        "conflicts": services.conflicts_for(resource),
        "quality": quality_services.resource_scores([resource]).get(resource.pk) if published else None,
        "can_edit": services.can_edit(user, resource),
        "can_submit": insider
        and services.can_edit(user, resource)
        and resource.status in (InformationResource.Status.DRAFT, InformationResource.Status.REJECTED),
        "can_withdraw": resource.status == InformationResource.Status.SUBMITTED
        and department is not None
        and department.pk == resource.provider_id,
        "can_review": resource.status == InformationResource.Status.SUBMITTED
        and services.is_data_admin(user, resource.provider),
        "can_retire": resource.published_version_id is not None
        and resource.status != InformationResource.Status.RETIRED
        and (
            (department is not None and department.pk == resource.provider_id)
            or services.is_data_admin(user, resource.provider)
        ),
        "decision_form": DecisionForm(),
        "reason_form": ReasonForm(),
        "labels": {
            "sharing": dict(SharingType.choices),
            "open": dict(OpenType.choices),
            "format": dict(InformationResource.Format.choices),
            "cycle": dict(InformationResource.UpdateCycle.choices),
            "mode": dict(InformationResource.SharingMode.choices),
        },
        "jsonld_url": f"/api/v1/catalog/resources/{dcat.resource_key(resource.code)}.jsonld",
        "turtle_url": f"/api/v1/catalog/resources/{dcat.resource_key(resource.code)}.ttl",
    }
    return render(request, "catalog/detail.html", context)


def _initial(resource: InformationResource) -> tuple[dict, list[dict]]:
    """Form initial values from an entry's working copy."""
    data = {name: getattr(resource, name) for name in services.RESOURCE_FIELDS}
    data["classification"] = resource.classification_id
    data["related"] = " ".join(resource.related.values_list("code", flat=True))
    items = [
        {
            "code": i.code,
            "name": i.name,
            "data_type": i.data_type,
            "length": i.length,
            "data_element": i.data_element,
            "registry": i.registry.code if i.registry_id else "",
            "registry_field": i.registry_field,
            "sharing_type": i.sharing_type,
            "is_own": i.is_own,
            "description": i.description,
        }
        for i in resource.items.select_related("registry")
    ]
    return data, items


def _edit(request, resource: InformationResource | None):
    """Create (``resource`` None) or edit an entry with its item rows."""
    user, department = _official(request)
    if department is None:
        raise PermissionDenied(gettext("登记信息资源须以部门工作人员身份进行。"))
    if resource is not None and not services.can_edit(user, resource):
        raise PermissionDenied(gettext("只有信息资源提供部门的工作人员可以在草稿、退回或已发布状态下修改。"))
    registries = registry_choices()
    errors: list[str] = []
    if request.method == "POST":
        form = ResourceForm(request.POST, department=department)
        items = ItemFormSet(request.POST, prefix="items", form_kwargs={"registries": registries})
        if form.is_valid() and items.is_valid():
            rows = [
                {**f.cleaned_data}
                for f in items.forms
                if f.cleaned_data and not f.cleaned_data.get("DELETE") and not f.is_blank()
            ]
            for row in rows:
                row.pop("DELETE", None)
            classification = ResourceClass.objects.filter(pk=form.cleaned_data["classification"]).first()
            data = {name: form.cleaned_data.get(name, "") for name in services.RESOURCE_FIELDS}
            try:
                if resource is None:
                    resource = services.create_resource(
                        actor=user, classification=classification, data=data, items=rows, related=form.related_codes()
                    )
                    messages.success(
                        request, gettext("信息资源已保存为草稿，代码 %(code)s。") % {"code": resource.code}
                    )
                else:
                    services.update_resource(
                        resource,
                        actor=user,
                        classification=classification,
                        data=data,
                        items=rows,
                        related=form.related_codes(),
                    )
                    messages.success(request, gettext("修改已保存。"))
                return redirect("catalog:detail", key=dcat.resource_key(resource.code))
            except ValidationError as exc:
                errors = _error_messages(exc)
    else:
        initial, rows = _initial(resource) if resource is not None else ({}, [])
        form = ResourceForm(initial=initial, department=department)
        items = ItemFormSet(initial=rows, prefix="items", form_kwargs={"registries": registries})
    return render(
        request,
        "catalog/edit.html",
        {
            "form": form,
            "items": items,
            "resource": resource,
            "key": dcat.resource_key(resource.code) if resource is not None else "",
            "errors": errors,
            "department": department,
        },
    )


@login_required
def create(request):
    """Register a new entry for the official's department."""
    return _edit(request, None)


@login_required
def edit(request, key: str):
    """Edit an entry of the official's department."""
    return _edit(request, _entry(key))


def _transition(request, key: str, operation, done: str):
    """Run a workflow service on the entry as the official; report success or every refusal; back to the entry."""
    user, _department = _official(request)
    resource = _entry(key)
    try:
        operation(resource, actor=user)
        messages.success(request, done)
    except ValidationError as exc:
        for message in _error_messages(exc):
            messages.error(request, message)
    return redirect("catalog:detail", key=key)


@login_required
@require_POST
def submit(request, key: str):
    """Send the entry to review."""
    return _transition(request, key, services.submit, gettext("已提交审核。"))


@login_required
@require_POST
def withdraw(request, key: str):
    """Take a submission back."""
    return _transition(request, key, services.withdraw, gettext("已撤回，信息资源回到草稿状态。"))


@login_required
@require_POST
def decide(request, key: str):
    """A data administrator approves (publishes) or rejects a submission."""
    user, _department = _official(request)
    resource = _entry(key)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, gettext("请选择审核结论。"))
        return redirect("catalog:detail", key=key)
    approve = form.cleaned_data["decision"] == "approve"
    try:
        services.review(resource, actor=user, approve=approve, reason=form.cleaned_data.get("reason", ""))
        messages.success(request, gettext("已审核通过并发布新版本。") if approve else gettext("已退回。"))
    except ValidationError as exc:
        for message in _error_messages(exc):
            messages.error(request, message)
    return redirect("catalog:detail", key=key)


@login_required
@require_POST
def retire(request, key: str):
    """Retire a published entry."""
    user, _department = _official(request)
    resource = _entry(key)
    form = ReasonForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        services.retire(resource, actor=user, reason=reason)
        messages.success(request, gettext("信息资源已停用。"))
    except ValidationError as exc:
        for message in _error_messages(exc):
            messages.error(request, message)
    return redirect("catalog:detail", key=key)


# --- Lists ----------------------------------------------------------------------------------------------


@login_required
def mine(request):
    """The official's department's drafts, submissions and rejections, and its published entries."""
    _user, department = _official(request)
    drafts = list(services.drafts_of(department))
    published = []
    if department is not None:
        published = list(
            services.visible_resources().filter(provider=department, status=InformationResource.Status.PUBLISHED)
        )
    return render(
        request,
        "catalog/mine.html",
        {
            "department": department,
            "drafts": [(r, dcat.resource_key(r.code)) for r in drafts],
            "published": [(r, dcat.resource_key(r.code)) for r in published],
        },
    )


@login_required
def reviews(request):
    """The data administrator's inbox: submissions of covered departments, oldest first, with conflicts."""
    user, _department = _official(request)
    if not services.may_review_any(user):
        raise PermissionDenied(gettext("审核待办仅向数据管理员（大数据局）开放。"))
    rows = []
    for resource in services.review_inbox(user):
        last = resource.reviews.filter(action="submit").order_by("-at", "-id").first()
        rows.append(
            {
                "resource": resource,
                "key": dcat.resource_key(resource.code),
                "conflicts": services.conflicts_for(resource),
                "due_on": last.due_on if last else None,
                "submitted_by": last.actor if last else "",
            }
        )
    return render(request, "catalog/reviews.html", {"rows": rows})
