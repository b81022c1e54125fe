"""API client administration pages (接口客户端管理) for platform and big-data bureau administrators.

Thin views over ``dgov.identity.services``: list, create (the secret is shown once, on the page
answering the POST, never stored or redirected with), rotate a secret (shown once), edit scopes,
deactivate. Who may open the pages is ``services.may_manage_api_clients``; the state-changing
services check it again and audit refusals, so the POST views hand every request to them.
Pages that show a secret are sent with ``Cache-Control: no-store``.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from dgov.identity import services
from dgov.identity.client_forms import ApiClientCreateForm, ApiClientDeactivateForm, ApiClientScopesForm
from dgov.identity.models import ApiClient


def may_open(user) -> bool:
    """Whether a (logged-in) user sees the pages and their menu entry."""
    return user is not None and getattr(user, "is_authenticated", False) and services.may_manage_api_clients(user)


def _manager(request):
    """The administrator, or PermissionDenied."""
    if not may_open(request.user):
        raise PermissionDenied(gettext("只有系统管理员和省大数据局可以管理接口客户端。"))
    return request.user


def _client(request, client_id: str) -> ApiClient:
    """The client with this id, or 404 (403 first for non-administrators: ids are not to be probed)."""
    client = ApiClient.objects.select_related("organization").filter(client_id=client_id).first()
    if client is None:
        _manager(request)
        raise Http404(gettext("接口客户端不存在。"))
    return client


def _secret_page(request, client: ApiClient, secret: str, *, created: bool):
    """The one page that shows a secret; never cached, never shown again."""
    response = render(
        request, "identity/api_clients/secret.html", {"client": client, "secret": secret, "created": created}
    )
    response["Cache-Control"] = "no-store"
    return response


def _form_errors(form, exc: ValidationError) -> None:
    """Put a service's ValidationError onto the form (per field where it names one)."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


@login_required
def client_list(request):
    """Every API client: department, scopes, status, last use."""
    user = _manager(request)
    clients = list(services.list_api_clients(actor=user))
    context = {
        "clients": clients,
        "active_count": sum(1 for c in clients if c.is_active),
        "scopes": services.API_SCOPES,
    }
    return render(request, "identity/api_clients/list.html", context)


@login_required
@never_cache
def client_create(request):
    """Create a client; the answer to the POST shows its secret once."""
    _manager(request)
    form = ApiClientCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            client, secret = services.create_api_client(
                data["name"], data["organization"], data["scopes"], actor=request.user, client_id=data["client_id"]
            )
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            return _secret_page(request, client, secret, created=True)
    status = 400 if form.is_bound else 200
    return render(request, "identity/api_clients/new.html", {"form": form}, status=status)


def _detail(request, client: ApiClient, *, scopes_form=None, deactivate_form=None, status: int = 200):
    """The client page with its forms."""
    context = {
        "client": client,
        "scope_labels": [(scope, services.API_SCOPES.get(scope, "")) for scope in client.scopes or []],
        "scopes_form": scopes_form or ApiClientScopesForm(initial={"scopes": client.scopes}),
        "deactivate_form": deactivate_form or ApiClientDeactivateForm(),
    }
    return render(request, "identity/api_clients/detail.html", context, status=status)


@login_required
def client_detail(request, client_id):
    """One client: department, scopes (editable), secret rotation, deactivation."""
    _manager(request)
    return _detail(request, _client(request, client_id))


@login_required
@require_POST
def client_scopes(request, client_id):
    """Replace the client's scopes."""
    client = _client(request, client_id)
    form = ApiClientScopesForm(request.POST)
    if not form.is_valid():
        _manager(request)
        return _detail(request, client, scopes_form=form, status=400)
    try:
        services.update_client_scopes(client, form.cleaned_data["scopes"], actor=request.user)
    except ValidationError as exc:
        _form_errors(form, exc)
        return _detail(request, client, scopes_form=form, status=400)
    messages.success(request, gettext("权限范围已更新，立即生效。"))
    return redirect("api_clients:detail", client_id=client.client_id)


@login_required
@require_POST
@never_cache
def client_rotate(request, client_id):
    """Give the client a new secret and show it once (the old one stops working at once)."""
    client = _client(request, client_id)
    try:
        secret = services.rotate_client_secret(client, actor=request.user)
    except ValidationError as exc:
        for text in exc.messages:
            messages.error(request, text)
        return redirect("api_clients:detail", client_id=client.client_id)
    client.refresh_from_db()
    return _secret_page(request, client, secret, created=False)


@login_required
@require_POST
def client_deactivate(request, client_id):
    """Stop the client (kept for the audit trail; its secret stops working at once)."""
    client = _client(request, client_id)
    form = ApiClientDeactivateForm(request.POST)
    if not form.is_valid():
        _manager(request)
        return _detail(request, client, deactivate_form=form, status=400)
    services.deactivate_api_client(client, actor=request.user, reason=form.cleaned_data["reason"])
    messages.success(request, gettext("客户端 %(id)s 已停用。") % {"id": client.client_id})
    return redirect("api_clients:detail", client_id=client.client_id)
