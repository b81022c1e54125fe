"""Tokens (令牌): the token endpoint's grants, validation, revocation (RFC 7009) and introspection (RFC 7662).

* **Access tokens** are JWTs per RFC 9068 (header ``typ: at+jwt``), signed with
  ``settings.OIDC_ACCESS_TOKEN_ALG`` (RS256 by default), audience :func:`api_audience`, with
  ``client_id``, ``scope`` and a random ``jti``. Each has a row (by jti) that revocation marks.
* **id_tokens** are JWTs signed with the client's ``id_token_alg`` (RS256, ES256 or SM2), with
  ``nonce``, ``auth_time``, ``acr``, ``amr``, ``sid``, ``at_hash`` and the claims of the granted
  scopes.
* **Refresh tokens** are 256-bit random strings stored as their SM3 digest. Every use rotates
  the token; presenting a used one again revokes the whole grant (the family of tokens issued
  since the authorization) because only a thief or a broken client does that.
* **Authorization codes** are redeemed once: a second redemption is refused with
  ``invalid_grant`` and revokes the grant (and so every token) issued from the first.
* **Agents** (经办人, dgov.identity.agents): a grant made by a person acting for an enterprise
  belongs to the enterprise account (``sub`` is the enterprise's) and records the authorization;
  its tokens carry an RFC 8693 §4.1 ``act`` claim naming the agent. The authorization is checked
  at every use (code redemption, refresh, access-token validation), and ending it revokes the
  grant (:func:`revoke_agency_grants`).

Every issuance and every refusal is written to the audit chain. Refusals are audited in their own
transaction, which commits even though the request fails.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from dgov.identity import agents
from dgov.kernel.crypto import sm3
from dgov.kernel.services import audit
from dgov.oidc import jose
from dgov.oidc.errors import OAuthError
from dgov.oidc.models import AccessToken, AuthorizationCode, Client, Grant, RefreshToken, Subject
from dgov.oidc.services import clients, keys

__all__ = [
    "ACCESS_TOKEN_TYP",
    "ClientPrincipal",
    "InvalidToken",
    "TokenInfo",
    "act_claim",
    "api_audience",
    "authenticate_client_request",
    "client_credentials",
    "deny",
    "digest",
    "exchange_code",
    "identity_claims",
    "introspect",
    "issuer",
    "purge_expired",
    "refresh",
    "revoke",
    "revoke_agency_grants",
    "revoke_grant",
    "revoke_online_grants",
    "subject_of",
    "user_claims",
    "validate_access_token",
    "verify_id_token_hint",
]

ACCESS_TOKEN_TYP = "at+jwt"
BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="dgov", charset="UTF-8"'}
# RFC 7636 §4.1: 43–128 characters of the unreserved set.
_VERIFIER_RE = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
CLOCK_SKEW_SECONDS = 60


class InvalidToken(Exception):
    """An access token that is malformed, forged, expired, revoked or no longer backed by an active client/user."""


# --- settings and small helpers -------------------------------------------------------------------


def issuer() -> str:
    """The issuer identifier (``iss``), fixed by configuration."""
    return str(getattr(settings, "OIDC_ISSUER", "") or settings.SITE_URL).rstrip("/")


def api_audience() -> str:
    """The audience (``aud``) of access tokens: dgov's own API (RFC 9068 resource identifier)."""
    return f"{issuer()}/api/v1/"


def _seconds(name: str, default: int) -> int:
    """A token lifetime setting."""
    return int(getattr(settings, name, default) or default)


def _access_alg() -> str:
    """The algorithm access tokens are signed with."""
    return str(getattr(settings, "OIDC_ACCESS_TOKEN_ALG", "RS256") or "RS256")


def digest(value: str) -> str:
    """The stored form of a code or refresh token: hex SM3 (256-bit random values need no slow hash)."""
    return sm3(value.encode("utf-8", "surrogatepass")).hex()


def _epoch(moment: datetime) -> int:
    """A datetime as integer seconds since the epoch (JWT NumericDate)."""
    return int(moment.timestamp())


def _scopes(text: str) -> list[str]:
    """A scope parameter (space-delimited, RFC 6749 §3.3) as a list without repeats."""
    result: list[str] = []
    for item in (text or "").split(" "):
        if item and item not in result:
            result.append(item)
    return result


def deny(error: OAuthError, action: str, *, actor=None, target=None, **detail) -> OAuthError:
    """Audit a refusal in its own transaction and return the error for the caller to raise."""
    with transaction.atomic():
        _audit_denial(error, action, actor=actor, target=target, **detail)
    return error


