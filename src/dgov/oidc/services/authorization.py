"""The authorization endpoint's rules: request validation, login state, consent, codes, logout.

Login itself is the platform's login page (``settings.LOGIN_URL``) and Django's session. How and
when the user logged in (``amr``, ``auth_time``) is what the identity app records in the session
and reports through ``dgov.identity.sessions.session_auth_methods`` (password, TOTP, SMS, ``mfa``
for two factors; re-authentication moves ``auth_time``). This app adds one value of its own at
every login, ``dgov_oidc_sid``: a random id of the OP session, the ``sid`` claim, whose grants
without ``offline_access`` end when that session logs out. A session whose login time is unknown
counts as logged in now, with ``amr`` ``["pwd"]`` — a client's ``max_age`` or ``prompt=login``
still forces a real login.

**acr** (ADR 0011): ``urn:dgov:loa:1`` self-asserted account, ``…:2`` real-name verified against
the population library, ``…:3`` verified in person, or real-name verified and multi-factor. The
level comes from the account's ``real_name_level`` (dgov.identity.realname). A client demands a
minimum with ``acr_values`` (the lowest known level listed), an essential ``acr`` in the
``claims`` parameter's ``id_token`` member (``value``/``values``), or its registered ``min_acr``;
a login below the strictest of these is answered with ``unmet_authentication_requirements``.

**Agents** (经办人, dgov.identity.agents): a person whose session acts for an enterprise
(:func:`acting_agency`, checked at every request) authorizes clients *as the enterprise*: the
code, grant and consent belong to the enterprise account, the code and grant record the
authorization, and the acr is the lower of the agent's login level and the enterprise
account's (:func:`acr_of` with ``agency``). Ending the authorization revokes those grants.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.core import signing
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from dgov.identity import agents
from dgov.kernel.services import audit
from dgov.oidc.errors import OAuthError, UntrustedRequest
from dgov.oidc.models import AuthorizationCode, Client, Consent, Grant
from dgov.oidc.services import clients, tokens

__all__ = [
    "ACR_PREFIX",
    "AuthorizationRequest",
    "SESSION_SID",
    "acr_of",
    "acting_agency",
    "acr_level",
    "append_query",
    "authorized_clients",
    "consent_covers",
    "error_redirect",
    "issue_code",
    "login_state",
    "needs_reauthentication",
    "parse",
    "reauth_marker",
    "record_consent",
    "required_level",
    "revoke_consent",
    "success_redirect",
    "unmet_requirement",
]

SESSION_SID = "dgov_oidc_sid"
SESSION_FALLBACK_TIME = "dgov_oidc_auth_time"
ACR_PREFIX = "urn:dgov:loa:"
REAUTH_PARAM = "dgov_reauth"
REAUTH_SALT = "dgov.oidc.reauth"
REAUTH_MAX_AGE = 600
PROMPTS = frozenset({"none", "login", "consent", "select_account"})
_CHALLENGE_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # base64url of a SHA-256 digest


# --- login state in the session -------------------------------------------------------------------


@receiver(user_logged_in, dispatch_uid="dgov.oidc.stamp_login")
def _on_login(sender, request, user, **kwargs) -> None:
    """Give the new login its OP session id (and a login time, in case nothing else records one)."""
    session = getattr(request, "session", None)
    if session is None:
        return
    session[SESSION_SID] = secrets.token_urlsafe(16)
    session[SESSION_FALLBACK_TIME] = int(time.time())


@receiver(user_logged_out, dispatch_uid="dgov.oidc.end_online_grants")
def _on_logout(sender, request, user, **kwargs) -> None:
    """Logging out of the platform ends the grants made in that session without offline_access."""
    session = getattr(request, "session", None)
    sid = session.get(SESSION_SID, "") if session is not None else ""
    if user is not None and sid:
        tokens.revoke_online_grants(user, sid, actor=user)


@receiver(agents.agency_ended, dispatch_uid="dgov.oidc.end_agency_grants")
def _on_agency_ended(sender, agency, actor=None, reason="", **kwargs) -> None:
    """An agent's authorization ended: revoke the grants (and tokens) issued under it, in the same transaction."""
    tokens.revoke_agency_grants(agency, actor=actor, reason="agency_revoked")


