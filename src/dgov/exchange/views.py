"""Officials' sharing and exchange pages (共享交换): requests and grants, approval inbox, exchange log.

Thin views: parse, authorize (officials only; the services check department scope again), call
``dgov.exchange.services``, render.
"""

from __future__ import annotations

import datetime
import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from dgov.catalog import services as catalog_services
from dgov.catalog.models import SharingType
from dgov.exchange import monitoring, services
from dgov.exchange.models import ExchangeLogEntry, Grant, ItemMode, ShareRequest
from dgov.web import navigation


def _official(request):
    """``(user, department)`` for an official or administrator; PermissionDenied for anyone else."""
    if not navigation.officials_only(request.user):
        raise PermissionDenied(gettext("共享交换页面仅向工作人员开放。"))
    return request.user, services.department_of(request.user)


def _messages_of(exc: ValidationError) -> list[str]:
    """A service's validation messages as a flat list."""
    if hasattr(exc, "error_dict"):
        return [m for errors in exc.message_dict.values() for m in errors]
    return list(exc.messages)


def _file_request(request, file, *, labels: dict, done: str) -> tuple[HttpResponse | None, list[str]]:
    """Handle the sharing request form (items, verify-only items, purpose, legal basis, end of period).

    On a POST, ``file(items=..., purpose=..., legal_basis=..., period_end=...)`` files the request
    and returns it; on success the message ``labels[status]`` is shown and the answer is a redirect
    to ``done``. Else ``(None, errors)`` for the form (no errors on a GET).
    """
    if request.method != "POST":
        return None, []
    verify_only = set(request.POST.getlist("verify"))
    wanted = {c: (ItemMode.VERIFY if c in verify_only else ItemMode.FULL) for c in request.POST.getlist("items")}
    try:
        period_end = datetime.date.fromisoformat(request.POST.get("period_end", ""))
    except ValueError:
        period_end = None
    try:
        filed = file(
            items=wanted,
            purpose=request.POST.get("purpose", ""),
            legal_basis=request.POST.get("legal_basis", ""),
            period_end=period_end,
        )
    except ValidationError as exc:
        return None, _messages_of(exc)
    messages.info(request, labels.get(filed.status, ""))
    return redirect(done), []


def _add_for_resource(request, fields: tuple[str, ...], add) -> tuple[dict, HttpResponse | None, list[str]]:
    """Handle a form that adds something to a published resource (a data service, a subscription).

    Returns ``(form, answer, errors)``. ``fields`` names the form's fields (``resource`` among
    them); ``form`` holds their values (empty on a GET, stripped from a POST) for the form again.
    On a POST the resource is looked up by its code (``/`` or ``-`` after the catalogue prefix) and
    ``add(resource, form)`` does the work and returns the answer. Refusals (unknown resource,
    ValidationError, PermissionDenied) come back as the form's errors.
    """
    if request.method != "POST":
        return dict.fromkeys(fields, ""), None, []
    form = {key: request.POST.get(key, "").strip() for key in fields}
    code = services.resource_code(form["resource"])
    resource = catalog_services.find_resource(code) if code else None
    if resource is None:
        return form, None, [gettext("信息资源不存在或未发布。")]
    try:
        return form, add(resource, form), []
    except ValidationError as exc:
        return form, None, _messages_of(exc)
    except PermissionDenied as exc:
        return form, None, [str(exc)]


def _flash_errors(request, exc: ValidationError) -> None:
    """Show a service's validation messages as error messages on the next page."""
    for message in _messages_of(exc):
        messages.error(request, message)


@login_required
def index(request):
    """My department's requests, the grants it holds and the grants it gave (with revocation)."""
    user, department = _official(request)
    key = (request.GET.get("resource") or "").strip()
    if key:
        return redirect("exchange:new", key=key.replace("/", "-", 1))
    grants = [(g, services.grant_state(g)) for g in services.grants_of(department)[:200]]
    given = [(g, services.grant_state(g)) for g in services.grants_of(department, as_provider=True)[:200]]
    return render(
        request,
        "exchange/index.html",
        {
            "department": department,
            "requests": services.requests_of(department)[:200],
            "grants": grants,
            "given": given,
        },
    )


