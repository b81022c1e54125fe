"""Second login step and the account console (账号与安全): thin views over the identity services."""

from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from dgov.identity import authentication as authn
from dgov.identity import sessions
from dgov.identity.forms import (
    CodeForm,
    PasswordChangeForm,
    PasswordSetForm,
    PhoneForm,
    ReauthForm,
    SmsConfirmForm,
    TotpConfirmForm,
)
from dgov.identity.models import MfaMethod, OneTimeCode
from dgov.kernel.masking import mask_phone

CODE_REFUSED = gettext_lazy("验证码不正确或已过期，请重新输入。")
CODE_SENT = gettext_lazy("验证码已发送至 %(phone)s，5 分钟内有效。")


def _safe_next(request, candidate: str, default: str) -> str:
    """``candidate`` when it is a local URL of this site, else ``default``."""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return resolve_url(default)


def _restart_login(request, message: str):
    """Back to the password step with a notice (the pending login expired or failed too often)."""
    authn.cancel_pending_login(request)
    messages.error(request, message)
    return redirect(settings.LOGIN_URL)


def _demo_hint(user) -> bool:
    """Whether to show the published demo TOTP secret (embedded mode, account using that secret)."""
    if getattr(settings, "PRODUCTION", False):
        return False
    method = MfaMethod.objects.filter(user=user, kind=MfaMethod.Kind.TOTP, confirmed_at__isnull=False).first()
    return method is not None and method.secret == authn.DEMO_TOTP_SECRET


def _send_code(request, user, purpose: str, *, phone: str = "", actor=None) -> None:
    """Send an SMS code and say so (or why not) in a message."""
    try:
        authn.send_sms_code(user, purpose, phone=phone, actor=actor)
    except authn.SmsCodeError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, CODE_SENT % {"phone": mask_phone(phone or user.phone)})


# --- Second login step ---------------------------------------------------------------------------------


@never_cache
def login_verify(request):
    """Second factor of a pending login: a TOTP code, or an SMS code sent on request."""
    pending = authn.pending_login(request)
    if pending is None or pending.enrol:
        return _restart_login(request, _("登录已超时，请重新登录。"))
    user = pending.user
    available = authn.mfa_methods(user)
    if not available:  # the factors were removed meanwhile: start again (the password step decides anew)
        return _restart_login(request, _("登录已超时，请重新登录。"))
    method = request.POST.get("method") or request.GET.get("method") or available[0]
    if method not in available:
        method = available[0]
    form = CodeForm(initial={"method": method})
    if request.method == "POST":
        if request.POST.get("action") == "send_sms" and "sms" in available:
            _send_code(request, user, OneTimeCode.Purpose.LOGIN)
            return redirect(f"{reverse('identity:login_verify')}?method=sms")
        form = CodeForm(request.POST)
        if form.is_valid():
            next_url = pending.next_url
            if authn.verify_login_factor(request, form.cleaned_data["method"], form.cleaned_data["code"]):
                return HttpResponseRedirect(_safe_next(request, next_url, settings.LOGIN_REDIRECT_URL))
            if authn.pending_login(request) is None:
                return _restart_login(request, _("验证失败次数过多，请重新登录。"))
            form.add_error("code", CODE_REFUSED)
    context = {
        "form": form,
        "method": method,
        "available": available,
        "pending_user": user,
        "phone_masked": mask_phone(user.phone),
        "demo_hint": _demo_hint(user) and method == "totp",
        "demo_secret": authn.DEMO_TOTP_SECRET,
    }
    return render(request, "identity/login_verify.html", context)


@never_cache
def login_enrol(request):
    """A pending login of an account that must use MFA and has none: add an authenticator (or SMS) now."""
    pending = authn.pending_login(request)
    if pending is None or not pending.enrol:
        return _restart_login(request, _("登录已超时，请重新登录。"))
    user = pending.user
    method = authn.start_totp_enrolment(user)
    totp_form, sms_form = TotpConfirmForm(), SmsConfirmForm()
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "totp":
            totp_form = TotpConfirmForm(request.POST)
            if totp_form.is_valid():
                next_url = pending.next_url
                if authn.confirm_totp(user, totp_form.cleaned_data["code"], actor=user) and authn.finish_enrolment(
                    request, "totp"
                ):
                    messages.success(request, _("已启用身份验证器动态口令。"))
                    return HttpResponseRedirect(_safe_next(request, next_url, settings.LOGIN_REDIRECT_URL))
                totp_form.add_error("code", CODE_REFUSED)
        elif action == "send_sms" and user.phone:
            _send_code(request, user, OneTimeCode.Purpose.ENROL)
            return redirect(f"{reverse('identity:login_enrol')}#sms")
        elif action == "sms" and user.phone:
            sms_form = SmsConfirmForm(request.POST)
            if sms_form.is_valid():
                next_url = pending.next_url
                if authn.confirm_sms_enrolment(user, sms_form.cleaned_data["code"], actor=user) and (
                    authn.finish_enrolment(request, "sms")
                ):
                    messages.success(request, _("已启用短信验证码。"))
                    return HttpResponseRedirect(_safe_next(request, next_url, settings.LOGIN_REDIRECT_URL))
                sms_form.add_error("code", CODE_REFUSED)
    context = {
        "pending_user": user,
        "totp": authn.totp_provisioning(method),
        "totp_form": totp_form,
        "sms_form": sms_form,
        "phone_masked": mask_phone(user.phone),
    }
    return render(request, "identity/login_enrol.html", context)


