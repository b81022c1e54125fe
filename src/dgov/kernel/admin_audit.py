"""Admin pages for the audit chain: records and signed checkpoints, viewable but never editable.

Nothing here writes: no add, change or delete permission, no bulk actions. Integrity is checked
with ``dgov audit verify``, not in the browser, because it reads the whole log.
"""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from dgov.kernel.models import AuditCheckpoint, AuditRecord


class AuditReadOnlyAdmin(admin.ModelAdmin):
    """Shared rules: administrators with view permission can read, nobody can change."""

    actions = None

    def has_add_permission(self, request, obj=None):
        """Audit rows are written by the audit service only."""
        return False

    def has_change_permission(self, request, obj=None):
        """Audit rows are never edited."""
        return False

    def has_delete_permission(self, request, obj=None):
        """Audit rows are never deleted."""
        return False


@admin.register(AuditRecord)
class AuditRecordAdmin(AuditReadOnlyAdmin):
    """Search and read audit records."""

    list_display = (
        "seq", "occurred_at", "actor_label", "action", "target_type", "target_label", "outcome", "ip",
    )
    list_filter = ("outcome", "actor_kind", "target_type")
    search_fields = (
        "action", "actor_label", "=actor_id", "=target_id", "target_label", "=request_id", "=ip", "=hash",
    )
    date_hierarchy = "occurred_at"
    show_full_result_count = False  # COUNT(*) over millions of rows on every page is not worth it
    list_per_page = 50
    fieldsets = (
        (None, {"fields": ("seq", "occurred_at", "action", "outcome")}),
        (_("操作者"), {"fields": ("actor_kind", "actor_id", "actor_label")}),
        (_("对象"), {"fields": ("target_type", "target_id", "target_label", "detail_json")}),
        (_("来源"), {"fields": ("ip", "request_id", "user_agent")}),
        (_("哈希链"), {"fields": ("prev_hash", "hash")}),
    )


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(AuditReadOnlyAdmin):
    """Read the signed checkpoints of the audit chain."""

    list_display = ("seq", "created_at", "kid", "hash")
    search_fields = ("=hash", "=kid")
    date_hierarchy = "created_at"