@login_required
def new_request(request, key: str):
    """The request form for one published resource: items (full or verify-only), purpose, basis, period."""
    user, department = _official(request)
    resource = catalog_services.find_resource(key.replace("-", "/", 1))
    items = services.requestable_items(resource) if resource is not None else {}
    if not items:
        raise Http404(gettext("信息资源不存在或未发布。"))
    labels = {
        ShareRequest.Status.GRANTED: gettext("申请已获授权。"),
        ShareRequest.Status.SUBMITTED: gettext("申请已提交提供部门审批。"),
        ShareRequest.Status.REFUSED: gettext("该信息资源不予共享，申请未通过。"),
    }
    filed, errors = _file_request(
        request,
        lambda **fields: services.request_share(resource, actor=user, **fields),
        labels=labels,
        done="exchange:index",
    )
    if filed:
        return filed
    return render(
        request,
        "exchange/new.html",
        {
            "resource": resource,
            "items": list(items.values()),
            "errors": errors,
            "not_shared": SharingType.NONE,
            "key": key,
        },
    )


@login_required
def inbox(request):
    """The provider's approval inbox: submitted requests with their working-day deadlines."""
    user, _department = _official(request)
    return render(
        request,
        "exchange/inbox.html",
        {"rows": services.approval_inbox(user), "today": timezone.localdate()},
    )


@login_required
@require_POST
def decide(request, pk: int):
    """Approve or refuse (with a reason) a submitted request."""
    user, _department = _official(request)
    share = get_object_or_404(ShareRequest.objects.select_related("resource"), pk=pk)
    reason = request.POST.get("reason", "")
    try:
        if request.POST.get("action") == "approve":
            services.approve(share, actor=user, reason=reason)
            messages.success(request, gettext("已授权。"))
        else:
            services.refuse(share, actor=user, reason=reason)
            messages.success(request, gettext("已拒绝。"))
    except ValidationError as exc:
        _flash_errors(request, exc)
    return redirect("exchange:inbox")


@login_required
@require_POST
def withdraw(request, pk: int):
    """Withdraw one of my department's submitted requests."""
    user, _department = _official(request)
    share = get_object_or_404(ShareRequest, pk=pk)
    try:
        services.withdraw(share, actor=user)
        messages.success(request, gettext("申请已撤回。"))
    except ValidationError as exc:
        _flash_errors(request, exc)
    return redirect("exchange:index")


@login_required
@require_POST
def revoke(request, pk: int):
    """Revoke a grant my department gave (with a reason)."""
    user, _department = _official(request)
    grant = get_object_or_404(Grant.objects.select_related("resource"), pk=pk)
    try:
        services.revoke(grant, actor=user, reason=request.POST.get("reason", ""))
        messages.success(request, gettext("授权已撤销。"))
    except ValidationError as exc:
        _flash_errors(request, exc)
    return redirect("exchange:index")


@login_required
def log_search(request):
    """My department's exchange log (as consumer or provider): calls per day, failures, receipts."""
    user, department = _official(request)
    role = request.GET.get("role", "")
    result = request.GET.get("result", "")
    try:
        day = datetime.date.fromisoformat(request.GET["day"]) if request.GET.get("day") else None
    except ValueError:
        day = None
    entries = services.log_entries_for(department, role=role, result=result, day=day)
    return render(
        request,
        "exchange/log.html",
        {
            "entries": entries[:100],
            "daily": services.daily_counts(services.log_entries_for(department, role=role)),
            "role": role,
            "result": result,
            "day": day,
            "results": ExchangeLogEntry.Result.choices,
        },
    )


@login_required
def receipt(request, seq: int):
    """Download the signed receipt of an exchange of my department (as consumer or provider)."""
    user, _department = _official(request)
    entry = ExchangeLogEntry.objects.filter(seq=seq).first()
    if entry is None or not services.can_see_entry(user, entry):
        raise Http404(gettext("交换记录不存在。"))
    body = json.dumps(services.receipt(entry), ensure_ascii=False, indent=2)
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="exchange-receipt-{seq}.json"'
    return response


@login_required
def monitor(request):
    """Monitoring: calls per day, top consumers and resources, failures by code; platform-wide for data admins."""
    user, department = _official(request)
    platform = request.GET.get("scope") == "platform"
    period = monitoring.parse_period(request.GET.get("since"), request.GET.get("until"))
    scope = monitoring.scope_for(
        user, platform=platform, role=request.GET.get("role", ""), department_code=request.GET.get("department", "")
    )
    return render(
        request,
        "exchange/monitor.html",
        {
            "department": department,
            "scope": scope,
            "period": period,
            "summary": monitoring.summarize(scope, period),
            "may_see_platform": monitoring.can_monitor_platform(user),
            "department_code": request.GET.get("department", "").strip() if platform else "",
        },
    )
