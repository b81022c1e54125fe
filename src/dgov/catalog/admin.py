"""Admin pages of the catalogue: a read-mostly window; entries change through ``dgov.catalog.services``."""

from django.contrib import admin

from dgov.catalog.models import InformationItem, InformationResource, ResourceClass, ResourceVersion, ReviewRecord
from dgov.kernel.admin_base import ReadOnlyAdmin, ReadOnlyTabularInline


@admin.register(ResourceClass)
class ResourceClassAdmin(ReadOnlyAdmin):
    """The classification tree."""

    list_display = ("code", "name", "level", "category", "organization", "is_active")
    list_filter = ("level", "category", "is_active")
    search_fields = ("code", "name")


class ItemInline(ReadOnlyTabularInline):
    """The items of an entry."""

    model = InformationItem
    fields = ("position", "code", "name", "data_type", "length", "registry", "registry_field", "sharing_type", "is_own")
    readonly_fields = fields


@admin.register(InformationResource)
class InformationResourceAdmin(ReadOnlyAdmin):
    """Entries with their status and version."""

    list_display = ("code", "name", "provider", "status", "version", "sharing_type", "open_type", "updated_at")
    list_filter = ("status", "sharing_type", "open_type", "format")
    search_fields = ("code", "name")
    list_select_related = ("provider",)
    inlines = [ItemInline]


@admin.register(ResourceVersion)
class ResourceVersionAdmin(ReadOnlyAdmin):
    """Published versions."""

    list_display = ("resource", "number", "published_by", "published_at")
    list_select_related = ("resource",)


@admin.register(ReviewRecord)
class ReviewRecordAdmin(ReadOnlyAdmin):
    """Workflow steps."""

    list_display = ("resource", "action", "actor", "actor_org", "at", "due_on")
    list_filter = ("action",)
    list_select_related = ("resource", "actor_org")
