"""Service-item pages (办事服务): the portal's search, guide and bundle pages, the workbench catalogue and drift report.

Thin views: parse, authorize, call :mod:`dgov.services.catalogue`, render. Service guides are
public information (政务公开), so the portal pages need no login; the workbench pages are for
officials and administrators, and which drift findings they see is decided by
:func:`dgov.services.catalogue.drifts_for`. Running the 三级四同 check is a POST, audited.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from dgov.services import catalogue
from dgov.services.models import Bundle, ItemDrift, ItemType, ServiceItem
from dgov.web import navigation

PAGE_SIZE = 30


def _official(request):
    """The user, when an official or administrator; PermissionDenied for anyone else."""
    if not navigation.officials_only(request.user):
        raise PermissionDenied(gettext("事项目录管理页面仅向工作人员和系统管理员开放。"))
    return request.user


def _departments() -> list[tuple[str, str]]:
    """(kind, Chinese name) of the departments that have active items, for the filter."""
    kinds = (
        ServiceItem.objects.filter(status=ServiceItem.Status.ACTIVE)
        .values_list("department_kind", flat=True)
        .order_by()
        .distinct()
    )
    return sorted({(kind, catalogue.department_label(kind)) for kind in kinds})


def index(request):
    """Search the service items (Chinese query; filters by holder kind, department, type)."""
    query = request.GET.get("q", "").strip()[:100]
    holder = request.GET.get("holder", "")
    department = request.GET.get("department", "")
    item_type = request.GET.get("type", "")
    results = catalogue.search_items(query, holder_kind=holder, department_kind=department, item_type=item_type)
    page = Paginator(results, PAGE_SIZE).get_page(request.GET.get("page"))
    for item in page:
        item.department_name = catalogue.department_label(item.department_kind)
    return render(
        request,
        "services/index.html",
        {
            "page": page,
            "query": query,
            "holder": holder,
            "department": department,
            "item_type": item_type,
            "departments": _departments(),
            "types": ItemType.choices,
            "bundles": Bundle.objects.filter(is_active=True),
        },
    )


def item(request, code: str):
    """The service guide (办事指南) of one active item."""
    found = (
        ServiceItem.objects.select_related("produces_licence_type")
        .filter(basic_code=code, status=ServiceItem.Status.ACTIVE)
        .first()
    )
    if found is None:
        raise Http404(gettext("事项不存在或已停用。"))
    materials = list(found.materials.select_related("licence_type"))
    windows = []
    for implementation in found.implementations.filter(is_active=True).select_related("organization")[:20]:
        windows.append(
            {
                "organization": implementation.organization,
                "windows": implementation.windows,
                "promised": implementation.promised_limit_days,
                "code": implementation.implementing_code,
            }
        )
    return render(
        request,
        "services/item.html",
        {
            "item": found,
            "department_name": catalogue.department_label(found.department_kind),
            "materials": materials,
            "windows": windows,
            "bundles": found.bundles.filter(is_active=True),
        },
    )


def bundles(request):
    """The bundles (一件事) and their items."""
    return render(
        request,
        "services/bundles.html",
        {"bundles": Bundle.objects.filter(is_active=True).prefetch_related("items")},
    )


@login_required
def items(request):
    """Workbench: the catalogue with each item's implementations and open drift findings."""
    user = _official(request)
    rows = ServiceItem.objects.annotate(
        implementation_count=Count("implementations", distinct=True),
        open_drifts=Count(
            "implementations__drifts",
            filter=Q(implementations__drifts__status=ItemDrift.Status.OPEN),
            distinct=True,
        ),
    ).order_by("basic_code")
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "services/items.html",
        {"page": page, "may_manage": catalogue.may_manage_catalogue(user)},
    )


@login_required
def drifts(request):
    """Workbench: the 三级四同 drift findings the user may see (open ones first)."""
    user = _official(request)
    status = request.GET.get("status", ItemDrift.Status.OPEN)
    found = catalogue.drifts_for(user)
    if status in ItemDrift.Status.values:
        found = found.filter(status=status)
    page = Paginator(found.order_by("implementation__item__basic_code", "implementation__division_code"), 50)
    return render(
        request,
        "services/drifts.html",
        {
            "page": page.get_page(request.GET.get("page")),
            "status": status,
            "statuses": ItemDrift.Status.choices,
            "may_manage": catalogue.may_manage_catalogue(user),
        },
    )


@login_required
@require_POST
def check(request):
    """Workbench: run the 三级四同 check now (data administrators only; audited)."""
    user = _official(request)
    report = catalogue.check_consistency(actor=user)
    messages.success(request, report.to_text())
    return redirect("services:drifts")