def _audit_denial(error: OAuthError, action: str, *, actor=None, target=None, **detail) -> None:
    """Write a refusal's audit record in the current transaction."""
    audit.record(
        action,
        actor=actor,
        target=target,
        outcome="denied",
        detail={"error": error.error, "reason": error.description, **detail},
    )


# --- subjects and claims -------------------------------------------------------------------------


def subject_of(user) -> str:
    """The user's stable ``sub`` (a random UUID made on first use; never the database id or ID number)."""
    sub = Subject.objects.filter(user_id=user.pk).values_list("sub", flat=True).first()
    if sub is not None:
        return sub
    try:
        with transaction.atomic():
            return Subject.objects.create(user_id=user.pk, sub=str(uuid.uuid4())).sub
    except IntegrityError:
        return Subject.objects.get(user_id=user.pk).sub


def act_claim(agency, scopes) -> dict[str, Any]:
    """The RFC 8693 §4.1 ``act`` claim of a grant made by an agent: who acts, with what scopes, until when.

    ``sub`` is the agent's own subject; ``dgov_agent_scopes`` the authorization's scopes
    (dgov.identity.agents.AGENT_SCOPES) and ``dgov_agent_until`` its end (epoch seconds); with the
    ``profile`` scope also the agent's verified ``name``.
    """
    act: dict[str, Any] = {
        "sub": subject_of(agency.agent),
        "dgov_agent_scopes": list(agency.scopes),
        "dgov_agent_until": _epoch(agency.valid_until),
    }
    if "profile" in scopes:
        act["name"] = agency.agent.display_name or agency.agent.get_username()
    return act


def user_claims(user, scopes, agency=None) -> dict[str, Any]:
    """The claims the granted scopes release about ``user`` (OIDC Core §5.4), without ``sub``.

    With ``agency`` (an agent acting for the enterprise ``user``) also the ``act`` claim, and not
    the enterprise account's e-mail and phone: those are its holder's (the legal
    representative's) contact details, which an agent's login does not release.
    """
    claims: dict[str, Any] = {}
    if agency is not None:
        claims["act"] = act_claim(agency, scopes)
        scopes = [s for s in scopes if s not in ("email", "phone")]
    if "profile" in scopes:
        claims["name"] = user.display_name or user.get_full_name() or user.username
        claims["preferred_username"] = user.username
        claims["dgov_kind"] = user.kind
        department = user.department if getattr(user, "department_id", None) else None
        if department is not None and user.kind in ("official", "admin"):
            claims["dgov_department"] = department.code
            claims["dgov_department_name"] = department.name
    if "email" in scopes and user.email:
        claims["email"] = user.email
        claims["email_verified"] = False  # no e-mail verification exists yet
    phone = getattr(user, "phone", "") or ""
    if "phone" in scopes and phone:
        claims["phone_number"] = phone
        claims["phone_number_verified"] = bool(getattr(user, "phone_verified", False))
    if clients.IDENTITY_SCOPE in scopes:
        claims.update(identity_claims(user))
    return claims


def identity_claims(user) -> dict[str, str]:
    """``dgov_id_number`` and ``dgov_real_name`` of a person verified at real-name level 2 or higher; else none.

    Only person accounts whose verified number is on file (``User.id_number``) release them;
    an enterprise account's number is its agent's, not the enterprise's, and stays undisclosed.
    """
    number = getattr(user, "id_number", "") or ""
    if getattr(user, "kind", "") != "person" or int(getattr(user, "real_name_level", 1) or 1) < 2 or not number:
        return {}
    return {"dgov_id_number": number, "dgov_real_name": user.display_name or ""}


# --- client authentication at the token, revocation and introspection endpoints -----------------------


