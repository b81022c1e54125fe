"""OpenID Connect endpoints, the consent and logout pages, the account's authorized apps, client admin pages.

Thin views: parse the request, call ``dgov.oidc.services``, answer in the form the protocol
wants — JSON with ``error``/``error_description`` (RFC 6749 §5.2; ASCII descriptions, as the RFC
requires) from the back-channel endpoints, a redirect to the registered redirect URI for errors
of a trusted authorization request, and an error page when the client or its redirect URI is not
trusted (never a redirect then).
"""

from __future__ import annotations

import json
import secrets
import time
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dgov.kernel.services import audit
from dgov.oidc import forms
from dgov.oidc.errors import OAuthError, UntrustedRequest
from dgov.oidc.models import Client
from dgov.oidc.services import authorization, clients, keys, tokens

PENDING_KEY = "dgov_oidc_pending"
PENDING_LIMIT = 5
PENDING_SECONDS = 600
LOGOUT_SALT = "dgov.oidc.logout"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


# --- helpers ------------------------------------------------------------------------------------------


def _json(data: dict, *, status: int = 200, headers: dict | None = None) -> JsonResponse:
    """A JSON answer that caches never keep (tokens, errors)."""
    response = JsonResponse(data, status=status, json_dumps_params={"ensure_ascii": False})
    for name, value in {**NO_STORE, **(headers or {})}.items():
        response[name] = value
    return response


def _oauth_error(error: OAuthError) -> JsonResponse:
    """RFC 6749 §5.2 error answer."""
    return _json(error.as_dict(), status=error.status, headers=error.headers)


def _single(source) -> dict[str, str]:
    """Request parameters as a dict; a parameter sent twice is invalid (RFC 6749 §3.1, §3.2)."""
    params = {}
    for key in source:
        values = source.getlist(key)
        if len(values) > 1:
            raise OAuthError("invalid_request", f"parameter {key[:40]} is repeated")
        params[key] = values[0]
    return params


def _to_client(url: str) -> HttpResponse:
    """A 302 to a registered redirect URI (native apps' private schemes included, which Django's redirect refuses)."""
    response = HttpResponse(status=302)
    response["Location"] = url
    response["Cache-Control"] = "no-store"
    return response


def _error_page(request, error: str, description: str, *, status: int = 400) -> HttpResponse:
    """The error page shown instead of redirecting to an untrusted client."""
    return render(
        request,
        "oidc/error.html",
        {"error": error, "description": description},
        status=status,
    )


def _to_login(params: dict[str, str]) -> HttpResponse:
    """Send the browser to the platform's login page, coming back to this authorization request."""
    return redirect_to_login(f"{reverse('oidc:authorize')}?{urlencode(params)}", settings.LOGIN_URL)


# --- discovery and keys ----------------------------------------------------------------------------------


def _absolute(name: str) -> str:
    """An endpoint's URL under the issuer."""
    return f"{tokens.issuer()}{reverse(name)}"


@require_GET
def discovery(request):
    """OpenID Provider Metadata (OpenID Connect Discovery 1.0 §3; RFC 8414)."""
    auth_methods = ["client_secret_basic", "client_secret_post", "none"]
    document = {
        "issuer": tokens.issuer(),
        "authorization_endpoint": _absolute("oidc:authorize"),
        "token_endpoint": _absolute("oidc:token"),
        "userinfo_endpoint": _absolute("oidc:userinfo"),
        "jwks_uri": _absolute("oidc:jwks"),
        "end_session_endpoint": _absolute("oidc:end_session"),
        "revocation_endpoint": _absolute("oidc:revoke"),
        "introspection_endpoint": _absolute("oidc:introspect"),
        "scopes_supported": list(clients.known_scopes()),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": list(clients.GRANT_TYPES),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(Client.Alg.values),
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "acr",
            "amr",
            "azp",
            "sid",
            "at_hash",
            "name",
            "preferred_username",
            "email",
            "email_verified",
            "phone_number",
            "phone_number_verified",
            "dgov_kind",
            "dgov_department",
            "dgov_department_name",
            "act",
            "dgov_id_number",
            "dgov_real_name",
        ],
        "acr_values_supported": [f"{authorization.ACR_PREFIX}{level}" for level in (1, 2, 3)],
        "prompt_values_supported": sorted(authorization.PROMPTS),
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
        "ui_locales_supported": ["zh-CN", "en"],
    }
    response = JsonResponse(document)
    response["Cache-Control"] = "public, max-age=300"
    response["Access-Control-Allow-Origin"] = "*"
    return response


