"""Admin pages for the outbox, worker heartbeats, in-app notifications and sent SMS / e-mail.

All of them are read-only records; the one action is re-queueing dead events, which goes
through :func:`dgov.kernel.services.events.requeue` (permission check and audit record).
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from dgov.kernel.masking import mask_phone
from dgov.kernel.models import Notification, OutboxDelivery, OutboxEvent, SentMessage, WorkerHeartbeat
from dgov.kernel.services import events


class ReadOnlyAdmin(admin.ModelAdmin):
    """A record that administrators inspect but never edit by hand."""

    def has_add_permission(self, request, obj=None):
        """Records are written by the platform only."""
        return False

    def has_change_permission(self, request, obj=None):
        """Viewing is allowed; editing is not."""
        return False


class OutboxDeliveryInline(admin.TabularInline):
    """Per-handler outcome of an event."""

    model = OutboxDelivery
    extra = 0
    can_delete = False
    fields = ("handler", "status", "attempts", "last_error", "delivered_at", "updated_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        """Deliveries are written by the worker only."""
        return False


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdmin):
    """Domain events: pending, delivered and dead ones, with a re-queue action for dead events."""

    list_display = (
        "id",
        "event_type",
        "aggregate",
        "aggregate_id",
        "status",
        "attempts",
        "next_attempt_at",
        "created_at",
    )
    list_filter = ("status", "event_type")
    search_fields = ("event_type", "aggregate_id", "request_id")
    date_hierarchy = "created_at"
    # The payload may hold sealed personal data; the sealed blob is shown as is, never decrypted here.
    readonly_fields = (
        "event_type",
        "aggregate",
        "aggregate_id",
        "payload",
        "status",
        "attempts",
        "next_attempt_at",
        "last_error",
        "locked_by",
        "locked_until",
        "request_id",
        "created_at",
        "delivered_at",
    )
    inlines = [OutboxDeliveryInline]
    actions = ["requeue_dead"]

    def has_delete_permission(self, request, obj=None):
        """Events are evidence of what happened; they are pruned by a task, not by hand."""
        return False

    @admin.action(description=_("重新投递所选的失败事件"), permissions=["requeue"])
    def requeue_dead(self, request, queryset):
        """Re-queue the selected dead events through the audited service."""
        done = 0
        for event in queryset.filter(status=OutboxEvent.Status.DEAD):
            try:
                events.requeue(event, actor=request.user)
            except PermissionDenied:
                self.message_user(request, _("没有重新投递事件的权限。"), messages.ERROR)
                return
            done += 1
        self.message_user(
            request,
            ngettext("已重新投递 %(count)d 个事件。", "已重新投递 %(count)d 个事件。", done)
            % {"count": done},
            messages.SUCCESS,
        )

    def has_requeue_permission(self, request):
        """Re-queueing needs the change permission on outbox events."""
        return request.user.has_perm("kernel.change_outboxevent")


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyAdmin):
    """Background worker processes and when they were last seen."""

    list_display = (
        "worker_id",
        "hostname",
        "pid",
        "started_at",
        "last_seen",
        "stopped_at",
        "events_delivered",
        "events_failed",
        "tasks_run",
    )
    list_filter = ("hostname",)


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    """In-app messages sent to users."""

    list_display = ("title", "user", "template", "created_at", "read_at")
    list_filter = ("template",)
    search_fields = ("title", "user__username")
    raw_id_fields = ("user",)
    list_select_related = ("user",)


@admin.register(SentMessage)
class SentMessageAdmin(ReadOnlyAdmin):
    """SMS and e-mail handed to a gateway; recipients are shown masked."""

    list_display = (
        "created_at",
        "channel",
        "masked_to",
        "template_code",
        "subject",
        "segments",
        "status",
        "error_code",
        "provider_id",
    )
    list_filter = ("channel", "status", "template_code")
    search_fields = ("provider_id",)
    exclude = ("to", "to_index")
    readonly_fields = ("masked_to",)

    @admin.display(description=_("接收方"))
    def masked_to(self, obj):
        """The recipient with the middle hidden."""
        if obj.channel == SentMessage.Channel.SMS:
            return mask_phone(obj.to)
        local, _at, domain = (obj.to or "").partition("@")
        return f"{local[:1]}***@{domain}" if domain else "***"