def _basic_credentials(authorization: str) -> tuple[str, str] | None:
    """(client_id, secret) from ``Authorization: Basic …`` (form-urlencoded first, RFC 6749 §2.3.1)."""
    scheme, _sep, value = (authorization or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return ("", "")
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        return ("", "")
    return unquote_plus(client_id), unquote_plus(secret)


def authenticate_client_request(authorization: str, form, *, endpoint: str) -> Client:
    """The client a request authenticates as (basic, post, or none for public clients), or OAuthError.

    Failures are ``invalid_client`` with status 401 (and ``WWW-Authenticate: Basic`` when the
    client tried HTTP Basic or sent nothing at all), audited as ``oidc.<endpoint>.refuse``.
    """
    action = f"oidc.{endpoint}.refuse"
    basic = _basic_credentials(authorization)
    post_id, post_secret = form.get("client_id", ""), form.get("client_secret", "")
    if basic is not None:
        client_id, secret = basic
        if post_secret:
            raise deny(
                OAuthError("invalid_request", "use one client authentication method, not several"),
                action,
                client_id=client_id[:64],
            )
        if post_id and post_id != client_id:
            raise deny(OAuthError("invalid_request", "client_id does not match the credentials"), action)
        client = clients.authenticate(client_id, secret)
        if client is None:
            raise deny(
                OAuthError("invalid_client", "client authentication failed", status=401, headers=BASIC_CHALLENGE),
                action,
                client_id=client_id[:64],
                method="client_secret_basic",
            )
        return client
    if post_secret:
        client = clients.authenticate(post_id, post_secret)
        if client is None:
            raise deny(
                OAuthError("invalid_client", "client authentication failed", status=401),
                action,
                client_id=post_id[:64],
                method="client_secret_post",
            )
        return client
    if post_id:
        client = clients.get_client(post_id)
        if client is None or not client.is_public:
            raise deny(
                OAuthError("invalid_client", "client authentication failed", status=401),
                action,
                client_id=post_id[:64],
                method="none",
            )
        return client
    raise deny(
        OAuthError("invalid_client", "client authentication is required", status=401, headers=BASIC_CHALLENGE),
        action,
    )


# --- building tokens ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Signers:
    """The keys a grant signs with, fetched before its transaction (see keys.active_key)."""

    access: jose.PrivateJwk
    id_token: jose.PrivateJwk | None = None


def _signers(client: Client, *, id_token: bool) -> _Signers:
    """Fetch the signing keys for the access token and (optionally) the client's id_token."""
    return _Signers(keys.active_key(_access_alg()), keys.active_key(client.id_token_alg) if id_token else None)


def _issue_access_token(
    signer: jose.PrivateJwk,
    client: Client,
    *,
    scopes: list[str],
    now: datetime,
    user=None,
    sub: str = "",
    grant: Grant | None = None,
) -> tuple[str, AccessToken]:
    """Sign an access token and store its row (in the caller's transaction)."""
    lifetime = _seconds("OIDC_ACCESS_TOKEN_SECONDS", 600)
    iat = _epoch(now)
    jti = secrets.token_urlsafe(18)
    claims: dict[str, Any] = {
        "iss": issuer(),
        "sub": sub or client.client_id,
        "aud": api_audience(),
        "client_id": client.client_id,
        "iat": iat,
        "exp": iat + lifetime,
        "jti": jti,
        "scope": " ".join(scopes),
    }
    if grant is not None:
        claims["auth_time"] = _epoch(grant.auth_time)
        if grant.acr:
            claims["acr"] = grant.acr
        if grant.amr:
            claims["amr"] = list(grant.amr)
        if grant.agency_id is not None:
            claims["act"] = act_claim(grant.agency, scopes)
    token = jose.sign(claims, signer, typ=ACCESS_TOKEN_TYP)
    row = AccessToken.objects.create(
        jti=jti,
        client=client,
        grant=grant,
        user=user,
        scope=" ".join(scopes),
        created_at=now,
        expires_at=now + timedelta(seconds=lifetime),
    )
    return token, row


def _id_token(
    signer: jose.PrivateJwk, client: Client, grant: Grant, *, sub: str, scopes, now: datetime, nonce: str, access: str
) -> str:
    """Sign an id_token for a grant (OIDC Core §2, §3.1.3.6)."""
    iat = _epoch(now)
    claims: dict[str, Any] = {
        "iss": issuer(),
        "sub": sub,
        "aud": client.client_id,
        "azp": client.client_id,
        "iat": iat,
        "exp": iat + _seconds("OIDC_ID_TOKEN_SECONDS", 600),
        "auth_time": _epoch(grant.auth_time),
        "at_hash": jose.left_hash(signer.alg, access),
    }
    if nonce:
        claims["nonce"] = nonce
    if grant.acr:
        claims["acr"] = grant.acr
    if grant.amr:
        claims["amr"] = list(grant.amr)
    if grant.sid:
        claims["sid"] = grant.sid
    claims.update(user_claims(grant.user, scopes, agency=grant.agency if grant.agency_id else None))
    return jose.sign(claims, signer, typ="JWT")


def _new_refresh_token(grant: Grant, scope: str, now: datetime) -> str:
    """Create a refresh token for the grant (stored as its digest); return the plaintext."""
    raw = secrets.token_urlsafe(32)
    RefreshToken.objects.create(
        token_hash=digest(raw),
        grant=grant,
        scope=scope,
        expires_at=now + timedelta(seconds=_seconds("OIDC_REFRESH_TOKEN_SECONDS", 30 * 86400)),
    )
    return raw


def _user_token_response(
    signers: _Signers, client: Client, grant: Grant, *, scopes: list[str], now: datetime, nonce: str = ""
) -> tuple[dict, AccessToken, bool]:
    """Access token, id_token (with openid) and a new refresh token (if the client may refresh)."""
    sub = subject_of(grant.user)
    access, row = _issue_access_token(
        signers.access, client, scopes=scopes, now=now, user=grant.user, sub=sub, grant=grant
    )
    response: dict[str, Any] = {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": _seconds("OIDC_ACCESS_TOKEN_SECONDS", 600),
        "scope": " ".join(scopes),
    }
    if "openid" in scopes and signers.id_token is not None:
        response["id_token"] = _id_token(
            signers.id_token, client, grant, sub=sub, scopes=scopes, now=now, nonce=nonce, access=access
        )
    with_refresh = "refresh_token" in client.grant_types
    if with_refresh:
        response["refresh_token"] = _new_refresh_token(grant, grant.scope, now)
    return response, row, with_refresh


# --- grants --------------------------------------------------------------------------------------------


def _pkce_matches(verifier: str, challenge: str) -> bool:
    """RFC 7636 §4.6 with S256: BASE64URL(SHA256(ASCII(verifier))) == challenge."""
    computed = jose.b64url_encode(hashlib.sha256(verifier.encode("ascii")).digest())
    return secrets.compare_digest(computed, challenge)


def revoke_grant(grant: Grant, *, reason: str, actor=None, now: datetime | None = None) -> dict[str, int]:
    """Revoke a grant and every token issued under it (in the caller's transaction); audited."""
    now = now or timezone.now()
    updated = Grant.objects.filter(pk=grant.pk, revoked_at__isnull=True).update(revoked_at=now, revoke_reason=reason)
    refresh_count = RefreshToken.objects.filter(grant=grant, revoked_at__isnull=True).update(revoked_at=now)
    access_count = AccessToken.objects.filter(grant=grant, revoked_at__isnull=True, expires_at__gt=now).update(
        revoked_at=now
    )
    counts = {"grant": updated, "refresh_tokens": refresh_count, "access_tokens": access_count}
    audit.record(
        "oidc.grant.revoke",
        actor=actor,
        target=("oidc.grant", grant.pk, f"grant {grant.pk}"),
        detail={"reason": reason, "client_id": grant.client.client_id, **counts},
    )
    return counts


def revoke_agency_grants(agency, *, actor=None, reason: str = "agency_ended") -> int:
    """Revoke every live grant (and its tokens) made under an agent's authorization; return how many."""
    grants = list(Grant.objects.select_related("client").filter(agency_id=agency.pk, revoked_at__isnull=True))
    for grant in grants:
        revoke_grant(grant, reason=reason, actor=actor)
    # Codes not yet redeemed are refused at redemption (the authorization is checked then).
    return len(grants)


def exchange_code(client: Client, *, code: str, redirect_uri: str, code_verifier: str) -> dict:
    """The authorization_code grant: redeem a code once, with its redirect URI and PKCE verifier."""
    action = "oidc.token.refuse"
    if not code:
        raise deny(OAuthError("invalid_request", "code is required"), action, actor=client)
    if not redirect_uri:
        raise deny(OAuthError("invalid_request", "redirect_uri is required"), action, actor=client)
    if not code_verifier:
        raise deny(OAuthError("invalid_request", "code_verifier is required (PKCE)"), action, actor=client)
    if not _VERIFIER_RE.match(code_verifier):
        raise deny(OAuthError("invalid_request", "malformed code_verifier"), action, actor=client)
    signers = _signers(client, id_token=True)
    error: OAuthError | None = None
    with transaction.atomic():
        now = timezone.now()
        row = (
            AuthorizationCode.objects.select_for_update(of=("self",))
            .select_related("user", "user__department", "agency")
            .filter(code_hash=digest(code))
            .first()
        )
        if row is None or row.client_id != client.pk:
            error = OAuthError("invalid_grant", "unknown authorization code")
            _audit_denial(error, action, actor=client, grant_type="authorization_code")
        elif row.used_at is not None:
            error = OAuthError("invalid_grant", "authorization code was already used")
            counts = {}
            if row.grant_id is not None:
                grant = Grant.objects.select_related("client").get(pk=row.grant_id)
                counts = revoke_grant(grant, reason="code_reuse", actor=client, now=now)
            _audit_denial(error, "oidc.code.reuse", actor=client, target=row, revoked=counts)
        else:
            row.used_at = now
            row.save(update_fields=["used_at"])
            if row.expires_at <= now:
                error = OAuthError("invalid_grant", "authorization code has expired")
            elif row.redirect_uri != redirect_uri:
                error = OAuthError("invalid_grant", "redirect_uri does not match the authorization request")
            elif not _pkce_matches(code_verifier, row.code_challenge):
                error = OAuthError("invalid_grant", "PKCE verification failed")
            elif not row.user.is_active:
                error = OAuthError("invalid_grant", "the user account is disabled")
            elif row.agency_id is not None and agents.agency_in_force(row.agency_id) is None:
                error = OAuthError("invalid_grant", "the agent's authorization has ended")
            if error is not None:
                _audit_denial(error, action, actor=client, target=row, grant_type="authorization_code")
            else:
                grant = Grant.objects.create(
                    client=client,
                    user=row.user,
                    scope=row.scope,
                    auth_time=row.auth_time,
                    acr=row.acr,
                    amr=row.amr,
                    sid=row.sid,
                    agency=row.agency,
                )
                row.grant = grant
                row.save(update_fields=["grant"])
                scopes = _scopes(row.scope)
                response, access_row, with_refresh = _user_token_response(
                    signers, client, grant, scopes=scopes, now=now, nonce=row.nonce
                )
                audit.record(
                    "oidc.token.issue",
                    actor=client,
                    target=grant,
                    detail={
                        "grant_type": "authorization_code",
                        "user": row.user.get_username(),
                        **({"agent": row.agency.agent.get_username()} if row.agency_id else {}),
                        "scope": row.scope,
                        "jti": access_row.jti,
                        "refresh_token": with_refresh,
                        "id_token": "id_token" in response,
                    },
                )
    if error is not None:
        raise error
    return response


def refresh(client: Client, *, refresh_token: str, scope: str = "") -> dict:
    """The refresh_token grant with rotation; a used token presented again revokes its whole grant."""
    action = "oidc.token.refuse"
    if not refresh_token:
        raise deny(OAuthError("invalid_request", "refresh_token is required"), action, actor=client)
    signers = _signers(client, id_token=True)
    error: OAuthError | None = None
    with transaction.atomic():
        now = timezone.now()
        row = (
            RefreshToken.objects.select_for_update(of=("self",))
            .select_related("grant", "grant__user", "grant__user__department", "grant__client")
            .filter(token_hash=digest(refresh_token[:512]))
            .first()
        )
        grant = row.grant if row is not None else None
        if row is None or grant.client_id != client.pk:
            error = OAuthError("invalid_grant", "unknown refresh token")
            _audit_denial(error, action, actor=client, grant_type="refresh_token")
        elif grant.revoked_at is not None or row.revoked_at is not None:
            error = OAuthError("invalid_grant", "refresh token was revoked")
            _audit_denial(error, action, actor=client, target=grant, grant_type="refresh_token")
        elif row.used_at is not None:
            error = OAuthError("invalid_grant", "refresh token was already used")
            counts = revoke_grant(grant, reason="refresh_token_reuse", actor=client, now=now)
            _audit_denial(error, "oidc.refresh_token.reuse", actor=client, target=grant, revoked=counts)
        elif row.expires_at <= now:
            error = OAuthError("invalid_grant", "refresh token has expired")
            _audit_denial(error, action, actor=client, target=grant, grant_type="refresh_token")
        elif not grant.user.is_active:
            error = OAuthError("invalid_grant", "the user account is disabled")
            _audit_denial(error, action, actor=client, target=grant, grant_type="refresh_token")
        elif grant.agency_id is not None and agents.agency_in_force(grant.agency_id) is None:
            error = OAuthError("invalid_grant", "the agent's authorization has ended")
            counts = revoke_grant(grant, reason="agency_ended", actor=client, now=now)
            _audit_denial(error, action, actor=client, target=grant, grant_type="refresh_token", revoked=counts)
        else:
            granted = _scopes(row.scope)
            requested = _scopes(scope) or granted
            if not set(requested) <= set(granted):
                error = OAuthError("invalid_scope", "the requested scope exceeds the one originally granted")
                _audit_denial(error, action, actor=client, target=grant, grant_type="refresh_token")
            else:
                row.used_at = now
                row.save(update_fields=["used_at"])
                response, access_row, _with_refresh = _user_token_response(
                    signers, client, grant, scopes=requested, now=now
                )
                audit.record(
                    "oidc.token.issue",
                    actor=client,
                    target=grant,
                    detail={
                        "grant_type": "refresh_token",
                        "user": grant.user.get_username(),
                        "scope": " ".join(requested),
                        "jti": access_row.jti,
                    },
                )
    if error is not None:
        raise error
    return response


def client_credentials(client: Client, *, scope: str = "") -> dict:
    """The client_credentials grant: an access token for the client itself, with dgov API scopes only."""
    action = "oidc.token.refuse"
    if client.is_public:
        raise deny(
            OAuthError("unauthorized_client", "public clients cannot use client_credentials"), action, actor=client
        )
    api = clients.api_scopes()
    allowed = [s for s in client.scopes if s in api]
    requested = _scopes(scope) or allowed
    if not requested or not set(requested) <= set(allowed):
        raise deny(
            OAuthError("invalid_scope", "the requested scope is not allowed for this client"),
            action,
            actor=client,
            scope=scope[:200],
        )
    signer = keys.active_key(_access_alg())
    with transaction.atomic():
        now = timezone.now()
        token, row = _issue_access_token(signer, client, scopes=requested, now=now)
        audit.record(
            "oidc.token.issue",
            actor=client,
            target=("oidc.accesstoken", row.pk, row.jti),
            detail={"grant_type": "client_credentials", "scope": row.scope, "jti": row.jti},
        )
    return {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": _seconds("OIDC_ACCESS_TOKEN_SECONDS", 600),
        "scope": " ".join(requested),
    }


# --- validating access tokens -----------------------------------------------------------------------


class ClientPrincipal:
    """A client acting for itself with a client-credentials token; behaves like ``identity.ApiClient``.

    Code written for principals (``request.auth``) finds the same attributes: ``client_id``,
    ``organization``/``department``, ``scopes`` (the token's), ``get_username()`` and
    ``audit_identity()``.
    """

    is_authenticated = True
    is_anonymous = False

    def __init__(self, client: Client, scopes: list[str], claims: dict):
        self.client = client
        self.client_id = client.client_id
        self.name = client.name
        self.organization = client.organization
        self.scopes = list(scopes)
        self.token_claims = claims

    @property
    def display_name(self) -> str:
        """The client's name."""
        return self.name

    @property
    def department(self):
        """The department the client acts for."""
        return self.organization

    def get_username(self) -> str:
        """A label that cannot collide with a user name."""
        return f"client:{self.client_id}"

    def audit_identity(self) -> tuple[str, str, str]:
        """How the audit log names this actor."""
        return self.client.audit_identity()

    def has_scope(self, scope: str) -> bool:
        """Whether the token carries ``scope``."""
        return scope in self.scopes

    def __str__(self) -> str:
        return f"{self.name} ({self.client_id})"


@dataclass(slots=True)
class TokenInfo:
    """A valid access token: its claims, client, user (None for client credentials) and scopes.

    ``agency`` is the agent's authorization (in force) when an agent acts for the enterprise ``user``.
    """

    claims: dict
    client: Client
    user: Any
    scopes: list[str] = field(default_factory=list)
    jti: str = ""
    agency: Any = None


def _check_claims(claims: dict, *, now: int) -> None:
    """Issuer, audience and time checks of an access token; InvalidToken when they fail."""
    if claims.get("iss") != issuer():
        raise InvalidToken("wrong issuer")
    aud = claims.get("aud")
    if api_audience() not in (aud if isinstance(aud, list) else [aud]):
        raise InvalidToken("wrong audience")
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int) or exp <= now:
        raise InvalidToken("expired")
    if not isinstance(iat, int) or iat > now + CLOCK_SKEW_SECONDS:
        raise InvalidToken("issued in the future")
    if not isinstance(claims.get("jti"), str) or not isinstance(claims.get("client_id"), str):
        raise InvalidToken("missing jti or client_id")