@require_GET
def jwks(request):
    """The JWK Set of every active and retired signing key (RSA, P-256 and SM2)."""
    response = JsonResponse(keys.jwks())
    response["Content-Type"] = "application/jwk-set+json"
    response["Cache-Control"] = "public, max-age=300"
    response["Access-Control-Allow-Origin"] = "*"
    return response


# --- authorization endpoint and consent --------------------------------------------------------------


@csrf_exempt  # relying parties may POST the request (OIDC Core §3.1.2.1); nothing changes without a login
@require_http_methods(["GET", "POST"])
def authorize(request):
    """The authorization endpoint: code flow with PKCE S256, login through the platform's login page."""
    try:
        params = _single(request.GET if request.method == "GET" else request.POST)
    except OAuthError as exc:
        return _error_page(request, exc.error, exc.description)
    try:
        areq = authorization.parse(params)
    except UntrustedRequest as exc:
        return _error_page(request, exc.error, exc.description)
    except OAuthError as exc:
        return _to_client(exc.redirect_uri)
    return _continue(request, areq)


def _refuse(request, areq, error: str, description: str) -> HttpResponse:
    """Audit a refusal of a trusted request and redirect it to the client."""
    exc = tokens.deny(OAuthError(error, description), "oidc.authorize.refuse", actor=areq.client)
    return _to_client(authorization.error_redirect(areq, exc))


def _continue(request, areq) -> HttpResponse:
    """Login, re-authentication and consent checks, then the code."""
    user = request.user
    if not user.is_authenticated or not user.is_active:
        if "none" in areq.prompt:
            return _refuse(request, areq, "login_required", "the user is not logged in")
        return _to_login({k: v for k, v in areq.params.items() if k != authorization.REAUTH_PARAM})
    state = authorization.login_state(request)
    if authorization.needs_reauthentication(areq, state):
        if "none" in areq.prompt:
            return _refuse(request, areq, "login_required", "a new login is required (max_age)")
        logout(request)
        return _to_login({**areq.params, authorization.REAUTH_PARAM: authorization.reauth_marker()})
    # A person acting for an enterprise (经办人) authorizes the client as the enterprise.
    agency = authorization.acting_agency(request)
    principal = agency.enterprise if agency is not None else user
    unmet = authorization.unmet_requirement(areq, user, state, agency)
    if unmet:
        return _refuse(request, areq, "unmet_authentication_requirements", unmet)
    if "consent" in areq.prompt or not authorization.consent_covers(principal, areq):
        if "none" in areq.prompt:
            return _refuse(request, areq, "consent_required", "the user has not consented to this client")
        return _consent_page(request, areq, agency)
    code = authorization.issue_code(areq, user, state, agency)
    return _to_client(authorization.success_redirect(areq, code))


def _consent_page(request, areq, agency=None) -> HttpResponse:
    """Remember the pending request in the session and ask the user."""
    pending = {
        rid: item
        for rid, item in (request.session.get(PENDING_KEY) or {}).items()
        if isinstance(item, dict) and item.get("at", 0) > time.time() - PENDING_SECONDS
    }
    while len(pending) >= PENDING_LIMIT:
        pending.pop(next(iter(pending)))
    rid = secrets.token_urlsafe(12)
    pending[rid] = {
        "params": areq.params,
        "user": request.user.pk,
        "agency": agency.pk if agency is not None else None,
        "at": int(time.time()),
    }
    request.session[PENDING_KEY] = pending
    scopes = [
        {"name": s, "label": clients.scope_label(s), "sensitive": s in clients.SENSITIVE_SCOPES} for s in areq.scopes
    ]
    context = {
        "client": areq.client,
        "scopes": scopes,
        "rid": rid,
        "sensitive": any(scope["sensitive"] for scope in scopes),
        "agency": agency,
    }
    response = render(request, "oidc/consent.html", context)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def consent(request):
    """The user's answer on the consent page: allow (remembered) or deny (access_denied to the client)."""
    pending = request.session.get(PENDING_KEY) or {}
    item = pending.pop(request.POST.get("rid", ""), None)
    request.session[PENDING_KEY] = pending
    agency = authorization.acting_agency(request)
    if (
        not isinstance(item, dict)
        or item.get("user") != request.user.pk
        or item.get("at", 0) < time.time() - PENDING_SECONDS
        # the identity asked about (the person, or an enterprise they act for) is the one answering
        or item.get("agency") != (agency.pk if agency is not None else None)
    ):
        return _error_page(request, "invalid_request", gettext("授权请求已失效，请回到应用重新登录。"))
    try:
        areq = authorization.parse(item["params"])
    except UntrustedRequest as exc:
        return _error_page(request, exc.error, exc.description)
    except OAuthError as exc:
        return _to_client(exc.redirect_uri)
    if request.POST.get("decision") != "allow":
        return _refuse(request, areq, "access_denied", "the user denied the request")
    state = authorization.login_state(request)
    unmet = authorization.unmet_requirement(areq, request.user, state, agency)
    if unmet:
        return _refuse(request, areq, "unmet_authentication_requirements", unmet)
    principal = agency.enterprise if agency is not None else request.user
    authorization.record_consent(principal, areq.client, areq.scopes, actor=request.user)
    code = authorization.issue_code(areq, request.user, state, agency)
    return _to_client(authorization.success_redirect(areq, code))


