"""Officials' pages of department data services (数据服务) under /workbench/exchange/services/.

Thin views: officials only; ``dgov.exchange.dataservice`` checks that the service belongs to the
official's department (others get 404 here) and audits every change.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from dgov.exchange import dataservice
from dgov.exchange.views import _add_for_resource, _flash_errors, _official


def _mine(user, pk: int):
    """One data service of the official's department, or 404."""
    service = dataservice.services_of(user).filter(pk=pk).first()
    if service is None:
        raise Http404(gettext("数据服务不存在。"))
    return service


@login_required
def index(request):
    """My department's data services and the form to register one."""
    user, _department = _official(request)

    def register(resource, form):
        """Register the service, then show it."""
        service = dataservice.register(
            resource,
            actor=user,
            endpoint_url=form["endpoint_url"],
            timeout=form["timeout"] or None,
            credential=request.POST.get("credential", ""),
            description=form["description"],
        )
        messages.success(request, gettext("数据服务已登记。"))
        return redirect("exchange:service", pk=service.pk)

    form, registered, errors = _add_for_resource(
        request, ("resource", "endpoint_url", "timeout", "description"), register
    )
    if registered:
        return registered
    return render(
        request,
        "exchange/services.html",
        {
            "services": dataservice.services_of(user)[:200],
            "resources": dataservice.provider_resources(user)[:200],
            "errors": errors,
            "form": form,
            "default_timeout": dataservice.default_timeout(),
            "max_timeout": dataservice.MAX_TIMEOUT,
        },
    )


@login_required
def detail(request, pk: int):
    """One data service: settings (with the change form), state, last health check, the platform's public keys."""
    user, _department = _official(request)
    service = _mine(user, pk)
    return render(
        request,
        "exchange/service.html",
        {
            "service": service,
            "keys": dataservice.public_keys(),
            "max_timeout": dataservice.MAX_TIMEOUT,
            "format": dataservice.FORMAT,
        },
    )


@login_required
@require_POST
def change(request, pk: int):
    """Save settings, suspend, resume or probe a data service."""
    user, _department = _official(request)
    service = _mine(user, pk)
    action = request.POST.get("action")
    try:
        if action == "save":
            dataservice.change(
                service,
                actor=user,
                endpoint_url=request.POST.get("endpoint_url", ""),
                timeout=request.POST.get("timeout") or None,
                credential=request.POST.get("credential", ""),
                clear_credential=bool(request.POST.get("clear_credential")),
                description=request.POST.get("description", ""),
            )
            messages.success(request, gettext("数据服务已保存。"))
        elif action == "suspend":
            dataservice.suspend(service, actor=user, reason=request.POST.get("reason", ""))
            messages.success(request, gettext("数据服务已暂停。"))
        elif action == "resume":
            dataservice.resume(service, actor=user)
            messages.success(request, gettext("数据服务已恢复。"))
        elif action == "check":
            result = dataservice.check(service, actor=user)
            if result.ok:
                messages.success(request, gettext("检测正常（%(ms)s 毫秒）。") % {"ms": result.elapsed_ms})
            else:
                messages.error(
                    request,
                    gettext("检测失败：%(code)s（%(reason)s）。") % {"code": result.code, "reason": result.reason},
                )
        else:
            raise Http404
    except ValidationError as exc:
        _flash_errors(request, exc)
    return redirect("exchange:service", pk=pk)