def acting_agency(request):
    """The enterprise agent's authorization this session acts under (checked now), or None."""
    return agents.acting_agency(request)


@dataclass(frozen=True, slots=True)
class LoginState:
    """What the session says about the current login."""

    auth_time: int
    amr: list[str]
    sid: str


def _identity_methods(request) -> tuple[list[str], int | None]:
    """``(amr, auth_time)`` as the identity app records them (empty when it records nothing)."""
    try:
        from dgov.identity.sessions import session_auth_methods
    except ImportError:  # an identity app without login tracking
        return [], None
    return session_auth_methods(request)


def login_state(request) -> LoginState:
    """The login state of an authenticated request's session."""
    session = request.session
    amr, auth_time = _identity_methods(request)
    if auth_time is None:
        auth_time = session.get(SESSION_FALLBACK_TIME)
    if not isinstance(auth_time, int):
        auth_time = int(time.time())
        session[SESSION_FALLBACK_TIME] = auth_time
    if not session.get(SESSION_SID):
        session[SESSION_SID] = secrets.token_urlsafe(16)
    methods = [str(m) for m in amr][:8] or ["pwd"]
    return LoginState(auth_time, methods, str(session[SESSION_SID]))


def _level_of(user, amr) -> int:
    """A login's level: the account's real-name level, 3 for a level-2 account with two factors."""
    try:
        level = int(getattr(user, "real_name_level", None) or 1)
    except (TypeError, ValueError):
        level = 1
    level = min(max(level, 1), 3)
    if level == 2 and "mfa" in amr:
        level = 3
    return level


def acr_of(user, amr, agency=None) -> str:
    """The authentication context class of a login (ADR 0011).

    The account's real-name level (``real_name_level`` once the identity app records one; 1
    until then), raised to 3 when a real-name verified account logged in with two factors. For
    an agent acting for an enterprise (``agency``), the lower of the agent's level and the
    enterprise account's, so the token never claims more than the person who logged in.
    """
    level = _level_of(user, amr)
    if agency is not None:
        level = min(_level_of(agency.agent, amr), _level_of(agency.enterprise, amr))
    return f"{ACR_PREFIX}{level}"


# --- the request ---------------------------------------------------------------------------------


@dataclass(slots=True)
class AuthorizationRequest:
    """A validated authorization request (OIDC Core §3.1.2.1), code flow with PKCE S256."""

    client: Client
    redirect_uri: str
    scopes: list[str]
    state: str = ""
    nonce: str = ""
    code_challenge: str = ""
    prompt: set[str] = field(default_factory=set)
    max_age: int | None = None
    login_hint: str = ""
    params: dict[str, str] = field(default_factory=dict)
    min_level: int = 1


