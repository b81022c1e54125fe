"""Admin pages of data quality: a read-only window; rules change through ``dgov.quality.services`` (audited)."""

from django.contrib import admin

from dgov.quality.models import QualityRule, QualityRun, RuleResult


class ReadOnlyAdmin(admin.ModelAdmin):
    """Lists and shows rows; changes go through the services (validation, audit)."""

    def has_add_permission(self, request):
        """Rows are written by the services."""
        return False

    def has_change_permission(self, request, obj=None):
        """Read-only."""
        return False

    def has_delete_permission(self, request, obj=None):
        """History is kept."""
        return False


@admin.register(QualityRule)
class QualityRuleAdmin(ReadOnlyAdmin):
    """Rules as data."""

    list_display = ("code", "name", "registry", "rule_type", "dimension", "weight", "owner", "enabled")
    list_filter = ("dimension", "rule_type", "enabled", "severity")
    search_fields = ("code", "name")
    list_select_related = ("registry", "owner")


class ResultInline(admin.TabularInline):
    """A run's per-rule results."""

    model = RuleResult
    extra = 0
    fields = ("rule_code", "dimension", "weight", "owner", "checked", "failed", "pass_rate")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        """Read-only."""
        return False


@admin.register(QualityRun)
class QualityRunAdmin(ReadOnlyAdmin):
    """Runs with their status and scores."""

    list_display = ("id", "registry", "status", "requested_by", "finished_at", "rows", "score", "grade")
    list_filter = ("status",)
    list_select_related = ("registry",)
    inlines = [ResultInline]