# --- token, userinfo, revocation, introspection --------------------------------------------------------


def _client_request(request, endpoint: str):
    """The single-valued form of a POST to a client endpoint and the authenticated client; OAuthError if not."""
    try:
        form = _single(request.POST)
    except OAuthError as exc:
        raise tokens.deny(exc, f"oidc.{endpoint}.refuse") from None
    client = tokens.authenticate_client_request(request.headers.get("Authorization", ""), form, endpoint=endpoint)
    return form, client


@csrf_exempt
def token(request):
    """The token endpoint: authorization_code, refresh_token and client_credentials grants."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    try:
        form, client = _client_request(request, "token")
        grant_type = form.get("grant_type", "")
        if not grant_type:
            raise tokens.deny(
                OAuthError("invalid_request", "grant_type is required"), "oidc.token.refuse", actor=client
            )
        if grant_type not in clients.GRANT_TYPES:
            raise tokens.deny(
                OAuthError("unsupported_grant_type", "grant_type is not supported"),
                "oidc.token.refuse",
                actor=client,
                grant_type=grant_type[:64],
            )
        if grant_type not in client.grant_types:
            raise tokens.deny(
                OAuthError("unauthorized_client", "the client may not use this grant_type"),
                "oidc.token.refuse",
                actor=client,
                grant_type=grant_type,
            )
        if grant_type == "authorization_code":
            answer = tokens.exchange_code(
                client,
                code=form.get("code", ""),
                redirect_uri=form.get("redirect_uri", ""),
                code_verifier=form.get("code_verifier", ""),
            )
        elif grant_type == "refresh_token":
            answer = tokens.refresh(client, refresh_token=form.get("refresh_token", ""), scope=form.get("scope", ""))
        else:
            answer = tokens.client_credentials(client, scope=form.get("scope", ""))
    except OAuthError as exc:
        return _oauth_error(exc)
    return _json(answer)


def _bearer_error(status: int, error: str = "", description: str = "") -> JsonResponse:
    """RFC 6750 §3 error answer with its WWW-Authenticate challenge."""
    challenge = 'Bearer realm="dgov"'
    body = {}
    if error:
        challenge += f', error="{error}"'
        body = {"error": error}
        if description:
            challenge += f', error_description="{description}"'
            body["error_description"] = description
    return _json(body, status=status, headers={"WWW-Authenticate": challenge})


@csrf_exempt
@require_http_methods(["GET", "POST"])
def userinfo(request):
    """The UserInfo endpoint (OIDC Core §5.3): the claims of the token's scopes, for a user's token."""
    header = request.headers.get("Authorization", "")
    scheme, _sep, value = header.strip().partition(" ")
    from_header = value.strip() if scheme.lower() == "bearer" else ""
    from_form = request.POST.get("access_token", "") if request.method == "POST" else ""
    if from_header and from_form:
        return _bearer_error(400, "invalid_request", "send the token in one place only")
    raw = from_header or from_form
    if not raw:
        return _bearer_error(401)
    try:
        info = tokens.validate_access_token(raw)
    except tokens.InvalidToken as exc:
        tokens.deny(OAuthError("invalid_token", str(exc)), "oidc.userinfo.refuse")
        return _bearer_error(401, "invalid_token", "the access token is invalid, expired or revoked")
    if info.user is None or "openid" not in info.scopes:
        tokens.deny(OAuthError("insufficient_scope", "openid scope needed"), "oidc.userinfo.refuse", actor=info.client)
        return _bearer_error(403, "insufficient_scope", "the token was not issued for the openid scope")
    claims = {"sub": info.claims.get("sub") or tokens.subject_of(info.user)}
    claims.update(tokens.user_claims(info.user, info.scopes, agency=info.agency))
    return _json(claims)


@csrf_exempt
def revoke(request):
    """Token revocation (RFC 7009): always 200 for a token that is unknown or not the client's."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    try:
        form, client = _client_request(request, "revoke")
        if not form.get("token"):
            raise tokens.deny(OAuthError("invalid_request", "token is required"), "oidc.revoke.refuse", actor=client)
        tokens.revoke(client, token=form["token"], token_type_hint=form.get("token_type_hint", ""))
    except OAuthError as exc:
        return _oauth_error(exc)
    return _json({})


