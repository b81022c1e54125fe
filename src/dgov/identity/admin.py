"""Admin pages for accounts, their second factors, login throttles and sessions."""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from dgov.identity import authentication, sessions
from dgov.identity.models import EnterpriseAgent, LoginThrottle, MfaMethod, User, UserSession
from dgov.kernel.fields import EncryptedTextField


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    """Accounts with their kind and department."""

    list_display = ("username", "display_name", "kind", "department", "is_active")
    list_filter = ("kind", "is_active", "is_staff")
    search_fields = ("username", "display_name")
    fieldsets = (*BaseUserAdmin.fieldsets, ("dgov", {"fields": ("kind", "display_name", "department", "phone")}))
    actions = ["reset_second_factors", "end_sessions"]
    formfield_overrides = {EncryptedTextField: {"widget": forms.TextInput}}

    @admin.action(description=_("重置双因素认证（用户丢失手机时）"))
    def reset_second_factors(self, request, queryset):
        """Remove the second factors of the selected accounts (they enrol again at their next login)."""
        count = 0
        for user in queryset:
            authentication.reset_mfa(user, actor=request.user, reason="admin action")
            count += 1
        self.message_user(request, ngettext("已重置 %d 个账号。", "已重置 %d 个账号。", count) % count)

    @admin.action(description=_("退出所选账号的全部登录会话"))
    def end_sessions(self, request, queryset):
        """Log the selected accounts out everywhere."""
        total = sum(sessions.revoke_all_sessions(user, actor=request.user) for user in queryset)
        self.message_user(request, _("已结束 %(count)d 个会话。") % {"count": total}, messages.SUCCESS)


class _ReadOnly(admin.ModelAdmin):
    """Records written by the authentication services only."""

    def has_add_permission(self, request, obj=None):
        """Written by the platform only."""
        return False

    def has_change_permission(self, request, obj=None):
        """Viewing is allowed; editing is not."""
        return False


@admin.register(MfaMethod)
class MfaMethodAdmin(_ReadOnly):
    """Second factors (the TOTP secret is never shown)."""

    list_display = ("user", "kind", "confirmed_at", "last_used_at", "created_at")
    list_filter = ("kind",)
    search_fields = ("user__username", "user__display_name")
    exclude = ("secret",)


@admin.register(LoginThrottle)
class LoginThrottleAdmin(_ReadOnly):
    """Failed-login counters and locks; deleting a row lifts its lock."""

    list_display = ("scope", "key", "failures", "lock_level", "locked_until", "last_failure_at")
    list_filter = ("scope",)
    search_fields = ("key",)


@admin.register(UserSession)
class UserSessionAdmin(_ReadOnly):
    """Tracked login sessions (the session key is not shown)."""

    list_display = ("user", "ip", "created_at", "last_seen_at", "ended_at", "end_reason")
    list_filter = ("end_reason",)
    search_fields = ("user__username", "ip")
    exclude = ("session_key",)


@admin.register(EnterpriseAgent)
class EnterpriseAgentAdmin(_ReadOnly):
    """Enterprise agents' authorizations (经办人授权); granted and revoked in the account console only."""

    list_display = ("enterprise", "agent", "enterprise_name", "valid_from", "valid_until", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("enterprise__username", "agent__username", "enterprise_name")

    def has_delete_permission(self, request, obj=None):
        """Kept as the record of who could act for whom."""
        return False
