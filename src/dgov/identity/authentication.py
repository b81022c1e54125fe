"""Authentication operations (身份认证): password step, throttling, second factors, re-authentication.

Re-exported by :mod:`dgov.identity.services`; ADR 0012 records the decisions. In short:

Login in two steps
    :func:`authenticate_password` checks a login name (account name, mobile number or resident ID
    number, the last two through their blind indexes) and a password. It always runs the password
    hasher — for unknown names, accounts without a usable password and locked accounts too — and
    every refusal gets the same message, so neither wording nor timing tells whether an account
    exists or is locked. :func:`begin_login` then either logs the user in (no second factor) or
    keeps a *pending login* in the session — not yet a Django login — until a second factor is
    verified (:func:`verify_login_factor`) or, for an account that must use MFA and has none,
    enrolled (:func:`confirm_totp` / :func:`confirm_sms_enrolment` then :func:`finish_enrolment`).

Throttling and lockout (:class:`~dgov.identity.models.LoginThrottle`, in the database)
    Per account: ``LOGIN_ACCOUNT_MAX_FAILURES`` failures (password or second factor) lock it for
    ``LOGIN_ACCOUNT_LOCK_SECONDS``, doubling with every further lock up to ``LOGIN_LOCK_MAX_SECONDS``;
    names that match no account are counted the same way. Per client IP: ``LOGIN_IP_MAX_FAILURES``
    failures across any accounts lock the IP (``LOGIN_IP_LOCK_SECONDS``, doubling). A completed
    login clears the account's counter, never the IP's. Every failure and lock is audited.

Second factors (:class:`~dgov.identity.models.MfaMethod`)
    TOTP (RFC 6238, :mod:`dgov.identity.totp`), ±1 step, each step usable once; SMS codes through
    the kernel's notification gateway, stored as keyed HMAC-SM3 hashes, valid
    ``SMS_CODE_SECONDS``, ``SMS_CODE_MAX_ATTEMPTS`` tries each, at most one send per
    ``SMS_CODE_RESEND_SECONDS`` and ``SMS_CODE_MAX_PER_HOUR`` per account. Accounts of the kinds
    in ``MFA_REQUIRED_KINDS`` (officials and administrators) and staff accounts must use one.

What the session records
    ``_dgov_amr`` (RFC 8176 values: ``pwd``, ``otp``, ``sms``, plus ``mfa`` when two factors
    were used; ``fed`` for a login through an upstream identity provider), ``_dgov_auth_time``
    (Unix seconds) and ``_dgov_reauth_at``; read them through
    :func:`dgov.identity.sessions.session_auth_methods`.
"""

from __future__ import annotations

import enum
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model, login, update_session_auth_hash
from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from dgov.identity import sessions, totp
from dgov.identity.models import PHONE_INDEX_PURPOSE, LoginThrottle, MfaMethod, OneTimeCode
from dgov.kernel.audit_context import client_ip
from dgov.kernel.crypto import hmac_sm3
from dgov.kernel.fields import blind_index
from dgov.kernel.masking import mask_phone
from dgov.kernel.notify import InvalidRecipient, normalize_phone
from dgov.kernel.services import audit, keys
from dgov.kernel.services.notify import notify

__all__ = [
    "AMR_FEDERATED",
    "AMR_MFA",
    "AMR_OTP",
    "AMR_PASSWORD",
    "AMR_SMS",
    "DEMO_TOTP_SECRET",
    "LOGIN_FAILED_MESSAGE",
    "LoginStep",
    "SmsCodeError",
    "active_factor_rows",
    "authenticate_password",
    "begin_login",
    "cancel_pending_login",
    "change_password",
    "complete_login",
    "confirm_phone_change",
    "confirm_sms_enrolment",
    "confirm_totp",
    "disable_mfa_method",
    "finish_enrolment",
    "ip_throttled",
    "login_throttled",
    "mfa_methods",
    "mfa_required",
    "password_expired",
    "pending_login",
    "provision_totp",
    "reauthenticate",
    "recently_authenticated",
    "register_ip_failure",
    "remove_phone",
    "request_phone_change",
    "reset_mfa",
    "resolve_login_name",
    "send_sms_code",
    "set_first_password",
    "start_totp_enrolment",
    "totp_provisioning",
    "unconfirmed_totp",
    "unlock_account",
    "verify_login_factor",
    "verify_sms_code",
]

AMR_PASSWORD = "pwd"
AMR_OTP = "otp"
AMR_SMS = "sms"
AMR_MFA = "mfa"
# A login through an upstream identity provider (identity brokering, docs/oidc.md). Not an RFC 8176
# value: it stands for the upstream's authentication as one factor, whatever methods the upstream used.
AMR_FEDERATED = "fed"
_AMR_ORDER = (AMR_FEDERATED, AMR_PASSWORD, AMR_OTP, AMR_SMS, AMR_MFA)