@csrf_exempt
def introspect(request):
    """Token introspection (RFC 7662) for authenticated confidential clients (resource servers)."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    try:
        form, client = _client_request(request, "introspect")
        if client.is_public:
            raise tokens.deny(
                OAuthError("invalid_client", "public clients may not introspect tokens", status=401),
                "oidc.introspect.refuse",
                actor=client,
            )
        if not form.get("token"):
            raise tokens.deny(
                OAuthError("invalid_request", "token is required"), "oidc.introspect.refuse", actor=client
            )
        answer = tokens.introspect(client, token=form["token"], token_type_hint=form.get("token_type_hint", ""))
    except OAuthError as exc:
        return _oauth_error(exc)
    return _json(answer)


# --- RP-initiated logout -----------------------------------------------------------------------------


@csrf_exempt  # relying parties may POST; a logout the user did not ask for needs the signed confirmation
@require_http_methods(["GET", "POST"])
def end_session(request):
    """RP-initiated logout: verify id_token_hint, log out, return to a registered post-logout URI."""
    try:
        params = _single(request.GET if request.method == "GET" else request.POST)
    except OAuthError as exc:
        return _error_page(request, exc.error, exc.description)
    action = "oidc.logout.refuse"
    claims = None
    if params.get("id_token_hint"):
        try:
            claims = tokens.verify_id_token_hint(params["id_token_hint"])
        except ValueError:
            tokens.deny(OAuthError("invalid_request", "id_token_hint is not valid"), action)
            return _error_page(request, "invalid_request", gettext("id_token_hint 无效。"))
    audiences = []
    if claims is not None:
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    client_id = params.get("client_id", "")
    if client_id and audiences and client_id not in audiences:
        tokens.deny(OAuthError("invalid_request", "client_id does not match id_token_hint"), action)
        return _error_page(request, "invalid_request", gettext("client_id 与 id_token_hint 不一致。"))
    client = clients.get_client(client_id or (audiences[0] if len(audiences) == 1 else ""))
    target = params.get("post_logout_redirect_uri", "")
    if target and (client is None or target not in client.post_logout_redirect_uris):
        tokens.deny(
            OAuthError("invalid_request", "post_logout_redirect_uri is not registered"),
            action,
            client_id=(client.client_id if client else client_id)[:64],
            uri=target[:300],
        )
        return _error_page(request, "invalid_request", gettext("退出后的跳转地址未登记。"))
    user = request.user
    if user.is_authenticated:
        own = tokens.subject_of(user)
        act = claims.get("act") if claims is not None else None
        # an id_token the user received as an agent names the enterprise in sub and the user in act
        hinted = claims is not None and (claims.get("sub") == own or (isinstance(act, dict) and act.get("sub") == own))
        confirmed = False
        if request.method == "POST" and request.POST.get("confirm"):
            try:
                confirmed = signing.loads(request.POST["confirm"], salt=LOGOUT_SALT, max_age=600) == user.pk
            except signing.BadSignature:
                confirmed = False
        if not hinted and not confirmed:
            fields = {k: v for k, v in params.items() if k != "confirm"}
            context = {
                "client": client,
                "fields": fields,
                "confirm": signing.dumps(user.pk, salt=LOGOUT_SALT),
            }
            return render(request, "oidc/logout_confirm.html", context)
        actor = user
        logout(request)
        with transaction.atomic():
            audit.record(
                "oidc.logout",
                actor=actor,
                target=client,
                detail={"client_id": client.client_id if client else "", "id_token_hint": claims is not None},
            )
    if target:
        return _to_client(authorization.append_query(target, {"state": params.get("state", "")}))
    return render(request, "oidc/logged_out.html", {"client": client})


# --- the user's authorized applications -----------------------------------------------------------------


@login_required
def my_authorizations(request):
    """The applications the user has authorized (已授权应用), each revocable."""
    if request.method == "POST":
        client = Client.objects.filter(client_id=request.POST.get("client_id", "")).first()
        if client is None:
            raise Http404(gettext("应用不存在。"))
        authorization.revoke_consent(request.user, client, actor=request.user)
        messages.success(request, gettext("已撤销对“%(name)s”的授权。") % {"name": client.name})
        return redirect("oidc:my_authorizations")
    rows = authorization.authorized_clients(request.user)
    return render(request, "oidc/my_authorizations.html", {"rows": rows})


# --- administrators' client pages (workbench) ------------------------------------------------------------


def may_manage_clients(user) -> bool:
    """Platform administrators (superusers or admin accounts) register and change clients."""
    return bool(
        user is not None
        and user.is_authenticated
        and (getattr(user, "is_superuser", False) or getattr(user, "kind", "") == "admin")
    )


def _admin(request):
    """The administrator making the request, or PermissionDenied."""
    if not may_manage_clients(request.user):
        raise PermissionDenied(gettext("只有系统管理员可以管理接入应用。"))
    return request.user


def _client_or_404(client_id: str) -> Client:
    """A client by id, or 404."""
    client = Client.objects.select_related("organization").filter(client_id=client_id).first()
    if client is None:
        raise Http404(gettext("接入应用不存在。"))
    return client


@login_required
def client_list(request):
    """Every registered client (接入应用) with its type, department and state."""
    _admin(request)
    rows = Client.objects.select_related("organization").order_by("-is_active", "client_id")
    return render(request, "oidc/client_list.html", {"clients": rows})


@login_required
def client_create(request):
    """Register a client; the secret is shown once on the answer page."""
    user = _admin(request)
    form = forms.ClientForm(request.POST or None, creating=True)
    if request.method == "POST" and form.is_valid():
        try:
            client, secret = clients.create_client(actor=user, **form.service_values())
        except ValidationError as exc:
            forms.add_errors(form, exc)
        else:
            return _secret_page(request, client, secret, created=True)
    return render(
        request, "oidc/client_form.html", {"form": form, "creating": True}, status=400 if form.errors else 200
    )


def _secret_page(request, client: Client, secret: str | None, *, created: bool) -> HttpResponse:
    """The one page that shows a client secret (never cached)."""
    response = render(request, "oidc/client_secret.html", {"client": client, "secret": secret, "created": created})
    response["Cache-Control"] = "no-store"
    return response


@login_required
def client_detail(request, client_id):
    """A client's settings, editable by administrators."""
    user = _admin(request)
    client = _client_or_404(client_id)
    form = forms.ClientForm(request.POST or None, client=client)
    if request.method == "POST" and form.is_valid():
        try:
            clients.update_client(client, actor=user, **form.service_values())
        except ValidationError as exc:
            forms.add_errors(form, exc)
        else:
            messages.success(request, gettext("已保存接入应用的设置。"))
            return redirect("oidc:client_detail", client_id=client.client_id)
    context = {"client": client, "form": form, "config": _client_config(client)}
    return render(request, "oidc/client_detail.html", context, status=400 if form.errors else 200)