def parse(params: dict[str, str]) -> AuthorizationRequest:
    """Validate an authorization request.

    Raises :class:`UntrustedRequest` when the client or redirect URI cannot be trusted (error
    page) and :class:`OAuthError` for anything else; the view redirects those to the client with
    ``state``. Every refusal is audited.
    """
    client_id = params.get("client_id", "")
    redirect_uri = params.get("redirect_uri", "")
    action = "oidc.authorize.refuse"
    if not client_id:
        raise _untrusted("invalid_request", "client_id is required", action)
    client = clients.get_client(client_id)
    if client is None:
        raise _untrusted("invalid_client", "unknown or inactive client", action, client_id=client_id[:64])
    if not redirect_uri:
        raise _untrusted("invalid_request", "redirect_uri is required", action, client_id=client_id)
    if redirect_uri not in client.redirect_uris:
        raise _untrusted(
            "invalid_request",
            "redirect_uri is not registered for this client",
            action,
            client_id=client_id,
            redirect_uri=redirect_uri[:300],
        )
    request = AuthorizationRequest(client=client, redirect_uri=redirect_uri, scopes=[], params=dict(params))
    request.state = params.get("state", "")

    def refuse(error: str, description: str) -> OAuthError:
        exc = tokens.deny(OAuthError(error, description), action, actor=client)
        exc.redirect_uri = error_redirect(request, exc)
        return exc

    if params.get("request") or params.get("request_uri"):
        raise refuse(
            "request_not_supported" if params.get("request") else "request_uri_not_supported",
            "request objects are not supported",
        )
    response_type = params.get("response_type", "")
    if not response_type:
        raise refuse("invalid_request", "response_type is required")
    if response_type != "code":
        raise refuse("unsupported_response_type", "only the code flow (response_type=code) is supported")
    if params.get("response_mode", "query") != "query":
        raise refuse("invalid_request", "only response_mode=query is supported")
    if "authorization_code" not in client.grant_types:
        raise refuse("unauthorized_client", "the client may not use the authorization code flow")
    scopes = tokens._scopes(params.get("scope", ""))
    if not scopes:
        raise refuse("invalid_scope", "scope is required")
    not_allowed = [s for s in scopes if s not in client.scopes]
    if not_allowed:
        raise refuse("invalid_scope", f"scope not allowed for this client: {' '.join(not_allowed)[:200]}")
    challenge = params.get("code_challenge", "")
    method = params.get("code_challenge_method", "")
    if not challenge:
        raise refuse("invalid_request", "code_challenge is required (PKCE)")
    if method != "S256":
        raise refuse("invalid_request", "code_challenge_method must be S256 (plain is not accepted)")
    if not _CHALLENGE_RE.match(challenge):
        raise refuse("invalid_request", "malformed code_challenge")
    prompt = set(params.get("prompt", "").split())
    if not prompt <= PROMPTS:
        raise refuse("invalid_request", "unknown prompt value")
    if "none" in prompt and len(prompt) > 1:
        raise refuse("invalid_request", "prompt=none cannot be combined with other values")
    max_age = params.get("max_age", "")
    if max_age:
        if not max_age.isdigit() or len(max_age) > 9:
            raise refuse("invalid_request", "max_age must be a non-negative integer")
        request.max_age = int(max_age)
    nonce = params.get("nonce", "")
    if len(nonce) > 500 or len(request.state) > 2000:
        raise refuse("invalid_request", "nonce or state is too long")
    request.scopes = scopes
    request.nonce = nonce
    request.code_challenge = challenge
    request.prompt = prompt
    request.login_hint = params.get("login_hint", "")[:200]
    try:
        request.min_level = required_level(client, params)
    except ValueError as exc:
        raise refuse("invalid_request", str(exc)) from None
    return request


def acr_level(value) -> int | None:
    """The level of an acr value of ours (``urn:dgov:loa:N``, N = 1–3), None for any other value."""
    text = str(value or "")
    if text.startswith(ACR_PREFIX) and text[len(ACR_PREFIX) :] in ("1", "2", "3"):
        return int(text[len(ACR_PREFIX) :])
    return None


def _essential_acr(claims_param: str) -> list[str] | None:
    """The acr values of an essential ``id_token.acr`` request in the claims parameter (None: none asked).

    Raises ValueError for a claims parameter that is not a JSON object (OIDC Core §5.5).
    """
    if not claims_param:
        return None
    try:
        claims = json.loads(claims_param)
    except ValueError:
        raise ValueError("claims must be a JSON object") from None
    if not isinstance(claims, dict):
        raise ValueError("claims must be a JSON object")
    acr = (claims.get("id_token") or {}).get("acr") if isinstance(claims.get("id_token"), dict) else None
    if not isinstance(acr, dict) or not acr.get("essential"):
        return None
    if isinstance(acr.get("values"), list):
        return [str(v) for v in acr["values"]]
    return [str(acr["value"])] if acr.get("value") is not None else []