SESSION_PENDING = "_dgov_pending_login"
SESSION_AMR = sessions.SESSION_AMR
SESSION_AUTH_TIME = sessions.SESSION_AUTH_TIME
SESSION_REAUTH = "_dgov_reauth_at"
SESSION_PASSWORD_EXPIRED = "_dgov_password_expired"

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
OTP_KEY_PURPOSE = "identity.otp"
LOGIN_NAME_PURPOSE = "identity.login_name"
MAX_PASSWORD_INPUT = 1024  # longer inputs are refused before hashing (the policy allows 256)
ENROLMENT_LIFETIME = timedelta(hours=1)

DEMO_TOTP_SECRET = "DGOVDEMOSECRETKEYFORMAKERUNTOTPX"
"""The published TOTP secret of the demo's officials and administrator (ADR 0012); never in production."""

LOGIN_FAILED_MESSAGE = _("登录失败：用户名或密码不正确，或尝试次数过多已被暂时限制。请核对后稍后再试。")
"""The one message for an unknown name, a wrong password, a locked account or a locked IP."""

_RESIDENT_ID = re.compile(r"^\d{17}[\dXx]$")


def _setting(name: str, default):
    """A deployment setting of authentication, with its default."""
    return getattr(settings, name, default)


def _now() -> timezone.datetime:
    """The current time (one place, so tests can move the clock)."""
    return timezone.now()


# --- Who must use a second factor ----------------------------------------------------------------


def mfa_required(user) -> bool:
    """True for accounts that must pass a second factor: officials, administrators and staff."""
    kinds = set(_setting("MFA_REQUIRED_KINDS", ("official", "admin")))
    return bool(getattr(user, "kind", None) in kinds or user.is_staff or user.is_superuser)


def mfa_methods(user) -> list[str]:
    """The kinds of the user's confirmed second factors (``totp``, ``sms``), TOTP first."""
    kinds = set(MfaMethod.objects.filter(user=user, confirmed_at__isnull=False).values_list("kind", flat=True))
    if MfaMethod.Kind.SMS in kinds and not user.phone:
        kinds.discard(MfaMethod.Kind.SMS)  # no number to send to
    return [k for k in (MfaMethod.Kind.TOTP, MfaMethod.Kind.SMS) if k in kinds]


# --- Throttling ---------------------------------------------------------------------------------------


def _limits(scope: str) -> tuple[int, int]:
    """(max failures, base lock seconds) of a throttle scope."""
    if scope == LoginThrottle.Scope.IP:
        return int(_setting("LOGIN_IP_MAX_FAILURES", 50)), int(_setting("LOGIN_IP_LOCK_SECONDS", 300))
    return int(_setting("LOGIN_ACCOUNT_MAX_FAILURES", 5)), int(_setting("LOGIN_ACCOUNT_LOCK_SECONDS", 60))


def _locked_row(scope: str, key: str) -> LoginThrottle:
    """The throttle row of (scope, key), created if needed, locked for this transaction."""
    rows = LoginThrottle.objects.select_for_update()
    row = rows.filter(scope=scope, key=key).first()
    if row is None:
        try:
            with transaction.atomic():
                LoginThrottle.objects.create(scope=scope, key=key)
        except IntegrityError:
            pass  # created by a concurrent attempt
        row = rows.get(scope=scope, key=key)
    return row


def _is_locked(scope: str, key: str, now) -> bool:
    """Whether (scope, key) is locked at ``now`` (a plain read)."""
    if not key:
        return False
    return LoginThrottle.objects.filter(scope=scope, key=key, locked_until__gt=now).exists()


def _register_failure(scope: str, key: str, now) -> int:
    """Count one failure of (scope, key); return the seconds of the lock it triggers, or 0."""
    if not key:
        return 0
    row = _locked_row(scope, key)
    if row.is_locked(now):
        row.last_failure_at = now
        row.save(update_fields=["last_failure_at"])
        return 0
    window = timedelta(seconds=int(_setting("LOGIN_FAILURE_WINDOW_SECONDS", 900)))
    if row.last_failure_at is None or now - row.last_failure_at > window:
        row.failures = 0
        row.first_failure_at = now
    if row.last_failure_at is not None and now - row.last_failure_at > timedelta(
        seconds=int(_setting("LOGIN_LOCK_RESET_SECONDS", 86400))
    ):
        row.lock_level = 0
    row.failures += 1
    row.last_failure_at = now
    seconds = 0
    max_failures, base = _limits(scope)
    if row.failures >= max_failures:
        cap = int(_setting("LOGIN_LOCK_MAX_SECONDS", 3600))
        seconds = min(base * (2 ** min(row.lock_level, 20)), cap)
        row.locked_until = now + timedelta(seconds=seconds)
        row.lock_level += 1
        row.failures = 0
    row.save()
    return seconds


