"""Admin pages for divisions (read-only reference data), organizations and working-day overrides.

Changes go through the services (validation, transaction, audit record): the admin is a thin
adapter. Divisions come from GB/T 2260 via ``dgov divisions load`` and are not edited by hand;
organizations are deactivated, never deleted; deleting a calendar override restores the
built-in ruling for that date.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from dgov.kernel.admin_base import ReadOnlyAdmin
from dgov.kernel.models import CalendarDay, Division, Organization
from dgov.kernel.services import calendar, organizations


@admin.register(Division)
class DivisionAdmin(ReadOnlyAdmin):
    """GB/T 2260 divisions and the demo province's townships and villages, for lookup."""

    list_display = ("code", "name", "full_name", "level", "placeholder", "synthetic", "is_current")
    list_filter = ("level", "synthetic", "placeholder", "is_current")
    search_fields = ("code", "name", "full_name")
    list_select_related = ("parent",)
    show_full_result_count = False  # counting 10k+ rows on every page view is wasted work
    # Read-only (ReadOnlyAdmin): divisions are loaded from the standard (``dgov divisions load``),
    # and records refer to them, so abolished ones are marked, not deleted.


class OrganizationForm(forms.ModelForm):
    """The organization form, checked with the same rules as the services."""

    class Meta:
        model = Organization
        fields = (*organizations.EDITABLE_FIELDS,)

    def _post_clean(self):
        """After the model's own checks, apply the service rules and show their messages on the fields."""
        super()._post_clean()
        if self.errors:
            return
        try:
            organizations.check_organization(self.instance)
        except ValidationError as exc:
            self._update_errors(exc)


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    """Government departments: created and changed through the audited services, deactivated by action."""

    form = OrganizationForm
    list_display = ("name", "code", "uscc", "level", "division", "parent", "kind", "is_vertical", "is_active")
    list_filter = ("level", "is_active", "is_vertical", "kind")
    search_fields = ("name", "short_name", "code", "uscc", "division__code", "division__full_name")
    autocomplete_fields = ("parent",)
    raw_id_fields = ("division",)
    list_select_related = ("division", "parent")
    readonly_fields = ("is_active", "created_at", "updated_at")
    actions = ("deactivate_selected", "reactivate_selected")

    def has_delete_permission(self, request, obj=None):
        """Departments are deactivated, never deleted (officials and records refer to them)."""
        return False

    def save_model(self, request, obj, form, change):
        """Create or update through the services, so the change is validated and audited."""
        if change:
            changes = {
                name: form.cleaned_data[name]
                for name in form.changed_data
                if name in organizations.EDITABLE_FIELDS
            }
            if changes:
                organizations.update_organization(obj, actor=request.user, **changes)
            return
        data = form.cleaned_data
        created = organizations.create_organization(
            data["name"],
            data["code"],
            data["uscc"],
            data["division"],
            actor=request.user,
            level=data["level"],
            parent=data.get("parent"),
            short_name=data.get("short_name", ""),
            kind=data.get("kind", ""),
            is_vertical=data.get("is_vertical", False),
            duties=data.get("duties", ""),
        )
        obj.pk = created.pk

    def _apply(self, request, queryset, operation, done_message):
        """Run a service operation per selected row and report successes and refusals."""
        done = 0
        for org in queryset:
            try:
                operation(org, actor=request.user)
                done += 1
            except ValidationError as exc:
                self.message_user(request, f"{org.name}：{'；'.join(exc.messages)}", messages.ERROR)
        if done:
            self.message_user(request, done_message(done), messages.SUCCESS)

    @admin.action(description=_("停用所选部门"), permissions=["change"])
    def deactivate_selected(self, request, queryset):
        """Deactivate the selected departments (children first is up to the administrator)."""
        self._apply(
            request,
            queryset.filter(is_active=True),
            organizations.deactivate_organization,
            lambda n: ngettext("已停用 %(n)d 个部门", "已停用 %(n)d 个部门", n) % {"n": n},
        )

    @admin.action(description=_("恢复所选部门"), permissions=["change"])
    def reactivate_selected(self, request, queryset):
        """Reactivate the selected departments."""
        self._apply(
            request,
            queryset.filter(is_active=False),
            organizations.reactivate_organization,
            lambda n: ngettext("已恢复 %(n)d 个部门", "已恢复 %(n)d 个部门", n) % {"n": n},
        )


@admin.register(CalendarDay)
class CalendarDayAdmin(admin.ModelAdmin):
    """Overrides of the working-day calendar; saving and deleting go through the audited services."""

    list_display = ("date", "is_workday", "name", "source", "updated_by", "updated_at")
    list_filter = ("is_workday",)
    search_fields = ("name", "source")
    date_hierarchy = "date"
    fields = ("date", "is_workday", "name", "source")

    def save_model(self, request, obj, form, change):
        """Set the override through the service (audit record, cache refresh)."""
        if change and "date" in form.changed_data:
            calendar.clear_calendar_day(form.initial["date"], actor=request.user)
        saved = calendar.set_calendar_day(
            obj.date, obj.is_workday, obj.name, actor=request.user, source=obj.source
        )
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        """Remove the override through the service."""
        calendar.clear_calendar_day(obj.date, actor=request.user)

    def delete_queryset(self, request, queryset):
        """Remove each selected override through the service."""
        for row in queryset:
            calendar.clear_calendar_day(row.date, actor=request.user)
