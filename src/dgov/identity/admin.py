"""Admin pages for accounts."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from dgov.identity.models import User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    """Accounts with their kind and department."""

    list_display = ("username", "display_name", "kind", "department", "is_active")
    list_filter = ("kind", "is_active", "is_staff")
    search_fields = ("username", "display_name")
    fieldsets = (*BaseUserAdmin.fieldsets, ("dgov", {"fields": ("kind", "display_name", "department")}))
