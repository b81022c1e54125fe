"""Pages of identity brokering: start a login at an upstream provider, its callback, linked logins.

Thin views over :mod:`dgov.oidc.services.broker`: every refusal there is audited and arrives here
as a :class:`~dgov.oidc.services.broker.BrokerError`, shown on an error page (never a 500).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from dgov.identity import services as identity
from dgov.oidc.services import broker


def _safe_next(request, candidate: str) -> str:
    """``candidate`` when it is a URL of this site, else the portal's home."""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def _error_page(request, exc: broker.BrokerError) -> HttpResponse:
    """The page that explains a refused brokered login."""
    provider = exc.provider
    context = {
        "code": exc.code,
        "message": exc.message,
        "provider_name": provider.display_name(request.LANGUAGE_CODE or "") if provider is not None else "",
    }
    response = render(request, "oidc/upstream_error.html", context, status=exc.status)
    response["Cache-Control"] = "no-store"
    return response


@never_cache
@require_GET
def upstream_login(request, slug):
    """Start a login at the upstream provider ``slug`` (the login page's "使用…登录" button)."""
    next_url = _safe_next(request, request.GET.get("next", ""))
    try:
        url = broker.begin(request, slug, next_url=next_url)
    except broker.BrokerError as exc:
        return _error_page(request, exc)
    response = HttpResponse(status=302)
    response["Location"] = url  # the upstream's own authorization endpoint, from its discovery document
    return response


@never_cache
@require_GET
def upstream_callback(request, slug):
    """The redirect URI registered at the upstream: verify its answer and log the person in."""
    try:
        url = broker.complete(request, slug, request.GET)
    except broker.BrokerError as exc:
        return _error_page(request, exc)
    return HttpResponseRedirect(_safe_next(request, url))


@login_required
@require_POST
def linked_login_action(request, link_id: int):
    """Unlink (or link again) an upstream login of mine; both need a recent re-authentication."""
    action = request.POST.get("action", "")
    if action not in ("unlink", "relink"):
        return redirect(reverse("identity:account") + "#linked-logins")
    if not identity.recently_authenticated(request):
        back = reverse("identity:account") + "#linked-logins"
        return redirect(f"{reverse('identity:reauth')}?{urlencode({'next': back})}")
    operation = broker.relink if action == "relink" else broker.unlink
    try:
        link = operation(request.user, link_id, actor=request.user, reauthenticated=True)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    except PermissionDenied as exc:
        messages.error(request, str(exc))
    else:
        name = link.provider.display_name(request.LANGUAGE_CODE or "")
        if action == "relink":
            messages.success(request, gettext("已重新关联“%(name)s”。") % {"name": name})
        else:
            messages.success(request, gettext("已解除与“%(name)s”的关联。") % {"name": name})
    return redirect(reverse("identity:account") + "#linked-logins")
