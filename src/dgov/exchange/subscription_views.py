"""Officials' pages of change subscriptions (变更订阅) under /workbench/exchange/subscriptions/.

Thin views: officials only; ``dgov.exchange.subscriptions`` checks that the subscription belongs
to the official's department (others get 404 here).
"""

from __future__ import annotations

import datetime
import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from dgov.exchange import subscriptions as services
from dgov.exchange.models import Delivery
from dgov.exchange.views import _add_for_resource, _flash_errors, _official


def _date(value: str | None) -> datetime.date | None:
    """A date from a query parameter (None when absent or malformed)."""
    try:
        return datetime.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _mine(user, pk: int):
    """One subscription of the official's department, or 404."""
    subscription = services.subscriptions_of(user).filter(pk=pk).first()
    if subscription is None:
        raise Http404(gettext("订阅不存在。"))
    return subscription


@login_required
def index(request):
    """My department's subscriptions and the form to add one."""
    user, _department = _official(request)

    def subscribe(resource, form):
        """Subscribe, then back to the list."""
        services.subscribe(resource, actor=user, callback_url=form["callback_url"], description=form["description"])
        messages.success(request, gettext("订阅已创建。"))
        return redirect("exchange:subscriptions")

    form, subscribed, errors = _add_for_resource(request, ("resource", "callback_url", "description"), subscribe)
    if subscribed:
        return subscribed
    return render(
        request,
        "exchange/subscriptions.html",
        {"subscriptions": services.subscriptions_of(user)[:200], "errors": errors, "form": form},
    )


@login_required
def detail(request, pk: int):
    """One subscription: its state, the signing key, and the delivery search (state, days)."""
    user, _department = _official(request)
    subscription = _mine(user, pk)
    state = request.GET.get("state", "")
    since, until = _date(request.GET.get("since")), _date(request.GET.get("until"))
    rows = services.deliveries_of(subscription, actor=user, state=state, since=since, until=until)
    return render(
        request,
        "exchange/subscription.html",
        {
            "subscription": subscription,
            "deliveries": rows[:100],
            "state": state,
            "since": since,
            "until": until,
            "states": Delivery.State.choices,
            "keys": services.public_keys(),
        },
    )


@login_required
@require_POST
def change(request, pk: int):
    """Pause, resume or end a subscription."""
    user, _department = _official(request)
    subscription = _mine(user, pk)
    action = request.POST.get("action")
    reason = request.POST.get("reason", "")
    steps = {
        "pause": lambda: services.pause(subscription, actor=user, reason=reason),
        "resume": lambda: services.resume(subscription, actor=user),
        "end": lambda: services.end(subscription, actor=user, reason=reason),
    }
    if action not in steps:
        raise Http404
    try:
        steps[action]()
        messages.success(request, gettext("订阅状态已更新。"))
    except ValidationError as exc:
        _flash_errors(request, exc)
    return redirect("exchange:subscription", pk=pk)


@login_required
@require_POST
def retry(request, pk: int, uid: str):
    """Send a failed delivery again at the worker's next pass."""
    user, _department = _official(request)
    subscription = _mine(user, pk)
    try:
        key = uuid.UUID(uid)
    except ValueError:
        raise Http404 from None
    delivery = Delivery.objects.filter(subscription=subscription, uid=key).select_related("subscription").first()
    if delivery is None:
        raise Http404
    try:
        services.retry_now(delivery, actor=user)
        messages.success(request, gettext("已安排立即重试。"))
    except ValidationError as exc:
        _flash_errors(request, exc)
    return redirect("exchange:subscription", pk=pk)