_TOKEN_COLUMNS = ("revoked_at", "user_id", "client_id", "scope", "grant__revoked_at", "grant__agency_id")
_token_sql: dict[str, str] = {}


def _token_row(jti: str) -> dict | None:
    """The stored state of an access token (what :func:`validate_access_token` checks), by its ``jti``.

    One statement, built once per database from the models' metadata: every bearer-authenticated
    API call runs it, and compiling an ORM query each time cost more than running it.
    """
    from django.db import connection

    sql = _token_sql.get(connection.vendor)
    if sql is None:
        q = connection.ops.quote_name
        t, g = AccessToken._meta, Grant._meta

        def c(meta, name: str) -> str:
            return q(meta.get_field(name).column)

        sql = (
            f"SELECT t.{c(t, 'revoked_at')}, t.{c(t, 'user')}, t.{c(t, 'client')}, t.{c(t, 'scope')}, "
            f"g.{c(g, 'revoked_at')}, g.{c(g, 'agency')} "
            f"FROM {q(t.db_table)} t LEFT JOIN {q(g.db_table)} g ON g.{c(g, 'id')} = t.{c(t, 'grant')} "
            f"WHERE t.{c(t, 'jti')} = %s"
        )
        _token_sql[connection.vendor] = sql
    with connection.cursor() as cursor:
        cursor.execute(sql, [jti])
        found = cursor.fetchone()
    return None if found is None else dict(zip(_TOKEN_COLUMNS, found, strict=True))