def required_level(client: Client, params: dict[str, str]) -> int:
    """The minimum real-name level a login must reach for this request (1 when nothing is demanded).

    Levels are ordered, so any listed value is satisfied by a higher level: the minimum demanded
    is the lowest level listed. Unknown ``acr_values`` are ignored (they are voluntary); an
    essential acr naming only unknown values cannot be met (level 4).
    """
    level = acr_level(getattr(client, "min_acr", "")) or 1
    asked = [lv for lv in (acr_level(v) for v in params.get("acr_values", "").split()) if lv]
    if asked:
        level = max(level, min(asked))
    essential = _essential_acr(params.get("claims", ""))
    if essential is not None:
        known = [lv for lv in (acr_level(v) for v in essential) if lv]
        level = max(level, min(known) if known else (4 if essential else 1))
    return level


def unmet_requirement(request: AuthorizationRequest, user, state: LoginState, agency=None) -> str:
    """Why this login (acting for ``agency``'s enterprise, if given) does not reach the request's minimum level."""
    reached = acr_level(acr_of(user, state.amr, agency)) or 1
    if reached >= request.min_level:
        return ""
    return f"real-name level {reached} is below the required level {request.min_level}"


def _untrusted(error: str, description: str, action: str, **detail) -> UntrustedRequest:
    """Audit a refusal that must not redirect and return the exception to raise."""
    tokens.deny(OAuthError(error, description), action, **detail)
    return UntrustedRequest(error, description)


# --- redirects ----------------------------------------------------------------------------------------


def append_query(uri: str, values: dict[str, str]) -> str:
    """``uri`` with ``values`` added to its query (keeping the query it already has)."""
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True) + [(k, v) for k, v in values.items() if v != ""]
    return urlunsplit(parts._replace(query=urlencode(query)))


def error_redirect(request: AuthorizationRequest, error: OAuthError) -> str:
    """Where to send the browser for an error (RFC 6749 §4.1.2.1, with ``iss`` per RFC 9207)."""
    return append_query(
        request.redirect_uri,
        {
            "error": error.error,
            "error_description": error.description,
            "state": request.state,
            "iss": tokens.issuer(),
        },
    )


def success_redirect(request: AuthorizationRequest, code: str) -> str:
    """Where to send the browser with the code."""
    return append_query(request.redirect_uri, {"code": code, "state": request.state, "iss": tokens.issuer()})


# --- re-authentication (prompt=login, max_age) -----------------------------------------------------


def reauth_marker() -> str:
    """A signed timestamp put in the login ``next`` URL: a login after it satisfies prompt=login/max_age."""
    return signing.dumps(int(time.time()), salt=REAUTH_SALT, compress=False)


def _marker_time(params: dict[str, str]) -> int | None:
    """The time of a valid, recent re-authentication marker in the request, if any."""
    value = params.get(REAUTH_PARAM, "")
    if not value:
        return None
    try:
        return int(signing.loads(value, salt=REAUTH_SALT, max_age=REAUTH_MAX_AGE))
    except (signing.BadSignature, TypeError, ValueError):
        return None


def needs_reauthentication(request: AuthorizationRequest, state: LoginState, now: int | None = None) -> bool:
    """Whether prompt=login or max_age demand a fresh login that has not happened yet."""
    now = int(time.time()) if now is None else now
    marker = _marker_time(request.params)
    if marker is not None and state.auth_time >= marker:
        return False
    if "login" in request.prompt:
        return True
    return request.max_age is not None and now - state.auth_time > request.max_age


# --- consent ------------------------------------------------------------------------------------------


def consent_covers(user, request: AuthorizationRequest) -> bool:
    """Whether the user has already agreed to give this client these scopes (or it is first-party)."""
    if request.client.first_party:
        return True
    granted = Consent.objects.filter(user=user, client=request.client).values_list("scopes", flat=True).first()
    return granted is not None and set(request.scopes) <= set(granted)


