"""Read-only admin bases shared by the apps whose rows change only through their services.

The admin is a window, not a way in: rows are written by the services (validation, authority
checks, history, audit), so these bases take away add, change and delete.
"""

from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """An admin that lists and shows rows but never adds, changes or deletes them."""

    def has_add_permission(self, request):
        """Rows are written by the services, not typed in."""
        return False

    def has_change_permission(self, request, obj=None):
        """Read-only: changes go through the services (they check and audit them)."""
        return False

    def has_delete_permission(self, request, obj=None):
        """History and logs are kept."""
        return False


class ReadOnlyTabularInline(admin.TabularInline):
    """An inline that shows a parent's rows without offering to add or delete them.

    Subclasses set ``model`` and ``fields`` and repeat ``fields`` as ``readonly_fields``.
    """

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        """Read-only."""
        return False