def validate_access_token(token: str) -> TokenInfo:
    """Check signature, type, issuer, audience, expiry, revocation, client and user; return what it grants."""
    try:
        header, claims = jose.verify(token, keys.public_key)
    except jose.JoseError as exc:
        raise InvalidToken(str(exc)) from None
    if str(header.get("typ", "")).lower() not in (ACCESS_TOKEN_TYP, "application/at+jwt"):
        raise InvalidToken("not an access token")
    _check_claims(claims, now=int(time.time()))
    row = _token_row(claims["jti"])
    if row is None or row["revoked_at"] is not None or row["grant__revoked_at"] is not None:
        raise InvalidToken("revoked")
    agency = None
    if row["grant__agency_id"] is not None:
        # Checked at every use: an expired authorization stops the token although nothing revoked it.
        agency = agents.agency_in_force(row["grant__agency_id"])
        if agency is None:
            raise InvalidToken("the agent's authorization has ended")
    client = clients.get_client(claims["client_id"])
    if client is None or client.pk != row["client_id"]:
        raise InvalidToken("client is not active")
    user = None
    if row["user_id"] is not None:
        user = get_user_model().objects.select_related("department").filter(pk=row["user_id"], is_active=True).first()
        if user is None:
            raise InvalidToken("user is not active")
    return TokenInfo(
        claims=claims, client=client, user=user, scopes=_scopes(row["scope"]), jti=claims["jti"], agency=agency
    )