def _account_key(user, name: str = "") -> str:
    """The throttle key of an account, or of a login name that matches no account."""
    if user is not None:
        return f"user:{user.pk}"
    return "name:" + blind_index(name.strip().lower(), purpose=LOGIN_NAME_PURPOSE)


def _fail(*, user, account_key: str, ip: str, now, action: str, reason: str, denied: bool = False, detail=None) -> None:
    """Count a failed attempt against the account and the IP, audit it and any lock it causes."""
    account_lock = _register_failure(LoginThrottle.Scope.ACCOUNT, account_key, now)
    ip_lock = _register_failure(LoginThrottle.Scope.IP, ip, now)
    target = user if user is not None else ("identity.login_name", account_key[5:], "")
    audit.record(
        action,
        target=target,
        outcome="denied" if denied else "failed",
        detail={"reason": reason, **(detail or {})},
    )
    if account_lock:
        audit.record(
            "identity.login.lock",
            target=target,
            outcome="denied",
            detail={"scope": "account", "seconds": account_lock},
        )
    if ip_lock:
        audit.record(
            "identity.login.lock",
            target=("identity.client_ip", ip, ip),
            outcome="denied",
            detail={"scope": "ip", "seconds": ip_lock},
        )


def _throttled(user, account_key: str, ip: str, now) -> bool:
    """Whether the account (or name) or the client IP is locked now."""
    return _is_locked(LoginThrottle.Scope.ACCOUNT, account_key, now) or _is_locked(LoginThrottle.Scope.IP, ip, now)


def login_throttled(request, user) -> bool:
    """Whether a login of ``user`` from this request's client IP is locked now (for other login routes)."""
    return _throttled(user, _account_key(user), client_ip(request.META), _now())


def ip_throttled(request) -> bool:
    """Whether the request's client IP is locked after too many failed logins."""
    return _is_locked(LoginThrottle.Scope.IP, client_ip(request.META), _now())


def register_ip_failure(request) -> int:
    """Count a failed login attempt that names no account against the client IP (in the caller's transaction).

    Returns the seconds of the lock it triggers (0 for none); a lock is audited like the password
    step's. Identity brokering counts its refused callbacks (bad state, forged token) here.
    """
    ip = client_ip(request.META)
    seconds = _register_failure(LoginThrottle.Scope.IP, ip, _now())
    if seconds:
        audit.record(
            "identity.login.lock",
            target=("identity.client_ip", ip, ip),
            outcome="denied",
            detail={"scope": "ip", "seconds": seconds},
        )
    return seconds


def _clear_account_throttle(user) -> None:
    """Forget the account's failures after a completed login (the IP's count stays)."""
    LoginThrottle.objects.filter(scope=LoginThrottle.Scope.ACCOUNT, key=_account_key(user)).delete()


# --- Step 1: login name and password ------------------------------------------------------------------


def resolve_login_name(name: str):
    """The active-or-not account a login name means: its account name, mobile number or ID number; else None.

    A number shared by several accounts matches none of them (the login must then use the name).
    """
    User = get_user_model()
    text = (name or "").strip()
    if not text or len(text) > 150:
        return None
    user = User.objects.filter(username=text).first()
    if user is not None:
        return user
    candidates = User.objects.none()
    try:
        phone = normalize_phone(text)
    except InvalidRecipient:
        phone = ""
    if phone:
        candidates = User.objects.filter(phone_digest=blind_index(phone, purpose=PHONE_INDEX_PURPOSE))
    elif _RESIDENT_ID.match(text):
        candidates = User.objects.filter(id_number_digest=blind_index(text, purpose="resident_id"))
    else:
        return None
    found = list(candidates[:2])
    return found[0] if len(found) == 1 else None


def _password_matches(user, password: str) -> bool:
    """Check the password, spending one hash also when there is no account or no usable password."""
    if user is None or not user.has_usable_password():
        make_password(password)  # same work as a real check: timing does not tell the cases apart
        return False
    return user.check_password(password)


def authenticate_password(request, name: str, password: str):
    """The user for this login name and password, or None; failures throttled and audited (see module doc)."""
    name = (name or "").strip()
    password = password or ""
    now = _now()
    ip = client_ip(request.META)
    user = resolve_login_name(name)
    account_key = _account_key(user, name)
    locked = _throttled(user, account_key, ip, now)
    valid = _password_matches(user, password[:MAX_PASSWORD_INPUT]) and len(password) <= MAX_PASSWORD_INPUT
    if valid and user.is_active and not locked:
        return user
    reason = "locked" if locked else ("unknown_name" if user is None else "bad_password")
    if valid and not user.is_active:
        reason = "inactive"
    with transaction.atomic():
        _fail(
            user=user,
            account_key=account_key,
            ip=ip,
            now=now,
            action="identity.login",
            reason=reason,
            denied=locked,
            detail={"step": "password", "name_kind": _name_kind(name, user)},
        )
    return None