def _client_config(client: Client) -> str:
    """What the client's developers need, as JSON."""
    return json.dumps(
        {
            "issuer": tokens.issuer(),
            "discovery": f"{tokens.issuer()}{reverse('oidc:discovery')}",
            "client_id": client.client_id,
            "token_endpoint_auth_method": "none" if client.is_public else "client_secret_basic",
            "id_token_signed_response_alg": client.id_token_alg,
        },
        ensure_ascii=False,
        indent=2,
    )


@login_required
@require_POST
def client_rotate(request, client_id):
    """Give a confidential client a new secret and show it once."""
    user = _admin(request)
    client = _client_or_404(client_id)
    try:
        secret = clients.rotate_secret(client, actor=user)
    except ValidationError as exc:
        messages.error(request, "；".join(exc.messages))
        return redirect("oidc:client_detail", client_id=client.client_id)
    return _secret_page(request, client, secret, created=False)


@login_required
@require_POST
def client_deactivate(request, client_id):
    """Stop a client and revoke everything it holds."""
    user = _admin(request)
    client = _client_or_404(client_id)
    clients.deactivate_client(client, actor=user, reason=request.POST.get("reason", "")[:500])
    messages.success(request, gettext("已停用“%(name)s”，其全部令牌已撤销。") % {"name": client.name})
    return redirect("oidc:client_detail", client_id=client.client_id)