def record_consent(user, client: Client, scopes: list[str], *, actor) -> Consent:
    """Remember that the user agreed to give ``client`` these scopes (added to what they agreed before)."""
    with transaction.atomic():
        consent, created = Consent.objects.select_for_update().get_or_create(
            user=user, client=client, defaults={"scopes": sorted(set(scopes))}
        )
        if not created:
            consent.scopes = sorted(set(consent.scopes) | set(scopes))
            consent.save(update_fields=["scopes", "updated_at"])
        audit.record(
            "oidc.consent.grant",
            actor=actor,
            target=consent,
            detail={"client_id": client.client_id, "scopes": consent.scopes},
        )
    return consent


def revoke_consent(user, client: Client, *, actor) -> int:
    """Withdraw the user's consent for ``client`` and revoke every grant it holds for the user."""
    with transaction.atomic():
        deleted, _ = Consent.objects.filter(user=user, client=client).delete()
        grants = list(Grant.objects.select_related("client").filter(user=user, client=client, revoked_at__isnull=True))
        for grant in grants:
            tokens.revoke_grant(grant, reason="consent_revoked", actor=actor)
        audit.record(
            "oidc.consent.revoke",
            actor=actor,
            target=client,
            detail={"client_id": client.client_id, "grants_revoked": len(grants), "had_consent": bool(deleted)},
        )
    return len(grants)


def authorized_clients(user) -> list[dict]:
    """The clients a user has consented to or holds live grants for (the account's 已授权应用 list)."""
    consents = {
        c.client_id: c for c in Consent.objects.select_related("client", "client__organization").filter(user=user)
    }
    live = (
        Grant.objects.filter(user=user, revoked_at__isnull=True)
        .select_related("client", "client__organization")
        .order_by("-created_at")
    )
    rows: dict[int, dict] = {}
    for consent in consents.values():
        rows[consent.client_id] = {"client": consent.client, "consent": consent, "last_grant": None}
    for grant in live:
        row = rows.setdefault(grant.client_id, {"client": grant.client, "consent": None, "last_grant": None})
        if row["last_grant"] is None:
            row["last_grant"] = grant
    for row in rows.values():
        scopes = (
            row["consent"].scopes if row["consent"] else (row["last_grant"].scope_list if row["last_grant"] else [])
        )
        row["scopes"] = [clients.scope_label(s) for s in scopes]
    return sorted(rows.values(), key=lambda r: r["client"].name)


# --- codes ----------------------------------------------------------------------------------------------


def issue_code(request: AuthorizationRequest, user, state: LoginState, agency=None) -> str:
    """Issue a one-time authorization code (≤ 60 s) bound to client, redirect URI, PKCE, nonce and login.

    With ``agency`` (the logged-in ``user`` acting for an enterprise) the code is the enterprise
    account's and records the authorization.
    """
    code = secrets.token_urlsafe(32)
    lifetime = min(60, int(getattr(settings, "OIDC_CODE_SECONDS", 60) or 60))
    principal = agency.enterprise if agency is not None else user
    scopes = tokens.user_api_scopes(principal, request.scopes)
    with transaction.atomic():
        now = timezone.now()
        row = AuthorizationCode.objects.create(
            code_hash=tokens.digest(code),
            client=request.client,
            user=principal,
            agency=agency,
            redirect_uri=request.redirect_uri,
            scope=" ".join(scopes),
            nonce=request.nonce,
            code_challenge=request.code_challenge,
            auth_time=datetime.fromtimestamp(state.auth_time, tz=UTC),
            acr=acr_of(user, state.amr, agency),
            amr=state.amr,
            sid=state.sid,
            expires_at=now + timedelta(seconds=lifetime),
        )
        detail = {"client_id": request.client.client_id, "scope": row.scope}
        if agency is not None:
            detail["for"] = principal.get_username()
        audit.record("oidc.code.issue", actor=user, target=row, detail=detail)
    return code
