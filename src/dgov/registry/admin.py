"""Admin pages for the registry engine: registries, schema versions, records (masked), corrections, reads.

The admin is a read-mostly window: records, schemas and corrections change through
``dgov.registry.services`` (authority checks, history, audit), never by editing rows here. Record
values are shown masked; decrypted personal values never appear in the admin.
"""

import json

from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from dgov.kernel.admin_base import ReadOnlyAdmin
from dgov.registry.models import (
    AccessLog,
    CorrectionRequest,
    Delegation,
    DemoDataset,
    Record,
    Registry,
    RegistrySchema,
)


@admin.register(Registry)
class RegistryAdmin(ReadOnlyAdmin):
    """Registries (信息库) with their owner and current schema version."""

    list_display = (
        "code",
        "name",
        "library",
        "library_code",
        "owner",
        "identifier_field",
        "current_version",
        "is_active",
    )
    list_filter = ("library", "library_code", "is_active")
    search_fields = ("code", "name", "name_en")
    list_select_related = ("owner", "current_schema")

    @admin.display(description=_("现行版本"))
    def current_version(self, obj):
        """The version number of the current schema."""
        return obj.current_schema.version if obj.current_schema_id else ""


@admin.register(RegistrySchema)
class RegistrySchemaAdmin(ReadOnlyAdmin):
    """Schema versions (信息库版本), with the field definitions pretty-printed."""

    list_display = ("registry", "version", "status", "field_count", "created_by", "published_at")
    list_filter = ("status",)
    search_fields = ("registry__code", "registry__name")
    list_select_related = ("registry",)
    exclude = ("fields",)
    readonly_fields = ("fields_pretty",)

    @admin.display(description=_("字段数"))
    def field_count(self, obj):
        """How many fields the version defines."""
        return len(obj.fields or [])

    @admin.display(description=_("字段定义"))
    def fields_pretty(self, obj):
        """The field definitions as indented JSON."""
        text = json.dumps(obj.fields, ensure_ascii=False, indent=2)
        return format_html("<pre>{}</pre>", text)


@admin.register(Record)
class RecordAdmin(ReadOnlyAdmin):
    """Records (记录): public values and masked personal values; never decrypted in lists."""

    list_display = (
        "uid",
        "registry",
        "schema_version",
        "version",
        "division_code",
        "created_by_org",
        "updated_at",
        "is_deleted",
    )
    list_filter = ("registry",)
    search_fields = ("=uid", "=division_code")
    list_select_related = ("registry", "created_by_org")
    show_full_result_count = False  # registries hold millions of rows
    exclude = ("data", "sealed")
    readonly_fields = ("masked_values",)

    @admin.display(description=_("已删除"), boolean=True)
    def is_deleted(self, obj):
        """Whether the record is soft-deleted."""
        return obj.deleted_at is not None

    @admin.display(description=_("数据（脱敏）"))
    def masked_values(self, obj):
        """Every value of the record, personal ones masked."""
        from dgov.registry import services
        from dgov.registry.schema import mask_value

        values = services.record_values(obj) or {}
        fields = {f.name: f for f in services.registry_fields(obj.registry, obj.schema_version)}
        shown = {}
        for name, value in values.items():
            field = fields.get(name)
            shown[name] = mask_value(field, value) if field is not None and field.sensitivity == "personal" else value
        return format_html("<pre>{}</pre>", json.dumps(shown, ensure_ascii=False, indent=2, default=str))


@admin.register(CorrectionRequest)
class CorrectionRequestAdmin(ReadOnlyAdmin):
    """Correction requests (纠错申请); decided on the officials' pages by the field's authority."""

    list_display = ("record", "field", "status", "submitted_by_org", "submitted_at", "due_on", "decided_by_org")
    list_filter = ("status",)
    search_fields = ("=record__uid", "field")
    list_select_related = ("record", "submitted_by_org", "decided_by_org")
    exclude = ("proposed_value",)


@admin.register(Delegation)
class DelegationAdmin(ReadOnlyAdmin):
    """Write delegations (写入委托) granted by authorities."""

    list_display = ("registry", "field", "authority", "delegate", "valid_until", "revoked_at")
    list_select_related = ("registry", "delegate")


@admin.register(AccessLog)
class AccessLogAdmin(ReadOnlyAdmin):
    """Reads of records (查询记录), for 谁查了我的数据."""

    list_display = ("at", "registry", "record", "reader_org", "reader", "channel", "purpose")
    list_filter = ("channel", "registry")
    search_fields = ("=record__uid", "reader", "=subject_digest")
    list_select_related = ("registry", "record", "reader_org")
    show_full_result_count = False


@admin.register(DemoDataset)
class DemoDatasetAdmin(ReadOnlyAdmin):
    """Records of demo generation runs."""

    list_display = ("province_code", "seed", "persons", "enterprises", "officials", "seconds", "created_at")
