"""Admin pages of data quality: a read-only window; rules change through ``dgov.quality.services`` (audited)."""

from django.contrib import admin

from dgov.kernel.admin_base import ReadOnlyAdmin, ReadOnlyTabularInline
from dgov.quality.models import QualityRule, QualityRun, RuleResult


@admin.register(QualityRule)
class QualityRuleAdmin(ReadOnlyAdmin):
    """Rules as data."""

    list_display = ("code", "name", "registry", "rule_type", "dimension", "weight", "owner", "enabled")
    list_filter = ("dimension", "rule_type", "enabled", "severity")
    search_fields = ("code", "name")
    list_select_related = ("registry", "owner")


class ResultInline(ReadOnlyTabularInline):
    """A run's per-rule results."""

    model = RuleResult
    fields = ("rule_code", "dimension", "weight", "owner", "checked", "failed", "pass_rate")
    readonly_fields = fields


@admin.register(QualityRun)
class QualityRunAdmin(ReadOnlyAdmin):
    """Runs with their status and scores."""

    list_display = ("id", "registry", "status", "requested_by", "finished_at", "rows", "score", "grade")
    list_filter = ("status",)
    list_select_related = ("registry",)
    inlines = [ResultInline]
