"""Session activity: keep "last seen" of tracked sessions, log out ended ones, enforce password expiry."""

from __future__ import annotations

from django.contrib.auth import logout
from django.shortcuts import redirect
from django.urls import reverse

from dgov.identity import sessions
from dgov.identity.authentication import SESSION_PASSWORD_EXPIRED

# Pages an account with an expired password may still open: changing it, logging out, the language.
_EXPIRED_ALLOWED = ("/account/password/", "/logout/", "/i18n/", "/static/", "/api/")


class SessionActivityMiddleware:
    """After authentication: refresh the tracked session, end it if revoked, send expired passwords to change."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        session = getattr(request, "session", None)
        if user is not None and session is not None and session.session_key and user.is_authenticated:
            if not sessions.touch(request):
                logout(request)
                return redirect(reverse("web:login"))
            if session.get(SESSION_PASSWORD_EXPIRED) and not request.path.startswith(_EXPIRED_ALLOWED):
                return redirect(reverse("identity:password"))
        return self.get_response(request)