def _name_kind(name: str, user) -> str:
    """How the login name was written: account name, phone or ID number (never the name itself)."""
    if user is not None and user.get_username() == name:
        return "username"
    try:
        normalize_phone(name)
        return "phone"
    except InvalidRecipient:
        return "id_number" if _RESIDENT_ID.match(name) else "username"


# --- Step 2: the pending login --------------------------------------------------------------------------


class LoginStep(enum.Enum):
    """Where a login goes after the password: done, a second factor, or enrolling one."""

    DONE = "done"
    VERIFY = "verify"
    ENROL = "enrol"


@dataclass
class PendingLogin:
    """A login that passed the password step and awaits a second factor (kept in the session)."""

    user: object
    next_url: str
    methods: list[str]
    attempts: int
    enrol: bool


def begin_login(request, user, *, next_url: str, methods=(AMR_PASSWORD,)) -> tuple[LoginStep, str]:
    """After the password: log in, or keep a pending login; returns the step and the URL to go to."""
    available = mfa_methods(user)
    if not available and not mfa_required(user):
        complete_login(request, user, methods=list(methods))
        return LoginStep.DONE, next_url
    request.session.cycle_key()  # a pending login gets a fresh session id (no fixation)
    request.session[SESSION_PENDING] = {
        "uid": str(user.pk),
        "hash": user.get_session_auth_hash(),
        "at": int(time.time()),
        "next": next_url,
        "methods": list(methods),
        "attempts": 0,
        "enrol": not available,
    }
    if available:
        return LoginStep.VERIFY, reverse("identity:login_verify")
    return LoginStep.ENROL, reverse("identity:login_enrol")


def pending_login(request) -> PendingLogin | None:
    """The session's pending login if still valid (not expired, same account and password), else None."""
    data = request.session.get(SESSION_PENDING)
    if not isinstance(data, dict):
        return None
    lifetime = int(_setting("LOGIN_PENDING_SECONDS", 300))
    user = get_user_model().objects.filter(pk=data.get("uid"), is_active=True).first()
    if (
        user is None
        or int(time.time()) - int(data.get("at", 0)) > lifetime
        or not hmac.compare_digest(str(data.get("hash", "")), user.get_session_auth_hash())
    ):
        cancel_pending_login(request)
        return None
    return PendingLogin(
        user=user,
        next_url=str(data.get("next") or ""),
        methods=list(data.get("methods") or [AMR_PASSWORD]),
        attempts=int(data.get("attempts", 0)),
        enrol=bool(data.get("enrol")),
    )


def cancel_pending_login(request) -> None:
    """Forget the pending login (the password step has to be done again)."""
    request.session.pop(SESSION_PENDING, None)


def _amr(methods) -> list[str]:
    """Methods in RFC 8176 form, in a stable order, with ``mfa`` when two or more factors were used."""
    found = {m for m in methods if m in _AMR_ORDER and m != AMR_MFA}
    if len(found) >= 2:
        found.add(AMR_MFA)
    return [m for m in _AMR_ORDER if m in found]


def complete_login(request, user, *, methods) -> None:
    """Log the user in for real: Django login, methods and time in the session, tracking, audit."""
    amr = _amr(methods)
    login(request, user, backend=MODEL_BACKEND)
    now = int(time.time())
    request.session[SESSION_AMR] = amr
    request.session[SESSION_AUTH_TIME] = now
    request.session[SESSION_REAUTH] = now
    request.session.pop(SESSION_PENDING, None)
    if password_expired(user):
        request.session[SESSION_PASSWORD_EXPIRED] = True
    with transaction.atomic():
        _clear_account_throttle(user)
        sessions.record_methods(request, amr)
        audit.record("identity.login", actor=user, target=user, detail={"methods": amr})


def _pending_failure(request, pending: PendingLogin, reason: str, method: str) -> bool:
    """Count a failed second-factor attempt; returns False when the pending login was dropped."""
    attempts = pending.attempts + 1
    max_attempts = int(_setting("MFA_MAX_ATTEMPTS", 5))
    with transaction.atomic():
        _fail(
            user=pending.user,
            account_key=_account_key(pending.user),
            ip=client_ip(request.META),
            now=_now(),
            action="identity.login",
            reason=reason,
            denied=reason == "locked",
            detail={"step": "second_factor", "method": method},
        )
    if attempts >= max_attempts:
        cancel_pending_login(request)
        return False
    data = dict(request.session[SESSION_PENDING])
    data["attempts"] = attempts
    request.session[SESSION_PENDING] = data
    return True