def _api_scopes_of_user(user) -> frozenset[str]:
    """The API scopes a user holds in their own right (officials: their department's defaults)."""
    from dgov.api.auth import principal_scopes

    return principal_scopes(user)


def principal_for(info: TokenInfo):
    """The API principal of a valid token: a :class:`ClientPrincipal`, or the user with ``scopes`` set.

    A user's token never carries more than the user holds: its scopes are intersected with the
    user's own API scopes at every request, so a change of role takes effect at once.
    """
    if info.user is None:
        return ClientPrincipal(info.client, info.scopes, info.claims)
    user = info.user
    api = set(clients.api_scopes())
    own = _api_scopes_of_user(user)
    user.scopes = frozenset(s for s in info.scopes if s not in api or s in own)
    user.oidc_client_id = info.client.client_id
    user.token_claims = info.claims
    # An agent's token acts as the enterprise (its own API scopes only); who acted is kept alongside.
    user.acting_agent = info.agency.agent if info.agency is not None else None
    user.agent_scopes = list(info.agency.scopes) if info.agency is not None else []
    return user


def user_api_scopes(user, requested) -> list[str]:
    """The requested scopes without API scopes the user does not hold (RFC 6749 §3.3 narrowing)."""
    api = set(clients.api_scopes())
    own = _api_scopes_of_user(user)
    return [s for s in requested if s not in api or s in own]


