"""Session activity: keep "last seen" of tracked sessions, log out ended ones, enforce password expiry.

It also checks, at every request of a session acting for an enterprise (经办人), that the
authorization is still in force (dgov.identity.agents.acting_agency), and puts it on
``request.acting_agency`` for the pages.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import logout
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _

from dgov.identity import agents, sessions
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
            if session.get(agents.SESSION_ACTING) is not None:
                request.acting_agency = agents.acting_agency(request)
                if getattr(request, "acting_ended", False):
                    messages.warning(request, _("经办人授权已失效或被撤销，已返回个人身份。"))
        return self.get_response(request)