def verify_login_factor(request, method: str, code: str) -> bool:
    """Check the pending login's second factor; on success the user is logged in (True)."""
    pending = pending_login(request)
    if pending is None:
        return False
    user = pending.user
    if _is_locked(LoginThrottle.Scope.ACCOUNT, _account_key(user), _now()) or _is_locked(
        LoginThrottle.Scope.IP, client_ip(request.META), _now()
    ):
        _pending_failure(request, pending, "locked", method)
        return False
    if method not in mfa_methods(user):
        return False
    if method == MfaMethod.Kind.TOTP:
        ok, amr = _use_totp(user, code), AMR_OTP
    else:
        ok, amr = verify_sms_code(user, OneTimeCode.Purpose.LOGIN, code), AMR_SMS
    if not ok:
        _pending_failure(request, pending, "bad_code", method)
        return False
    complete_login(request, user, methods=[*pending.methods, amr])
    return True


def finish_enrolment(request, method: str) -> bool:
    """Complete a pending login whose user has just enrolled ``method`` (verified by its first code)."""
    pending = pending_login(request)
    if pending is None or method not in mfa_methods(pending.user):
        return False
    complete_login(request, pending.user, methods=[*pending.methods, AMR_OTP if method == "totp" else AMR_SMS])
    return True


# --- TOTP ----------------------------------------------------------------------------------------------


def _use_totp(user, code: str, *, confirmed: bool = True) -> bool:
    """Accept a TOTP code once: the method's last used step moves forward under a row lock."""
    with transaction.atomic():
        method = (
            MfaMethod.objects.select_for_update()
            .filter(user=user, kind=MfaMethod.Kind.TOTP, confirmed_at__isnull=not confirmed)
            .first()
        )
        if method is None:
            return False
        step = totp.match_step(method.secret, code, after_step=method.last_used_step)
        if step is None:
            return False
        method.last_used_step = step
        method.last_used_at = _now()
        method.save(update_fields=["last_used_step", "last_used_at"])
    return True


def start_totp_enrolment(user) -> MfaMethod:
    """The user's TOTP enrolment in progress (a new secret, or the one shown in the last hour)."""
    with transaction.atomic():
        pending = (
            MfaMethod.objects.select_for_update()
            .filter(user=user, kind=MfaMethod.Kind.TOTP, confirmed_at__isnull=True)
            .first()
        )
        if pending is not None and pending.created_at > _now() - ENROLMENT_LIFETIME:
            return pending
        if pending is not None:
            pending.delete()
        return MfaMethod.objects.create(user=user, kind=MfaMethod.Kind.TOTP, secret=totp.generate_secret())


def totp_provisioning(method: MfaMethod) -> dict:
    """What an enrolment page shows: the secret (grouped), the otpauth:// URI and its QR code as SVG."""
    issuer = str(_setting("TOTP_ISSUER", "dgov"))
    uri = totp.provisioning_uri(method.secret, account=method.user.get_username(), issuer=issuer)
    grouped = " ".join(method.secret[i : i + 4] for i in range(0, len(method.secret), 4))
    return {"secret": method.secret, "secret_grouped": grouped, "uri": uri, "qr_svg": totp.qr_svg(uri)}


def confirm_totp(user, code: str, *, actor) -> bool:
    """Confirm the enrolment in progress with its first code; it replaces any earlier authenticator."""
    with transaction.atomic():
        pending = (
            MfaMethod.objects.select_for_update()
            .filter(user=user, kind=MfaMethod.Kind.TOTP, confirmed_at__isnull=True)
            .first()
        )
        if pending is None:
            return False
        step = totp.match_step(pending.secret, code)
        if step is None:
            audit.record(
                "identity.mfa.totp.enable", actor=actor, target=user, outcome="failed", detail={"reason": "bad_code"}
            )
            return False
        replaced = MfaMethod.objects.filter(user=user, kind=MfaMethod.Kind.TOTP, confirmed_at__isnull=False).delete()[0]
        pending.confirmed_at = _now()
        pending.last_used_step = step
        pending.last_used_at = pending.confirmed_at
        pending.save(update_fields=["confirmed_at", "last_used_step", "last_used_at"])
        audit.record("identity.mfa.totp.enable", actor=actor, target=user, detail={"replaced": bool(replaced)})
    return True


def provision_totp(users, secret: str, *, actor) -> int:
    """Give accounts a confirmed TOTP factor with a known secret (the demo's published one); returns how many."""
    secret = totp.normalize_secret(secret)
    users = list(users)
    now = _now()
    with transaction.atomic():
        MfaMethod.objects.filter(user__in=users, kind=MfaMethod.Kind.TOTP).delete()
        MfaMethod.objects.bulk_create(
            [
                MfaMethod(user=u, kind=MfaMethod.Kind.TOTP, secret=secret, confirmed_at=now, last_used_step=0)
                for u in users
            ],
            batch_size=1000,
        )
        audit.record("identity.mfa.totp.provision", actor=actor, detail={"accounts": len(users)})
    return len(users)


# --- SMS one-time codes -------------------------------------------------------------------------------


class SmsCodeError(Exception):
    """A code could not be sent: ``reason`` is no_phone, bad_phone, too_soon or too_many."""

    def __init__(self, reason: str, message: str, *, wait_seconds: int = 0):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.wait_seconds = wait_seconds