# --- revocation and introspection --------------------------------------------------------------------


def _looks_like_jwt(token: str) -> bool:
    """Access tokens are compact JWS (three dot-separated parts); refresh tokens have no dots."""
    return token.count(".") == 2


def revoke(client: Client, *, token: str, token_type_hint: str = "") -> None:
    """RFC 7009: revoke the client's own token; anything else is silently ignored (still 200)."""
    if not token or len(token) > jose.MAX_TOKEN_LENGTH:
        return
    with transaction.atomic():
        now = timezone.now()
        if _looks_like_jwt(token):
            try:
                _header, claims = jose.verify(token, keys.public_key)
            except jose.JoseError:
                return
            row = AccessToken.objects.select_for_update(of=("self",)).filter(jti=str(claims.get("jti", ""))).first()
            if row is None:
                return
            if row.client_id != client.pk:
                _audit_denial(
                    OAuthError("unauthorized_client", "token was issued to another client"),
                    "oidc.revoke.refuse",
                    actor=client,
                    target=row,
                )
                return
            if row.revoked_at is None:
                row.revoked_at = now
                row.save(update_fields=["revoked_at"])
                audit.record("oidc.token.revoke", actor=client, target=row, detail={"jti": row.jti})
            return
        row = (
            RefreshToken.objects.select_for_update(of=("self",))
            .select_related("grant", "grant__client")
            .filter(token_hash=digest(token))
            .first()
        )
        if row is None:
            return
        if row.grant.client_id != client.pk:
            _audit_denial(
                OAuthError("unauthorized_client", "token was issued to another client"),
                "oidc.revoke.refuse",
                actor=client,
                target=row.grant,
            )
            return
        if row.grant.revoked_at is None:
            revoke_grant(row.grant, reason="revoked_by_client", actor=client, now=now)


