"""Login sessions (登录会话): tracked per user, listed on the account page, ended on request.

Every Django login (``user_logged_in``, whichever view or test client made it) creates a
:class:`~dgov.identity.models.UserSession` row keyed by the session key; the
:class:`~dgov.identity.middleware.SessionActivityMiddleware` refreshes its "last seen" time at most
once a minute; logging out marks it ended. Ending a session from the account page deletes it from
``SESSION_ENGINE``'s store, so the browser holding it is logged out at its next request whatever
the session backend (database or cache); the middleware also logs out a session whose row says it
has ended, as a second line of defence.

:func:`session_auth_methods` is what the OIDC provider reads to put ``amr`` and ``auth_time``
into its tokens.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta
from importlib import import_module

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext

from dgov.identity.models import UserSession
from dgov.kernel.audit_context import client_ip
from dgov.kernel.services import audit

__all__ = [
    "SESSION_AMR",
    "SESSION_AUTH_TIME",
    "active_sessions",
    "describe_user_agent",
    "end_user_sessions",
    "prune_ended",
    "record_methods",
    "rekey",
    "revoke_all_sessions",
    "revoke_session",
    "session_auth_methods",
    "touch",
]

SESSION_AMR = "_dgov_amr"
SESSION_AUTH_TIME = "_dgov_auth_time"
SESSION_SEEN = "_dgov_seen"
TOUCH_INTERVAL = 60  # seconds between two "last seen" writes of one session


def _store_class():
    """The SessionStore class of the configured session engine."""
    return import_module(settings.SESSION_ENGINE).SessionStore


def session_auth_methods(request) -> tuple[list[str], int | None]:
    """How and when the request's session logged in: (RFC 8176 ``amr`` values, ``auth_time`` in Unix seconds).

    ``amr`` lists ``pwd`` (password), ``otp`` (TOTP), ``sms`` (SMS code) and ``mfa`` when two
    factors were used; a re-authentication adds its method and moves ``auth_time`` forward.
    A session logged in by other means (e.g. a test client's ``force_login``) gives ``[]`` and
    the time its tracking row was created; an anonymous request gives ``([], None)``.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return [], None
    session = request.session
    methods = [str(m) for m in session.get(SESSION_AMR) or []]
    auth_time = session.get(SESSION_AUTH_TIME)
    if auth_time is None and session.session_key:
        created = (
            UserSession.objects.filter(session_key=session.session_key).values_list("created_at", flat=True).first()
        )
        auth_time = int(created.timestamp()) if created else None
    return methods, (int(auth_time) if auth_time is not None else None)


def _expiry(request):
    """When the request's session expires in its store (None for browser-length sessions)."""
    try:
        return request.session.get_expiry_date()
    except (AttributeError, KeyError):
        return None


def _create_row(request, user, methods=()) -> UserSession | None:
    """Start tracking the request's session for ``user`` (idempotent per session key)."""
    key = request.session.session_key
    if not key:
        request.session.save()
        key = request.session.session_key
    if not key:
        return None
    now = timezone.now()
    defaults = {
        "user": user,
        "ip": client_ip(request.META),
        "user_agent": (request.META.get("HTTP_USER_AGENT") or "")[:256],
        "methods": list(methods),
        "created_at": now,
        "last_seen_at": now,
        "expires_at": _expiry(request),
    }
    try:
        with transaction.atomic():
            row, created = UserSession.objects.get_or_create(session_key=key, defaults=defaults)
    except IntegrityError:
        return UserSession.objects.filter(session_key=key).first()
    if not created and row.user_id != user.pk:
        # A session key reused by another user (after a flush): the old row describes another session.
        UserSession.objects.filter(pk=row.pk).update(session_key=f"ended:{row.pk}:{key}"[:64], ended_at=now)
        row = UserSession.objects.create(session_key=key, **defaults)
    request.session[SESSION_SEEN] = int(time.time())
    return row


@receiver(user_logged_in, dispatch_uid="dgov.identity.track_login")
def _on_login(sender, request, user, **kwargs) -> None:
    """Track every new login session."""
    if request is not None and hasattr(request, "session"):
        _create_row(request, user, request.session.get(SESSION_AMR) or [])


@receiver(user_logged_out, dispatch_uid="dgov.identity.track_logout")
def _on_logout(sender, request, user, **kwargs) -> None:
    """Mark the session ended when its user logs out."""
    key = getattr(getattr(request, "session", None), "session_key", None)
    if key:
        UserSession.objects.filter(session_key=key, ended_at__isnull=True).update(
            ended_at=timezone.now(), end_reason="logout"
        )


def record_methods(request, methods) -> None:
    """Store the session's authentication methods on its tracking row."""
    key = request.session.session_key
    if key:
        updated = UserSession.objects.filter(session_key=key).update(methods=list(methods))
        if not updated and request.user.is_authenticated:
            _create_row(request, request.user, methods)


def touch(request) -> bool:
    """Refresh the session's "last seen" (at most once a minute); False when the session was ended."""
    now_ts = int(time.time())
    session = request.session
    if now_ts - int(session.get(SESSION_SEEN) or 0) < TOUCH_INTERVAL:
        return True
    key = session.session_key
    if not key:
        return True
    row = UserSession.objects.filter(session_key=key).only("id", "user_id", "ended_at").first()
    if row is None:
        _create_row(request, request.user, session.get(SESSION_AMR) or [])
        return True
    if row.ended_at is not None or row.user_id != request.user.pk:
        return False
    UserSession.objects.filter(pk=row.pk).update(
        last_seen_at=timezone.now(), ip=client_ip(request.META), expires_at=_expiry(request)
    )
    session[SESSION_SEEN] = now_ts
    return True


def rekey(old_key: str | None, new_key: str | None) -> None:
    """Follow a session whose key changed (password change, privilege change) with its tracking row."""
    if old_key and new_key and old_key != new_key:
        UserSession.objects.filter(session_key=old_key).update(session_key=new_key)


def _delete_from_store(key: str) -> None:
    """Delete a session from the session store (the browser holding it is logged out)."""
    _store_class()(session_key=key).delete(key)


def active_sessions(user) -> list[UserSession]:
    """The user's sessions that have not ended, newest activity first; expired ones are closed on the way."""
    now = timezone.now()
    rows = list(UserSession.objects.filter(user=user, ended_at__isnull=True).order_by("-last_seen_at", "-id"))
    expired = [r.pk for r in rows if r.expires_at is not None and r.expires_at <= now]
    if expired:
        UserSession.objects.filter(pk__in=expired).update(ended_at=now, end_reason="expired")
    store = _store_class()()
    alive = []
    for row in rows:
        if row.pk in expired:
            continue
        if not store.exists(row.session_key):
            UserSession.objects.filter(pk=row.pk).update(ended_at=now, end_reason="expired")
            continue
        alive.append(row)
    return alive


def end_user_sessions(user, *, reason: str, keep: str | None = None) -> int:
    """End every session of ``user`` except ``keep``; returns how many (no audit: callers audit the cause)."""
    now = timezone.now()
    rows = UserSession.objects.filter(user=user, ended_at__isnull=True)
    if keep:
        rows = rows.exclude(session_key=keep)
    keys_ = list(rows.values_list("session_key", flat=True))
    for key in keys_:
        _delete_from_store(key)
    UserSession.objects.filter(user=user, session_key__in=keys_).update(ended_at=now, end_reason=reason[:32])
    return len(keys_)


def revoke_session(user, session_id: int, *, actor) -> UserSession:
    """End one of the user's own sessions (PermissionDenied for anyone else's; no IDOR)."""
    with transaction.atomic():
        row = UserSession.objects.select_for_update().filter(pk=session_id).first()
        if row is None or row.user_id != user.pk:
            raise PermissionDenied(gettext("会话不存在。"))
        if row.ended_at is None:
            _delete_from_store(row.session_key)
            row.ended_at = timezone.now()
            row.end_reason = "revoked"
            row.save(update_fields=["ended_at", "end_reason"])
            audit.record(
                "identity.session.revoke",
                actor=actor,
                target=user,
                detail={"session": row.pk, "ip": row.ip, "device": describe_user_agent(row.user_agent)},
            )
    return row


def revoke_all_sessions(user, *, actor, keep: str | None = None) -> int:
    """End all of the user's sessions ("log out everywhere"), optionally except the current one."""
    with transaction.atomic():
        ended = end_user_sessions(user, reason="revoked", keep=keep)
        audit.record(
            "identity.session.revoke_all",
            actor=actor,
            target=user,
            detail={"ended": ended, "kept_current": bool(keep)},
        )
    return ended


def prune_ended(*, older_than_days: int = 90) -> int:
    """Delete tracking rows of sessions that ended or expired long ago; returns how many."""
    cutoff = timezone.now() - timedelta(days=older_than_days)
    return UserSession.objects.filter(last_seen_at__lt=cutoff).delete()[0]


_BROWSERS = (
    (re.compile(r"MicroMessenger/([\d.]+)"), "微信"),
    (re.compile(r"DingTalk/([\d.]+)"), "钉钉"),
    (re.compile(r"Edg(?:e|A|iOS)?/([\d.]+)"), "Edge"),
    (re.compile(r"(?:OPR|Opera)/([\d.]+)"), "Opera"),
    (re.compile(r"QQBrowser/([\d.]+)"), "QQ 浏览器"),
    (re.compile(r"UCBrowser/([\d.]+)"), "UC 浏览器"),
    (re.compile(r"Firefox/([\d.]+)"), "Firefox"),
    (re.compile(r"(?:Chrome|CriOS|Chromium)/([\d.]+)"), "Chrome"),
    (re.compile(r"Version/([\d.]+).*Safari/"), "Safari"),
    (re.compile(r"python-requests/([\d.]+)"), "python-requests"),
    (re.compile(r"curl/([\d.]+)"), "curl"),
)
_SYSTEMS = (
    ("HarmonyOS", "HarmonyOS"),
    ("Windows", "Windows"),
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


def describe_user_agent(user_agent: str) -> str:
    """A short "browser version · system" label of a User-Agent header (e.g. ``Chrome 120 · Windows``)."""
    ua = user_agent or ""
    browser = ""
    for pattern, name in _BROWSERS:
        match = pattern.search(ua)
        if match:
            browser = f"{name} {match.group(1).split('.')[0]}"
            break
    system = next((label for needle, label in _SYSTEMS if needle in ua), "")
    label = " · ".join(part for part in (browser, system) if part)
    return label or (ua[:40] if ua else gettext("未知设备"))
