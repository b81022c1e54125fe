"""Admin registrations of sharing and exchange (read-mostly: changes go through the services)."""

from django.contrib import admin

from dgov.exchange.models import Delivery, ExchangeCheckpoint, ExchangeLogEntry, Grant, ShareRequest, Subscription


@admin.register(ShareRequest)
class ShareRequestAdmin(admin.ModelAdmin):
    """Requests, read-only (decisions are made on the workbench)."""

    list_display = ("id", "resource", "consumer", "status", "due_on", "submitted_at")
    list_filter = ("status",)

    def has_change_permission(self, request, obj=None):
        """Decisions go through the services (audited)."""
        return False

    def has_add_permission(self, request):
        """Requests are filed by officials on the workbench."""
        return False


@admin.register(Grant)
class GrantAdmin(admin.ModelAdmin):
    """Grants, read-only."""

    list_display = ("id", "resource", "consumer", "valid_from", "valid_until", "revoked_at")

    def has_change_permission(self, request, obj=None):
        """Revocation goes through the services (audited)."""
        return False

    def has_add_permission(self, request):
        """Grants come from decisions."""
        return False


@admin.register(ExchangeLogEntry)
class ExchangeLogEntryAdmin(admin.ModelAdmin):
    """The exchange log, read-only."""

    list_display = ("seq", "at", "operation", "consumer_code", "provider_code", "resource_code", "result", "code")
    list_filter = ("result", "operation")

    def has_change_permission(self, request, obj=None):
        """The log is append-only."""
        return False

    def has_add_permission(self, request):
        """Only the gateway appends."""
        return False

    def has_delete_permission(self, request, obj=None):
        """The log is append-only."""
        return False


@admin.register(ExchangeCheckpoint)
class ExchangeCheckpointAdmin(ExchangeLogEntryAdmin):
    """Signed checkpoints, read-only."""

    list_display = ("seq", "hash", "created_at", "kid")
    list_filter = ()


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    """Change subscriptions, read-only (consumers manage them on the workbench or through the API)."""

    list_display = ("id", "resource", "consumer", "callback_url", "status", "consecutive_failures", "created_at")
    list_filter = ("status",)

    def has_change_permission(self, request, obj=None):
        """State changes go through the services (audited)."""
        return False

    def has_add_permission(self, request):
        """Subscriptions need a live grant, checked by the services."""
        return False


@admin.register(Delivery)
class DeliveryAdmin(SubscriptionAdmin):
    """Webhook deliveries, read-only."""

    list_display = ("uid", "subscription", "event_type", "state", "attempts", "last_status_code", "created_at")
    list_filter = ("state", "event_type")