def introspect(client: Client, *, token: str, token_type_hint: str = "") -> dict:
    """RFC 7662: whether a token is active and what it grants; ``{"active": false}`` for anything else.

    Any authenticated confidential client (a resource server) may introspect access tokens;
    refresh tokens only by the client they were issued to.
    """
    inactive = {"active": False}
    if not token or len(token) > jose.MAX_TOKEN_LENGTH:
        return inactive
    if _looks_like_jwt(token):
        try:
            info = validate_access_token(token)
        except InvalidToken:
            return inactive
        claims = info.claims
        answer = {
            "active": True,
            "scope": " ".join(info.scopes),
            "client_id": info.client.client_id,
            "token_type": "Bearer",
            "exp": claims["exp"],
            "iat": claims["iat"],
            "sub": claims.get("sub", ""),
            "aud": claims.get("aud"),
            "iss": claims.get("iss"),
            "jti": claims["jti"],
        }
        if info.user is not None:
            answer["username"] = info.user.get_username()
            for name in ("auth_time", "acr", "act"):
                if name in claims:
                    answer[name] = claims[name]
        return answer
    row = (
        RefreshToken.objects.select_related("grant", "grant__client", "grant__user")
        .filter(token_hash=digest(token))
        .first()
    )
    now = timezone.now()
    if (
        row is None
        or row.grant.client_id != client.pk
        or row.used_at is not None
        or row.revoked_at is not None
        or row.grant.revoked_at is not None
        or row.expires_at <= now
        or not row.grant.user.is_active
        or (row.grant.agency_id is not None and agents.agency_in_force(row.grant.agency_id) is None)
    ):
        return inactive
    return {
        "active": True,
        "scope": row.scope,
        "client_id": row.grant.client.client_id,
        "token_type": "refresh_token",
        "exp": _epoch(row.expires_at),
        "iat": _epoch(row.created_at),
        "sub": subject_of(row.grant.user),
        "username": row.grant.user.get_username(),
        "iss": issuer(),
    }


# --- sessions, logout ----------------------------------------------------------------------------------


def verify_id_token_hint(token: str) -> dict:
    """The claims of an id_token this provider issued (expired ones accepted, as logout allows); or ValueError."""
    try:
        header, claims = jose.verify(token, keys.public_key)
    except jose.JoseError as exc:
        raise ValueError(str(exc)) from None
    if str(header.get("typ", "JWT")).upper() != "JWT":
        raise ValueError("not an id_token")
    if claims.get("iss") != issuer() or not claims.get("aud") or not claims.get("sub"):
        raise ValueError("not an id_token of this provider")
    return claims


def revoke_online_grants(user, sid: str, *, actor=None) -> int:
    """Revoke the grants made in OP session ``sid`` without ``offline_access`` (logout ends them).

    Grants an agent made in that session while acting for an enterprise belong to the enterprise
    account but end with the agent's session just the same.
    """
    if not sid or user is None or not getattr(user, "pk", None):
        return 0
    count = 0
    with transaction.atomic():
        grants = list(
            Grant.objects.select_related("client").filter(
                Q(user_id=user.pk) | Q(agency__agent_id=user.pk), sid=sid, revoked_at__isnull=True
            )
        )
        for grant in grants:
            if "offline_access" not in grant.scope_list:
                revoke_grant(grant, reason="logout", actor=actor)
                count += 1
    return count


def purge_expired(*, now: datetime | None = None) -> dict[str, int]:
    """Delete expired codes, access tokens and refresh tokens (their audit records stay)."""
    now = now or timezone.now()
    with transaction.atomic():
        codes, _ = AuthorizationCode.objects.filter(expires_at__lt=now - timedelta(days=1)).delete()
        access, _ = AccessToken.objects.filter(expires_at__lt=now).delete()
        refresh_tokens, _ = RefreshToken.objects.filter(expires_at__lt=now).delete()
        counts = {"codes": codes, "access_tokens": access, "refresh_tokens": refresh_tokens}
        audit.record("oidc.purge", actor=None, detail=counts)
    return counts