def _code_hash(user, purpose: str, phone_digest: str, code: str, *, kid: str | None = None) -> str:
    """``kid:hex`` of HMAC-SM3 over the code and what it is bound to (account, purpose, number)."""
    if kid is None:
        kid, key = keys.data_key(OTP_KEY_PURPOSE)
    else:
        key = keys.data_key_by_id(kid)
    message = f"{user.pk}\x00{purpose}\x00{phone_digest}\x00{code}".encode()
    return f"{kid}:{hmac_sm3(key, message).hex()}"


def send_sms_code(user, purpose: str, *, phone: str = "", actor=None) -> OneTimeCode:
    """Send a 6-digit code by SMS to ``phone`` (default: the account's number); raises SmsCodeError."""
    number = phone or user.phone
    if not number:
        raise SmsCodeError("no_phone", gettext("账号未登记手机号码，无法发送短信验证码。"))
    try:
        number = normalize_phone(number)
    except InvalidRecipient:
        raise SmsCodeError("bad_phone", gettext("手机号码格式不正确（仅支持中国大陆 11 位手机号）。")) from None
    now = _now()
    resend = int(_setting("SMS_CODE_RESEND_SECONDS", 60))
    recent = list(
        OneTimeCode.objects.filter(user=user, created_at__gte=now - timedelta(hours=1)).values_list(
            "created_at", flat=True
        )
    )
    latest = max(recent, default=None)
    if latest is not None and (now - latest).total_seconds() < resend:
        wait = resend - int((now - latest).total_seconds())
        raise SmsCodeError(
            "too_soon", gettext("验证码发送过于频繁，请 %(s)d 秒后再试。") % {"s": wait}, wait_seconds=wait
        )
    if len(recent) >= int(_setting("SMS_CODE_MAX_PER_HOUR", 5)):
        raise SmsCodeError("too_many", gettext("一小时内发送的验证码已达上限，请稍后再试或使用其他验证方式。"))
    digest = blind_index(number, purpose=PHONE_INDEX_PURPOSE)
    code = f"{secrets.randbelow(10**6):06d}"
    minutes = max(1, int(_setting("SMS_CODE_SECONDS", 300)) // 60)
    with transaction.atomic():
        # Only the newest code of a purpose is valid.
        OneTimeCode.objects.filter(user=user, purpose=purpose, used_at__isnull=True, expires_at__gt=now).update(
            expires_at=now
        )
        otc = OneTimeCode.objects.create(
            user=user,
            purpose=purpose,
            phone_digest=digest,
            code_hash=_code_hash(user, purpose, digest, code),
            expires_at=now + timedelta(seconds=int(_setting("SMS_CODE_SECONDS", 300))),
        )
        notify({"phone": number}, "kernel.verification_code", {"code": code, "minutes": minutes}, channels=("sms",))
        audit.record(
            "identity.sms_code.send",
            actor=actor,
            target=user,
            detail={"purpose": purpose, "to": mask_phone(number)},
        )
    return otc


def verify_sms_code(user, purpose: str, code: str, *, phone: str = "") -> bool:
    """Accept the newest unexpired code of ``purpose`` once (sent to ``phone`` when given); counts attempts."""
    code = "".join(str(code or "").split())
    now = _now()
    with transaction.atomic():
        otc = (
            OneTimeCode.objects.select_for_update()
            .filter(user=user, purpose=purpose, used_at__isnull=True, expires_at__gt=now)
            .order_by("-created_at", "-id")
            .first()
        )
        if otc is None or otc.attempts >= int(_setting("SMS_CODE_MAX_ATTEMPTS", 5)):
            return False
        otc.attempts += 1
        kid = otc.code_hash.partition(":")[0]
        digest = otc.phone_digest
        if phone:
            try:
                wanted = blind_index(normalize_phone(phone), purpose=PHONE_INDEX_PURPOSE)
            except InvalidRecipient:
                wanted = ""
            if not hmac.compare_digest(wanted, digest):
                otc.save(update_fields=["attempts"])
                return False
        try:
            expected = _code_hash(user, purpose, digest, code, kid=kid)
        except keys.UnknownKeyError:
            expected = ""
        ok = len(code) == 6 and code.isdigit() and hmac.compare_digest(expected, otc.code_hash)
        if ok:
            otc.used_at = now
        otc.save(update_fields=["attempts", "used_at"])
    return ok


def confirm_sms_enrolment(user, code: str, *, actor) -> bool:
    """Turn SMS codes on as a second factor, with a code just sent to the account's number."""
    if not user.phone or not verify_sms_code(user, OneTimeCode.Purpose.ENROL, code, phone=user.phone):
        with transaction.atomic():
            audit.record("identity.mfa.sms.enable", actor=actor, target=user, outcome="failed")
        return False
    with transaction.atomic():
        MfaMethod.objects.update_or_create(
            user=user, kind=MfaMethod.Kind.SMS, defaults={"confirmed_at": _now(), "secret": ""}
        )
        audit.record("identity.mfa.sms.enable", actor=actor, target=user, detail={"to": mask_phone(user.phone)})
    return True


def disable_mfa_method(user, kind: str, *, actor) -> None:
    """Remove a second factor; refused when an account that must use MFA would be left without one."""
    remaining = [k for k in mfa_methods(user) if k != kind]
    if mfa_required(user) and not remaining:
        raise ValidationError(gettext("您的账号必须启用至少一种双因素认证方式，请先添加另一种方式再移除此方式。"))
    with transaction.atomic():
        deleted = MfaMethod.objects.filter(user=user, kind=kind).delete()[0]
        if deleted:
            audit.record(f"identity.mfa.{kind}.disable", actor=actor, target=user)


def unlock_account(user, *, actor) -> None:
    """Lift a temporary login lock of an account (and forget its failures)."""
    with transaction.atomic():
        deleted = LoginThrottle.objects.filter(scope=LoginThrottle.Scope.ACCOUNT, key=_account_key(user)).delete()[0]
        audit.record("identity.login.unlock", actor=actor, target=user, detail={"had_record": bool(deleted)})


def reset_mfa(user, *, actor, reason: str = "") -> int:
    """Remove every second factor of an account (administrator's help when a phone is lost)."""
    with transaction.atomic():
        deleted = MfaMethod.objects.filter(user=user).delete()[0]
        audit.record("identity.mfa.reset", actor=actor, target=user, detail={"reason": reason[:500]})
    return deleted


# --- Re-authentication --------------------------------------------------------------------------------


def recently_authenticated(request, seconds: int | None = None) -> bool:
    """True when the session's user proved a factor within ``REAUTH_SECONDS`` (login counts)."""
    if not request.user.is_authenticated:
        return False
    limit = int(seconds if seconds is not None else _setting("REAUTH_SECONDS", 300))
    stamp = request.session.get(SESSION_REAUTH) or 0
    return int(time.time()) - int(stamp) <= limit


def reauthenticate(request, *, method: str, secret: str) -> bool:
    """Confirm the logged-in user again with a password, TOTP or SMS code (before sensitive changes)."""
    user = request.user
    ip = client_ip(request.META)
    now = _now()
    if _throttled(user, _account_key(user), ip, now):
        _password_matches(user, secret[:MAX_PASSWORD_INPUT])
        ok, reason = False, "locked"
    elif method == "password":
        ok, reason = _password_matches(user, secret[:MAX_PASSWORD_INPUT]), "bad_password"
    elif method == MfaMethod.Kind.TOTP and method in mfa_methods(user):
        ok, reason = _use_totp(user, secret), "bad_code"
    elif method == MfaMethod.Kind.SMS and method in mfa_methods(user):
        ok, reason = verify_sms_code(user, OneTimeCode.Purpose.REAUTH, secret), "bad_code"
    else:
        ok, reason = False, "unknown_method"
    with transaction.atomic():
        if not ok:
            _fail(
                user=user,
                account_key=_account_key(user),
                ip=ip,
                now=now,
                action="identity.reauth",
                reason=reason,
                denied=reason == "locked",
                detail={"method": method},
            )
            return False
        amr = {"password": AMR_PASSWORD, "totp": AMR_OTP, "sms": AMR_SMS}[method]
        stamp = int(time.time())
        methods = _amr([*request.session.get(SESSION_AMR, []), amr])
        request.session[SESSION_REAUTH] = stamp
        request.session[SESSION_AUTH_TIME] = stamp
        request.session[SESSION_AMR] = methods
        sessions.record_methods(request, methods)
        audit.record("identity.reauth", actor=user, target=user, detail={"method": amr})
    return True


def _require_recent(request) -> None:
    """Refuse a sensitive change unless the user re-authenticated recently."""
    if not recently_authenticated(request):
        raise PermissionDenied(gettext("请先确认身份后再修改安全设置。"))


# --- Password -----------------------------------------------------------------------------------------


def password_expired(user) -> bool:
    """True when ``PASSWORD_MAX_AGE_DAYS`` is set and the password is older than that (off by default)."""
    days = int(_setting("PASSWORD_MAX_AGE_DAYS", 0) or 0)
    if days <= 0 or not user.has_usable_password():
        return False
    changed = user.password_changed_at or user.date_joined
    return changed is not None and _now() - changed > timedelta(days=days)


def change_password(request, *, current: str, new: str) -> None:
    """Change the logged-in user's password (current one required); other sessions are ended."""
    user = request.user
    ip = client_ip(request.META)
    now = _now()
    if _throttled(user, _account_key(user), ip, now) or not _password_matches(user, current[:MAX_PASSWORD_INPUT]):
        with transaction.atomic():
            _fail(
                user=user,
                account_key=_account_key(user),
                ip=ip,
                now=now,
                action="identity.password.change",
                reason="bad_password",
            )
        raise ValidationError({"current": gettext("当前密码不正确。")})
    try:
        validate_password(new, user=user)
    except ValidationError as exc:
        raise ValidationError({"new": exc.messages}) from None
    if new == current:
        raise ValidationError({"new": gettext("新密码不能与当前密码相同。")})
    old_key = request.session.session_key
    with transaction.atomic():
        user.set_password(new)
        user.save(update_fields=["password", "password_changed_at"])
        update_session_auth_hash(request, user)  # keeps this session (new key), others stop working
        sessions.rekey(old_key, request.session.session_key)
        ended = sessions.end_user_sessions(user, reason="password_changed", keep=request.session.session_key)
        request.session[SESSION_REAUTH] = int(time.time())
        request.session.pop(SESSION_PASSWORD_EXPIRED, None)
        audit.record("identity.password.change", actor=user, target=user, detail={"other_sessions_ended": ended})


def set_first_password(request, *, new: str) -> None:
    """Give the logged-in account its first password (it has none, e.g. made by identity brokering).

    There is no current password to ask for, so a recent authentication is the proof
    (``REAUTH_SECONDS``: the login itself — for such an account a login through its linked upstream
    provider — or a re-authentication with a second factor). The password policy applies as for a
    change; other sessions are ended, as after a change. Audited as ``identity.password.set``.
    """
    user = request.user
    if user.has_usable_password():
        raise PermissionDenied(gettext("您的账号已设置登录密码，请使用“修改密码”。"))
    _require_recent(request)
    try:
        validate_password(new, user=user)
    except ValidationError as exc:
        raise ValidationError({"new": exc.messages}) from None
    old_key = request.session.session_key
    with transaction.atomic():
        # Locked and read again: two concurrent requests must not both set a "first" password.
        locked = get_user_model().objects.select_for_update().get(pk=user.pk)
        if locked.has_usable_password():
            raise PermissionDenied(gettext("您的账号已设置登录密码，请使用“修改密码”。"))
        user.set_password(new)
        user.save(update_fields=["password", "password_changed_at"])
        update_session_auth_hash(request, user)  # keeps this session (new key), others stop working
        sessions.rekey(old_key, request.session.session_key)
        ended = sessions.end_user_sessions(user, reason="password_set", keep=request.session.session_key)
        audit.record("identity.password.set", actor=user, target=user, detail={"other_sessions_ended": ended})


# --- Phone number ---------------------------------------------------------------------------------------


def request_phone_change(request, phone: str) -> OneTimeCode:
    """Send a code to a new number (recent re-authentication required); raises SmsCodeError/PermissionDenied."""
    _require_recent(request)
    user = request.user
    try:
        number = normalize_phone(phone)
    except InvalidRecipient:
        raise SmsCodeError("bad_phone", gettext("手机号码格式不正确（仅支持中国大陆 11 位手机号）。")) from None
    return send_sms_code(user, OneTimeCode.Purpose.PHONE, phone=number, actor=user)


def confirm_phone_change(request, phone: str, code: str) -> bool:
    """Store the new number once its code is confirmed (recent re-authentication required)."""
    _require_recent(request)
    user = request.user
    if not verify_sms_code(user, OneTimeCode.Purpose.PHONE, code, phone=phone):
        with transaction.atomic():
            audit.record("identity.phone.change", actor=user, target=user, outcome="failed")
        return False
    with transaction.atomic():
        before = user.phone
        user.phone = normalize_phone(phone)
        user.save(update_fields=["phone"])
        audit.record(
            "identity.phone.change",
            actor=user,
            target=user,
            detail={"from": mask_phone(before), "to": mask_phone(user.phone)},
        )
    return True


def remove_phone(request) -> None:
    """Remove the account's number (recent re-authentication; refused if it is the only second factor)."""
    _require_recent(request)
    user = request.user
    if MfaMethod.Kind.SMS in mfa_methods(user):
        disable_mfa_method(user, MfaMethod.Kind.SMS, actor=user)
    with transaction.atomic():
        before = user.phone
        user.phone = ""
        user.save(update_fields=["phone"])
        audit.record("identity.phone.remove", actor=user, target=user, detail={"from": mask_phone(before)})


def unconfirmed_totp(user) -> MfaMethod | None:
    """The user's TOTP enrolment in progress, if any."""
    return MfaMethod.objects.filter(user=user, kind=MfaMethod.Kind.TOTP, confirmed_at__isnull=True).first()


def active_factor_rows(user) -> list[MfaMethod]:
    """The user's confirmed second factors (for the account page)."""
    return list(MfaMethod.objects.filter(Q(user=user) & Q(confirmed_at__isnull=False)).order_by("kind"))
