"""Admin pages of the OpenID Connect provider: read-only, since every change must go through the audited services.

Clients are registered and changed on the workbench pages (接入应用) or with ``dgov oidc client``;
keys are rotated with ``dgov oidc key rotate``. The admin shows what exists, for inspection.
"""

from django.contrib import admin
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from dgov.oidc.models import Client, Consent, FederatedIdentity, Grant, SigningKey, UpstreamProvider
from dgov.oidc.services import broker


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewable, never edited here (no add, change, delete or bulk actions)."""

    actions = None

    def has_add_permission(self, request, obj=None):
        """Created by the services only."""
        return False

    def has_change_permission(self, request, obj=None):
        """Changed by the services only (they audit every change)."""
        return False

    def has_delete_permission(self, request, obj=None):
        """Kept for the audit trail."""
        return False


@admin.register(Client)
class ClientAdmin(ReadOnlyAdmin):
    """Registered clients."""

    list_display = ("client_id", "name", "client_type", "organization", "id_token_alg", "first_party", "is_active")
    list_filter = ("client_type", "is_active", "first_party", "id_token_alg")
    search_fields = ("client_id", "name")
    exclude = ("secret_hash",)


@admin.register(SigningKey)
class SigningKeyAdmin(ReadOnlyAdmin):
    """Token signing keys (public halves only)."""

    list_display = ("kid", "alg", "status", "created_at", "retired_at", "revoked_at")
    list_filter = ("alg", "status")
    exclude = ("wrapped",)


@admin.register(Grant)
class GrantAdmin(ReadOnlyAdmin):
    """Authorizations of clients by users."""

    list_display = ("id", "client", "user", "scope", "created_at", "revoked_at", "revoke_reason")
    list_filter = ("revoke_reason",)
    search_fields = ("client__client_id", "user__username")
    raw_id_fields = ("client", "user")


@admin.register(Consent)
class ConsentAdmin(ReadOnlyAdmin):
    """Remembered consents."""

    list_display = ("user", "client", "scopes", "updated_at")
    search_fields = ("client__client_id", "user__username")
    raw_id_fields = ("client", "user")


@admin.register(UpstreamProvider)
class UpstreamProviderAdmin(ReadOnlyAdmin):
    """Upstream identity providers (身份联合): configured with ``dgov oidc upstream add``; enabled or disabled here."""

    list_display = ("slug", "name_zh", "issuer", "client_id", "max_level", "allow_create", "enabled", "updated_at")
    list_filter = ("enabled", "allow_create", "max_level")
    search_fields = ("slug", "name_zh", "issuer")
    exclude = ("client_secret",)
    actions = ["disable_providers", "enable_providers"]

    @admin.action(description=_("停用所选上游身份提供方"))
    def disable_providers(self, request, queryset):
        """Disable through the audited service."""
        for provider in queryset:
            broker.set_enabled(provider, False, actor=request.user)
        self.message_user(request, gettext("已停用 %(n)d 个上游身份提供方。") % {"n": len(queryset)})

    @admin.action(description=_("启用所选上游身份提供方"))
    def enable_providers(self, request, queryset):
        """Enable through the audited service."""
        for provider in queryset:
            broker.set_enabled(provider, True, actor=request.user)
        self.message_user(request, gettext("已启用 %(n)d 个上游身份提供方。") % {"n": len(queryset)})


@admin.register(FederatedIdentity)
class FederatedIdentityAdmin(ReadOnlyAdmin):
    """Logins at upstream providers linked to local person accounts."""

    list_display = ("id", "provider", "user", "created_account", "linked_at", "last_login_at", "unlinked_at")
    list_filter = ("provider", "created_account")
    search_fields = ("user__username",)
    raw_id_fields = ("provider", "user")
    exclude = ("subject",)