# --- Re-authentication -------------------------------------------------------------------------------


def _to_reauth(request):
    """Redirect to the re-authentication page, coming back to this page afterwards."""
    return redirect(f"{reverse('identity:reauth')}?{urlencode({'next': request.get_full_path()})}")


def reauth_required(view):
    """Send the user to confirm their identity first unless they did so in the last few minutes."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not authn.recently_authenticated(request):
            return _to_reauth(request)
        return view(request, *args, **kwargs)

    return login_required(wrapper)


@never_cache
@login_required
def reauth(request):
    """Confirm the logged-in user again (password or second factor) before a sensitive change."""
    user = request.user
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    next_url = _safe_next(request, wanted, reverse("identity:account"))
    available = authn.mfa_methods(user)
    has_password = user.has_usable_password()
    # An account without a password (made by identity brokering) confirms with a second factor or
    # by logging in again through its linked upstream provider (offered by the template).
    methods = (["password"] if has_password else []) + available
    method = request.POST.get("method") or request.GET.get("method") or (methods[0] if methods else "")
    if method not in methods:
        method = methods[0] if methods else ""
    form = ReauthForm(initial={"method": method})
    if request.method == "POST" and methods:
        if request.POST.get("action") == "send_sms" and "sms" in available:
            _send_code(request, user, OneTimeCode.Purpose.REAUTH, actor=user)
            return redirect(f"{reverse('identity:reauth')}?{urlencode({'next': next_url, 'method': 'sms'})}")
        form = ReauthForm(request.POST)
        if form.is_valid() and form.cleaned_data["method"] in methods:
            if authn.reauthenticate(request, method=form.cleaned_data["method"], secret=form.cleaned_data["secret"]):
                return HttpResponseRedirect(next_url)
            form.add_error("secret", _("验证未通过：密码或验证码不正确，或尝试次数过多已被暂时限制。"))
        elif form.is_valid():
            form.add_error("secret", _("请选择可用的验证方式。"))
    context = {
        "form": form,
        "method": method,
        "methods": methods,
        "available": available,
        "has_password": has_password,
        "next": next_url,
    }
    return render(request, "identity/reauth.html", context)


# --- Account console ------------------------------------------------------------------------------------


@never_cache
@login_required
def account(request):
    """The account console: profile, security settings and active sessions."""
    user = request.user
    rows = sessions.active_sessions(user)
    current = request.session.session_key
    session_list = [
        {
            "row": row,
            "device": sessions.describe_user_agent(row.user_agent),
            "current": row.session_key == current,
        }
        for row in rows
    ]
    methods, auth_time = sessions.session_auth_methods(request)
    context = {
        "phone_masked": mask_phone(user.phone),
        "factors": authn.active_factor_rows(user),
        "mfa_required": authn.mfa_required(user),
        "sessions": session_list,
        "current_methods": methods,
        "password_expired": authn.password_expired(user),
        "has_password": user.has_usable_password(),
    }
    return render(request, "identity/account.html", context)


@never_cache
@login_required
def password(request):
    """Change the password (the current password is asked: it is the re-authentication)."""
    if not request.user.has_usable_password():
        return redirect("identity:password_set")
    form = PasswordChangeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            authn.change_password(request, current=form.cleaned_data["current"], new=form.cleaned_data["new"])
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
        else:
            messages.success(request, _("密码已修改，其他设备上的登录已退出。"))
            return redirect("identity:account")
    return render(request, "identity/password.html", {"form": form})


@never_cache
@login_required
def password_set(request):
    """Set a first password for an account that has none (made by identity brokering), after a recent login."""
    if request.user.has_usable_password():
        return redirect("identity:password")
    if not authn.recently_authenticated(request):
        return _to_reauth(request)
    form = PasswordSetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            authn.set_first_password(request, new=form.cleaned_data["new"])
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
        except PermissionDenied:  # the recent authentication ran out while the form was open
            return _to_reauth(request)
        else:
            messages.success(request, _("登录密码已设置，其他设备上的登录已退出。"))
            return redirect("identity:account")
    return render(request, "identity/password_set.html", {"form": form})


@never_cache
@reauth_required
def phone(request):
    """Set or change the mobile number: a code goes to the new number and confirms it."""
    form = PhoneForm(request.POST or None)
    sent = False
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "remove":
            try:
                authn.remove_phone(request)
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
            else:
                messages.success(request, _("手机号码已删除。"))
            return redirect("identity:account")
        if form.is_valid():
            number = form.cleaned_data["phone"]
            if action == "send":
                try:
                    authn.request_phone_change(request, number)
                except authn.SmsCodeError as exc:
                    form.add_error("phone", exc.message)
                else:
                    messages.success(request, CODE_SENT % {"phone": mask_phone(number)})
                    sent = True
            elif action == "confirm":
                sent = True
                if not form.cleaned_data.get("code"):
                    form.add_error("code", _("请输入短信验证码"))
                elif authn.confirm_phone_change(request, number, form.cleaned_data["code"]):
                    messages.success(request, _("手机号码已更新。"))
                    return redirect("identity:account")
                else:
                    form.add_error("code", CODE_REFUSED)
    context = {"form": form, "sent": sent, "phone_masked": mask_phone(request.user.phone)}
    return render(request, "identity/phone.html", context)


@never_cache
@reauth_required
def mfa(request):
    """Second-factor settings: add or replace an authenticator app, turn SMS codes on or off."""
    user = request.user
    totp_form, sms_form = TotpConfirmForm(), SmsConfirmForm()
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "totp":
            totp_form = TotpConfirmForm(request.POST)
            if totp_form.is_valid():
                if authn.confirm_totp(user, totp_form.cleaned_data["code"], actor=user):
                    messages.success(request, _("已启用身份验证器动态口令。"))
                    return redirect("identity:mfa")
                totp_form.add_error("code", CODE_REFUSED)
        elif action == "send_sms":
            _send_code(request, user, OneTimeCode.Purpose.ENROL, actor=user)
            return redirect(f"{reverse('identity:mfa')}#sms")
        elif action == "sms":
            sms_form = SmsConfirmForm(request.POST)
            if sms_form.is_valid():
                if authn.confirm_sms_enrolment(user, sms_form.cleaned_data["code"], actor=user):
                    messages.success(request, _("已启用短信验证码。"))
                    return redirect("identity:mfa")
                sms_form.add_error("code", CODE_REFUSED)
        elif action in ("remove_totp", "remove_sms"):
            try:
                authn.disable_mfa_method(user, action.removeprefix("remove_"), actor=user)
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
            else:
                messages.success(request, _("已移除该双因素认证方式。"))
            return redirect("identity:mfa")
    enabled = authn.mfa_methods(user)
    show_setup = "totp" not in enabled or request.GET.get("replace") == "totp" or request.method == "POST"
    context = {
        "enabled": enabled,
        "mfa_required": authn.mfa_required(user),
        "totp": authn.totp_provisioning(authn.start_totp_enrolment(user)) if show_setup else None,
        "totp_form": totp_form,
        "sms_form": sms_form,
        "phone_masked": mask_phone(user.phone),
    }
    return render(request, "identity/mfa.html", context)


@require_POST
@login_required
def revoke_session(request, session_id: int):
    """End one of my sessions (ending the current one logs me out)."""
    row = sessions.revoke_session(request.user, session_id, actor=request.user)
    if row.session_key == request.session.session_key:
        logout(request)
        return redirect(settings.LOGIN_URL)
    messages.success(request, _("已退出该设备上的登录。"))
    return redirect("identity:account")


@require_POST
@login_required
def revoke_other_sessions(request):
    """End every session of mine except this one."""
    count = sessions.revoke_all_sessions(request.user, actor=request.user, keep=request.session.session_key)
    messages.success(request, _("已退出其他 %(count)d 个会话。") % {"count": count})
    return redirect("identity:account")


@require_POST
@login_required
def revoke_all_sessions(request):
    """Log out everywhere, this browser included."""
    sessions.revoke_all_sessions(request.user, actor=request.user)
    logout(request)
    messages.success(request, _("已退出所有设备上的登录。"))
    return redirect(settings.LOGIN_URL)
