"""Authentication classes for API routes, shared by every app's router.

``session_auth`` accepts the browser session of a logged-in user (the pages and the API share
it, so htmx and the docs page can call the API). Unsafe methods still need the CSRF token, as
for a form post. Bearer tokens from the OIDC provider are added by the identity app; a route
accepts either by listing both: ``auth=[session_auth, bearer_auth]``. When every class refuses,
the API answers 401 problem+json.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja.security import APIKeyCookie


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
