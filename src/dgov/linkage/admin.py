"""Admin pages of entity resolution: a read-only window on runs (golden records stay on the audited pages)."""

from django.contrib import admin

from dgov.kernel.admin_base import ReadOnlyAdmin
from dgov.linkage.models import LinkageRun


@admin.register(LinkageRun)
class LinkageRunAdmin(ReadOnlyAdmin):
    """Runs with their status and figures; golden records are not shown here (their views are audited)."""

    list_display = ("id", "name", "mode", "entity", "status", "requested_by", "requested_at", "finished_at")
    list_filter = ("status", "mode", "entity")
    search_fields = ("name",)
