"""Admin registrations of sharing and exchange (read-mostly: changes go through the services)."""

from django.contrib import admin

from dgov.exchange.models import (
    DataService,
    Delivery,
    ExchangeCheckpoint,
    ExchangeLogEntry,
    Grant,
    ShareRequest,
    Subscription,
)
from dgov.kernel.admin_base import ReadOnlyAdmin


class _ServiceManaged(admin.ModelAdmin):
    """Read-only here: rows are added and changed only through the exchange services, which audit every step."""

    def has_change_permission(self, request, obj=None):
        """Changes go through the services (audited)."""
        return False

    def has_add_permission(self, request):
        """Rows are created by the services, after their checks."""
        return False


@admin.register(ShareRequest)
class ShareRequestAdmin(_ServiceManaged):
    """Requests, read-only (filed by officials and decided on the workbench, audited)."""

    list_display = ("id", "resource", "consumer", "status", "due_on", "submitted_at")
    list_filter = ("status",)


@admin.register(Grant)
class GrantAdmin(_ServiceManaged):
    """Grants, read-only (they come from decisions; revocation goes through the services, audited)."""

    list_display = ("id", "resource", "consumer", "valid_from", "valid_until", "revoked_at")


@admin.register(ExchangeLogEntry)
class ExchangeLogEntryAdmin(ReadOnlyAdmin):  # never deleted: part of the exchange's history
    """The exchange log, read-only (append-only; only the gateway appends)."""

    list_display = ("seq", "at", "operation", "consumer_code", "provider_code", "resource_code", "result", "code")
    list_filter = ("result", "operation")


@admin.register(ExchangeCheckpoint)
class ExchangeCheckpointAdmin(ExchangeLogEntryAdmin):
    """Signed checkpoints, read-only."""

    list_display = ("seq", "hash", "created_at", "kid")
    list_filter = ()


@admin.register(Subscription)
class SubscriptionAdmin(_ServiceManaged):
    """Change subscriptions, read-only (consumers manage them on the workbench or through the API)."""

    list_display = ("id", "resource", "consumer", "callback_url", "status", "consecutive_failures", "created_at")
    list_filter = ("status",)


@admin.register(Delivery)
class DeliveryAdmin(SubscriptionAdmin):
    """Webhook deliveries, read-only."""

    list_display = ("uid", "subscription", "event_type", "state", "attempts", "last_status_code", "created_at")
    list_filter = ("state", "event_type")


@admin.register(DataService)
class DataServiceAdmin(ReadOnlyAdmin):  # never deleted: part of the exchange's history
    """Department data services, read-only (managed on the workbench or by ``dgov exchange service``, audited)."""

    list_display = ("id", "resource", "provider", "endpoint_url", "status", "timeout", "last_check_code", "updated_at")
    list_filter = ("status",)
    exclude = ("credential",)
