"""Admin pages of data quality: a read-only window; rules change through ``dgov.quality.services`` (audited)."""

from django.contrib import admin

from dgov.kernel.admin_base import ReadOnlyAdmin, ReadOnlyTabularInline
from dgov.quality.models import (
    QualityRule,
    QualityRun,
    RectificationEvent,
    RectificationOrder,
    RuleResult,
    ScoreSnapshot,
)


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


@admin.register(ScoreSnapshot)
class ScoreSnapshotAdmin(ReadOnlyAdmin):
    """Daily score snapshots of departments and registries (trends; written by runs and the backfill)."""

    list_display = ("scope", "key", "day", "score", "grade", "rules", "failed", "open_orders")
    list_filter = ("scope", "grade")
    search_fields = ("key",)
    date_hierarchy = "day"


class EventInline(ReadOnlyTabularInline):
    """An order's timeline."""

    model = RectificationEvent
    fields = ("at", "actor", "action", "note", "data")
    readonly_fields = fields


@admin.register(RectificationOrder)
class RectificationOrderAdmin(ReadOnlyAdmin):
    """Rectification work orders (整改工单); they change through ``dgov.quality.rectification`` (audited)."""

    list_display = ("code", "title", "registry", "department", "status", "failed_now", "due_on", "escalation_level")
    list_filter = ("status", "source", "dimension", "escalation_level")
    search_fields = ("code", "title", "finding_key")
    list_select_related = ("registry", "department")
    inlines = [EventInline]
