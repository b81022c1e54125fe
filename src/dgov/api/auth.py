"""Authentication classes for API routes, shared by every app's router.

``session_auth`` accepts the browser session of a logged-in user (the pages and the API share
it, so htmx and the docs page can call the API). Unsafe methods still need the CSRF token, as
for a form post. ``bearer_auth`` accepts access tokens of dgov's OpenID Connect provider
(``dgov.oidc``); a route accepts several by listing them: ``auth=[session_auth, bearer_auth]``.
When every class refuses, the API answers 401 problem+json.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import unquote_plus

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.utils.translation import gettext
from ninja.security import APIKeyCookie, HttpBasicAuth, HttpBearer


class SessionAuth(APIKeyCookie):
    """Django session login (cookie), with CSRF checking for unsafe methods."""

    param_name: str = settings.SESSION_COOKIE_NAME

    def authenticate(self, request: HttpRequest, key: str | None) -> Any | None:
        """Return the logged-in, active user, or None so the next auth class (or the 401) takes over."""
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.is_active:
            return user
        return None


session_auth = SessionAuth()
"""The instance routes pass as ``auth=session_auth``."""


# --- API clients (department systems) ---------------------------------------------------------


def parse_basic(value: str) -> tuple[str, str] | None:
    """(client_id, secret) from an ``Authorization: Basic`` value, or None when it is not a well-formed one."""
    scheme, _sep, encoded = value.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        return None
    return unquote_plus(client_id), unquote_plus(secret)


class ClientAuth(HttpBasicAuth):
    """An API client's credentials as ``Authorization: Basic base64(client_id:secret)`` (RFC 6749 §2.3.1).

    As RFC 6749 asks, client_id and secret are form-urlencoded before base64 (ours are URL-safe,
    so encoding changes nothing for them). A wrong, unknown or deactivated client yields None, so
    the next auth class is tried and, when all refuse, the API answers 401 problem+json.
    """

    def __call__(self, request: HttpRequest) -> Any | None:
        """Decode the header strictly (only the Basic scheme) and authenticate the pair."""
        credentials = parse_basic(request.headers.get("Authorization", ""))
        if credentials is None:
            return None
        return self.authenticate(request, *credentials)

    def authenticate(self, request: HttpRequest, username: str, password: str) -> Any | None:
        """Return the authenticated ApiClient, or None."""
        from dgov.identity.services import authenticate_client

        return authenticate_client(username, password)


client_auth = ClientAuth()
"""API clients by HTTP Basic; routes that also serve officials list ``[client_auth, session_auth]``."""

# What a logged-in official may do through the API without a client: read and write what their
# department may (the registry's authority rules decide which records and fields). Unmasking
# personal fields is a client scope only: pages have their own, per-view rules.
OFFICIAL_SCOPES = frozenset({"registry:read", "registry:write"})


def principal_scopes(principal: Any) -> frozenset[str]:
    """The scopes of the authenticated principal: a client's granted scopes, an official's defaults."""
    if principal is None:
        return frozenset()
    scopes = getattr(principal, "scopes", None)
    if isinstance(scopes, list | tuple | set | frozenset):
        return frozenset(scopes)
    kind = getattr(principal, "kind", "")
    if getattr(principal, "department_id", None) and kind in ("official", "admin"):
        return OFFICIAL_SCOPES
    if getattr(principal, "is_superuser", False) or kind == "admin":
        # Administrators read everything; writing needs a department (one accountable source).
        return frozenset({"registry:read"})
    return frozenset()


def require_scope(request: HttpRequest, scope: str) -> None:
    """Raise PermissionDenied (403 problem+json) unless the request's principal holds ``scope``."""
    if scope not in principal_scopes(getattr(request, "auth", None)):
        raise PermissionDenied(gettext("当前凭证没有 %(scope)s 权限范围。") % {"scope": scope})


# --- Bearer tokens of dgov's OpenID Connect provider ---------------------------------------------


class BearerAuth(HttpBearer):
    """``Authorization: Bearer <access token>`` issued by ``dgov.oidc`` (RFC 6750, JWT per RFC 9068).

    The token's signature, type, issuer, audience, expiry and revocation are checked, and its
    client (and user) must still be active. A client-credentials token authenticates as the
    client (department and scopes as an API client has them); a user's token as the user, with
    ``scopes`` narrowed to what the token carries and the user holds. Anything else yields None.
    """

    def authenticate(self, request: HttpRequest, token: str) -> Any | None:
        """Return the principal of a valid token, or None."""
        from dgov.oidc.services import tokens

        try:
            info = tokens.validate_access_token(token)
        except tokens.InvalidToken:
            return None
        return tokens.principal_for(info)


bearer_auth = BearerAuth()
"""Access tokens of the OIDC provider; list it beside the other classes a route accepts."""
