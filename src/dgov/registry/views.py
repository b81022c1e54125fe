"""Officials' registry pages (信息库): registries, browse/search, record, corrections (纠错), schemas.

Thin views: parse the request, authorize, call ``dgov.registry.services``, render. Authorization
comes from the services: ``reader_scope``/``check_read`` (a department that may read the registry
sees the records of its own division subtree; provincial departments, data administrators and
platform administrators see all), ``writable_fields``/``can_write`` for what an official may edit or
decide, and the write services refuse anything else themselves. Personal values are masked before
they reach a template and exact lookups by ID number travel by POST, never in a URL; the record page
reads through ``services.read_record`` so that every view of a record is in the access log.
"""

from __future__ import annotations

import datetime
import json
import math

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Case, IntegerField, Q, Value, When
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from dgov.kernel.models import Organization
from dgov.kernel.services.divisions import scope_prefix
from dgov.registry import services
from dgov.registry.forms import (
    SENSITIVITY_LABELS,
    TYPE_LABELS,
    VALUE_PREFIX,
    AsOfForm,
    CorrectionDecisionForm,
    CorrectionForm,
    RecordEditForm,
    RecordLookupForm,
    RegistrySearchForm,
    SchemaFieldForm,
    choice_pairs,
    field_label,
)
from dgov.registry.models import CorrectionRequest, Record, RecordChange, Registry
from dgov.registry.schema import RecordValidationError, SchemaError, authority_rule_field, mask_value
from dgov.web import navigation

PAGE_SIZE = 20
RESULT_COLUMNS = 6  # identifier + five more: enough to recognize a record without a wide table
PENDING_LIMIT = 200
DECIDED_LIMIT = 20
DISPLAY_LIMIT = 120  # characters of a structured value shown in a cell
HISTORY_KINDS = {
    "create": _("创建"),
    **dict(RecordChange.Kind.choices),
}


# --- Authorization helpers ------------------------------------------------------------------------


def _official(request):
    """``(user, department)`` for an official or administrator; PermissionDenied for anyone else."""
    user = request.user
    if not navigation.officials_only(user):
        raise PermissionDenied(gettext("信息库页面仅向工作人员和系统管理员开放。"))
    return user, services.department_of(user)


def may_manage_schemas(user, department, registry: Registry | None = None) -> bool:
    """Who sees the schema pages: administrators, staff, data administrators (DSJ) and the owner department.

    Publishing is decided again by ``services.publish_schema_version``.
    """
    if services.is_admin(user) or getattr(user, "is_staff", False):
        return True
    if department is None:
        return False
    return department.kind == services.DATA_ADMIN_KIND or (registry is not None and department.pk == registry.owner_id)


def may_publish_schemas(user, department, registry: Registry) -> bool:
    """Who may publish a new version: exactly whom ``services.publish_schema_version`` lets."""
    return services.may_administer(user, registry)


def _registry(code: str) -> Registry:
    """The registry with this code, or 404."""
    try:
        return services.get_registry(code)
    except services.RegistryNotFound:
        raise Http404(gettext("信息库不存在。")) from None


def _readable_registry(code: str, user) -> tuple[Registry, str]:
    """The registry and the division prefix the user's reads are limited to ("" = all); 404 or 403."""
    registry = _registry(code)
    prefix = services.reader_scope(registry, user)
    if prefix is None:
        raise PermissionDenied(gettext("本部门无权查看“%(name)s”。") % {"name": registry.name})
    return registry, prefix


def _live_record(registry: Registry, uid) -> Record:
    """A live (not deleted) record of the registry, or 404."""
    record = (
        Record.objects.select_related("registry", "created_by_org")
        .filter(registry=registry, uid=uid, deleted_at__isnull=True)
        .first()
    )
    if record is None:
        raise Http404(gettext("记录不存在。"))
    return record


def _readable_record(registry: Registry, uid, user) -> Record:
    """A live record the user may read (division scope included); 404 or 403."""
    record = _live_record(registry, uid)
    services.check_read(registry, actor=user, division_code=record.division_code)
    return record


def _own_division_fields(registry: Registry, department) -> list[str]:
    """Fields the department is the authority (or delegate) for, within its own division."""
    if department is None:
        return []
    return services.writable_fields(registry, department, division_code=department.division.code)


# --- Presentation helpers -------------------------------------------------------------------------


def _wants_partial(request) -> bool:
    """True for an htmx request that replaces part of the page (not a history restore)."""
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-History-Restore-Request") != "true"


def _render(request, template: str, partial: str, context: dict, status: int = 200):
    """Render a page, or only its fragment for htmx; caches keep the two apart."""
    response = render(request, partial if _wants_partial(request) else template, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _mask(field, value):
    """A value safe to show: personal values masked, everything else as stored."""
    if value is None or value == "":
        return value
    if field is not None and field.sensitivity == "personal":
        return mask_value(field, value)
    return value


def _show(field, value) -> str:
    """A (masked) value as display text: 是/否, enum labels, compact JSON for structures."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return gettext("是") if value else gettext("否")
    if isinstance(value, (dict, list)):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        return text if len(text) <= DISPLAY_LIMIT else text[: DISPLAY_LIMIT - 1] + "…"
    if field is not None and field.type == "enum":
        return field.choice_label(value)
    return str(value)


def _shown(field, value) -> str:
    """Mask, then format for display."""
    return _show(field, _mask(field, value))


def _decode(blob: str):
    """A JSON-encoded stored value (observations, correction proposals)."""
    try:
        return json.loads(blob)
    except (TypeError, ValueError):
        return blob


def _authority_labels(authorities) -> dict[str, str]:
    """Display names for field authorities ("GA", "MZ|WJ", a department code), keyed by the raw value.

    A department kind is named by its highest-level department (省公安厅 for GA), a code by its department.
    """
    raws = {a for a in authorities if a}
    tokens = {t.strip() for a in raws for t in a.split("|") if t.strip()}
    names: dict[str, str] = {}
    for org in Organization.objects.filter(Q(code__in=tokens) | Q(kind__in=tokens)).order_by("level", "code"):
        if org.code in tokens:
            names[org.code] = org.name
        if org.kind in tokens and org.kind not in names:
            names[org.kind] = org.short_name or org.name
    labels = {}
    for raw in raws:
        parts = [t.strip() for t in raw.split("|") if t.strip()]
        labels[raw] = "、".join(f"{names[t]}（{t}）" if t in names and names[t] != t else t for t in parts)
    return labels


def _page_links(request, page: int, pages: int) -> dict:
    """Query strings of the previous and next result pages (other parameters kept)."""

    def link(number: int) -> str:
        params = request.GET.copy()
        params["page"] = str(number)
        return "?" + params.urlencode()

    return {
        "page": page,
        "pages": pages,
        "prev_url": link(page - 1) if page > 1 else "",
        "next_url": link(page + 1) if page < pages else "",
    }


def _end_of_day(day: datetime.date) -> datetime.datetime:
    """The last instant of a local calendar day (records "as of" a date include that whole day)."""
    start = datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time.min)
    return timezone.make_aware(start, timezone.get_current_timezone()) - datetime.timedelta(microseconds=1)


def _safe_next(request, default: str) -> str:
    """The ``next`` parameter when it points into this site, else ``default``."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return default


# --- Registry list --------------------------------------------------------------------------------


@login_required
def registry_list(request):
    """The registries the official may read, with record counts (in scope), owner and schema version."""
    user, department = _official(request)
    rows = []
    for registry in Registry.objects.filter(is_active=True).select_related("owner", "current_schema"):
        prefix = services.reader_scope(registry, user)
        manage = may_manage_schemas(user, department, registry)
        if prefix is None and not manage:
            continue
        count = None
        if prefix is not None:
            live = Record.objects.filter(registry=registry, deleted_at__isnull=True)
            count = (live.filter(division_code__startswith=prefix) if prefix else live).count()
        rows.append(
            {
                "registry": registry,
                "readable": prefix is not None,
                "manage": manage,
                "count": count,
                "version": registry.current_schema.version if registry.current_schema_id else None,
            }
        )
    return render(request, "registry/registry_list.html", {"rows": rows, "department": department})


# --- Browse / search ------------------------------------------------------------------------------


def _lookup_fields(registry, fields):
    """Fields with an exact-lookup key: the identifier, unique and lookup fields."""
    return [f for f in fields if f.name == registry.identifier_field or f.lookup or f.unique]


def _columns(registry, fields):
    """The result table's columns: the identifier first, then short fields in schema order."""
    long_types = ("text", "geojson", "json")
    first = [f for f in fields if f.name == registry.identifier_field]
    rest = [f for f in fields if f.name != registry.identifier_field and f.type not in long_types]
    return (first + rest)[:RESULT_COLUMNS]


def _result_rows(records, columns) -> list[dict]:
    """Result table rows: masked values only (opening a record is the read the access log records)."""
    rows = []
    for found in records:
        values = services.record_values_now(found)
        rows.append({"record": found, "cells": [_shown(f, values.get(f.name)) for f in columns]})
    return rows


@login_required
def browse(request, code):
    """Search a registry (GET: free text, division, filters) or look a record up by an identifier (POST).

    Exact lookups travel by POST so that ID numbers stay out of URLs, browser history and server logs;
    htmx replaces only the results in both cases.
    """
    user, _department = _official(request)
    registry, prefix = _readable_registry(code, user)
    fields = services.registry_fields(registry)
    lookup_fields = _lookup_fields(registry, fields)
    columns = _columns(registry, fields)
    posted = request.method == "POST"
    scope_field = next((f for f in fields if f.name == registry.scope_field), None)
    form = RegistrySearchForm(None if posted else (request.GET or None), fields=fields, scope_field=scope_field)
    lookup = RecordLookupForm(request.POST if posted else None, lookup_fields=lookup_fields)
    context = {
        "registry": registry,
        "form": form,
        "lookup": lookup if lookup_fields else None,
        "column_labels": [field_label(f) for f in columns],
        "rows": [],
        "total": 0,
        "searched": False,
        "page": 1,
        "pages": 1,
    }
    if posted:
        if not lookup.is_valid():
            context.update({"invalid": True, "invalid_form": lookup})
            return _render(request, "registry/browse.html", "registry/_results.html", context, status=400)
        found = services.find_record(registry, lookup.cleaned_data["lookup_field"], lookup.cleaned_data["lookup_value"])
        visible = found is not None and (not prefix or found.division_code.startswith(prefix))
        records = [found] if visible else []
        context.update(
            {"searched": True, "looked_up": True, "rows": _result_rows(records, columns), "total": len(records)}
        )
        return _render(request, "registry/browse.html", "registry/_results.html", context)
    if form.is_bound and not form.is_valid():
        context.update({"invalid": True, "invalid_form": form})
        return _render(request, "registry/browse.html", "registry/_results.html", context, status=400)
    data = form.cleaned_data if form.is_bound else {}
    page = data.get("page") or 1
    division = prefix
    chosen = data.get("division") or ""
    if chosen:
        if not chosen.startswith(prefix):
            form.add_error("division", gettext("该区划不在本部门的管辖范围内"))
            context.update({"invalid": True, "invalid_form": form})
            return _render(request, "registry/browse.html", "registry/_results.html", context, status=400)
        division = chosen
    filters = form.filters() if form.is_bound else {}
    try:
        records, total = services.search_records(
            registry,
            filters=filters,
            query=data.get("q") or "",
            offset=(page - 1) * PAGE_SIZE,
            limit=PAGE_SIZE,
            division_code=division,
        )
    except ValidationError as exc:
        context.update({"invalid": True, "invalid_form": form, "search_errors": exc.messages})
        return _render(request, "registry/browse.html", "registry/_results.html", context, status=400)
    context.update(
        {
            "searched": bool(data.get("q") or filters or chosen),
            "rows": _result_rows(records, columns),
            "total": total,
            **_page_links(request, page, max(1, math.ceil(total / PAGE_SIZE))),
        }
    )
    return _render(request, "registry/browse.html", "registry/_results.html", context)


# --- Record page ----------------------------------------------------------------------------------


def _field_sources(entries, as_of=None) -> dict:
    """For each field, the history entry (source department, time) that last wrote it."""
    sources = {}
    for entry in entries:  # oldest first
        if as_of is not None and entry["at"] > as_of:
            break
        for name in entry.get("changes") or {}:
            sources[name] = entry
    return sources


def _history_rows(entries, by_name) -> list[dict]:
    """History entries (already masked by the services), newest first, fields in schema order."""
    order = {name: position for position, name in enumerate(by_name)}
    rows = []
    for entry in reversed(entries):
        changes = []
        pairs = entry.get("changes") or {}
        for name in sorted(pairs, key=lambda n: order.get(n, len(order))):
            old, new = pairs[name]
            field = by_name.get(name)
            changes.append(
                {"label": field_label(field) if field else name, "old": _show(field, old), "new": _show(field, new)}
            )
        kind = entry.get("kind", "")
        rows.append({**entry, "kind_label": HISTORY_KINDS.get(kind, kind), "changes": changes})
    return rows


def _record_context(request, registry, record, department, *, as_of=None, edit_form=None):
    """Everything the record page shows; reads the record through the access-logged service."""
    user = request.user
    fields = services.registry_fields(registry)
    by_name = {f.name: f for f in fields}
    try:
        read = services.read_record(record, actor=user, purpose="workbench", as_of=as_of)
    except services.RecordNotFound:
        read = None  # the record did not exist yet at that date
    values = read["values"] if read else None
    entries = services.history(record)
    sources = _field_sources(entries, as_of)
    # Conditional authority (e.g. an event's kind decides its source) is judged on the current values.
    current = services.record_values_now(record) if authority_rule_field(fields) is not None else None
    writable = set(services.writable_fields(registry, department, record=record, values=current))
    narrowed = {f.name: services.field_authority(registry, f, current) for f in fields} if current else {}
    labels = _authority_labels([f.authority for f in fields] + [tokens for tokens, _c in narrowed.values()])
    rows = []
    for f in fields:
        tokens, condition = narrowed.get(f.name, ("", ""))
        if condition:
            authority = labels.get(tokens) or "—"
        else:
            authority = labels.get(f.authority, f.authority) or registry.owner.name
        rows.append(
            {
                "field": f,
                "label": field_label(f),
                "value": _show(f, (values or {}).get(f.name)),
                "type_label": TYPE_LABELS.get(f.type, f.type),
                "sensitivity_label": SENSITIVITY_LABELS.get(f.sensitivity, f.sensitivity),
                "authority": authority,
                "authority_condition": condition,
                "source": sources.get(f.name),
                "writable": f.name in writable,
            }
        )
    if edit_form is None and as_of is None and values is not None and writable:
        current = {n: v for n, v in values.items() if n in by_name and not by_name[n].is_personal}
        edit_form = RecordEditForm(
            fields=[f for f in fields if f.name in writable],
            current=current,
            masked=values,
            initial={"expected_version": record.version},
        )
    observations = [
        {
            "obs": o,
            "label": field_label(by_name[o.field]) if o.field in by_name else o.field,
            "value": _shown(by_name.get(o.field), _decode(o.value)),
        }
        for o in record.observations.select_related("source").order_by("-observed_at")
    ]
    corrections = [
        {
            "req": c,
            "label": field_label(by_name[c.field]) if c.field in by_name else c.field,
            "value": _shown(by_name.get(c.field), _decode(c.proposed_value)),
            "can_decide": c.status == CorrectionRequest.Status.PENDING and c.field in writable,
        }
        for c in record.corrections.select_related("submitted_by_org", "decided_by_org").order_by("-submitted_at")
    ]
    identifier = by_name.get(registry.identifier_field)
    return {
        "registry": registry,
        "record": record,
        "exists": values is not None,
        "identifier": _show(identifier, (values or {}).get(registry.identifier_field)) if identifier else "",
        "rows": rows,
        "history": _history_rows(entries, by_name),
        "observations": observations,
        "corrections": corrections,
        "as_of": as_of,
        "as_of_form": AsOfForm(initial={"as_of": timezone.localdate(as_of) if as_of else None}),
        "edit_form": edit_form,
    }


@login_required
def record(request, code, uid):
    """A record: values with their authority and source, history, observations, corrections; "as of" a date."""
    user, department = _official(request)
    registry, _prefix = _readable_registry(code, user)
    rec = _live_record(registry, uid)  # read_record checks the division scope and audits a refusal
    as_of_form = AsOfForm(request.GET or None)
    as_of = None
    if as_of_form.is_bound and as_of_form.is_valid() and as_of_form.cleaned_data.get("as_of"):
        as_of = _end_of_day(as_of_form.cleaned_data["as_of"])
    context = _record_context(request, registry, rec, department, as_of=as_of)
    return _render(request, "registry/record.html", "registry/_record_values.html", context)


@login_required
@require_POST
def edit_record(request, code, uid):
    """Write the fields the department is authoritative for; any other field is refused by the services."""
    user, department = _official(request)
    registry, _prefix = _readable_registry(code, user)
    rec = _readable_record(registry, uid, user)
    fields = services.registry_fields(registry)
    current = services.record_values_now(rec)
    writable_names = set(services.writable_fields(registry, department, record=rec, values=current))
    writable = [f for f in fields if f.name in writable_names]
    # Values posted for fields the department may not write (a crafted form) go to the services
    # unchanged, so the refusal and its audit record come from the one place that decides authority.
    foreign = {
        f.name: request.POST.get(VALUE_PREFIX + f.name)
        for f in fields
        if f.name not in writable_names and VALUE_PREFIX + f.name in request.POST
    }
    by_name = {f.name: f for f in fields}
    plain = {n: v for n, v in current.items() if n in by_name and not by_name[n].is_personal}
    form = RecordEditForm(request.POST, fields=writable, current=plain, masked={})
    valid = form.is_valid()
    if not valid and not foreign:
        return _record_error(request, registry, rec, department, form)
    changes = {**(form.changes() if valid else {}), **foreign}
    if not changes:
        messages.info(request, gettext("没有需要保存的修改。"))
        return redirect("registry:record", code=registry.code, uid=rec.uid)
    try:
        services.update_record(
            rec,
            changes,
            actor=user,
            reason=form.cleaned_data.get("reason", "") if valid else "",
            expected_version=form.cleaned_data.get("expected_version") if valid else None,
            non_authoritative="refuse",
        )
    except services.NotAuthoritative as exc:
        raise PermissionDenied(str(exc)) from exc
    except services.VersionConflict:
        form.add_error(None, gettext("记录已被他人修改，请刷新页面后重新修改。"))
        return _record_error(request, registry, rec, department, form, status=409)
    except RecordValidationError as exc:
        _add_record_errors(form, exc)
        return _record_error(request, registry, rec, department, form)
    messages.success(request, gettext("记录已更新。"))
    return redirect("registry:record", code=registry.code, uid=rec.uid)


def _add_record_errors(form, exc) -> None:
    """Put the services' per-field validation messages onto the form's inputs."""
    for name, field_messages in (getattr(exc, "errors", None) or {"__all__": exc.messages}).items():
        key = VALUE_PREFIX + name
        form.add_error(key if key in form.fields else None, list(field_messages))


def _record_error(request, registry, rec, department, form, status: int = 400):
    """The record page again, with the edit form's errors."""
    context = _record_context(request, registry, rec, department, edit_form=form)
    return render(request, "registry/record.html", context, status=status)


# --- Corrections (纠错) ---------------------------------------------------------------------------


@login_required
def correct_record(request, code, uid):
    """Propose a correction of a field the department is not authoritative for."""
    user, department = _official(request)
    registry, _prefix = _readable_registry(code, user)
    rec = _readable_record(registry, uid, user)
    by_name = {f.name: f for f in services.registry_fields(registry)}
    field = by_name.get(request.POST.get("field") or request.GET.get("field") or "")
    if field is None:
        raise Http404(gettext("字段不存在。"))
    record_url = reverse("registry:record", kwargs={"code": registry.code, "uid": rec.uid})
    if services.can_write(registry, field.name, department, record=rec):
        messages.info(request, gettext("本部门是该字段的权威来源，可直接修改。"))
        return redirect(record_url)
    form = CorrectionForm(request.POST or None, field=field)
    if request.method == "POST" and form.is_valid():
        try:
            correction = services.submit_correction(
                rec, field.name, form.cleaned_data["value"], actor=user, reason=form.cleaned_data["reason"]
            )
        except RecordValidationError as exc:
            form.add_error("value", [m for msgs in exc.errors.values() for m in msgs])
        except ValidationError as exc:
            form.add_error(None, exc.messages)
        else:
            messages.success(
                request,
                gettext("纠错申请已提交，权威来源部门将于 %(due)s 前处理。")
                % {"due": correction.due_on.isoformat() if correction.due_on else "—"},
            )
            return redirect(record_url)
    ruled = authority_rule_field(by_name.values()) is not None
    tokens, condition = services.field_authority(registry, field, services.record_values_now(rec) if ruled else None)
    if condition:
        authority = gettext("%(authority)s（%(condition)s的记录）") % {
            "authority": _authority_labels([tokens]).get(tokens) or "—",
            "condition": condition,
        }
    else:
        authority = _authority_labels([field.authority]).get(field.authority) or registry.owner.name
    context = {
        "registry": registry,
        "record": rec,
        "field": field,
        "label": field_label(field),
        "form": form,
        "record_url": record_url,
        "authority": authority,
    }
    status = 400 if form.is_bound and form.errors else 200
    return _render(request, "registry/correct.html", "registry/_correction_form.html", context, status=status)


def _inbox_query(department):
    """Correction requests of fields the department is authoritative for (by division checked per row)."""
    condition = Q(pk__in=[])
    for registry in Registry.objects.filter(is_active=True).select_related("owner"):
        names = _own_division_fields(registry, department)
        if names:
            condition |= Q(record__registry=registry, field__in=names)
    prefix = scope_prefix(department.division.code)
    return (
        CorrectionRequest.objects.filter(condition)
        .filter(Q(record__division_code="") | Q(record__division_code__startswith=prefix))
        .select_related("record__registry__owner", "submitted_by_org", "decided_by_org")
    )


def _inbox_rows(requests, department, today) -> list[dict]:
    """Correction requests ready to show: labels, masked proposed and current values, overdue flag."""
    rows = []
    for req in requests:
        registry = req.record.registry
        if not services.can_write(registry, req.field, department, record=req.record):
            continue
        field = {f.name: f for f in services.registry_fields(registry)}.get(req.field)
        pending = req.status == CorrectionRequest.Status.PENDING
        current = services.record_values_now(req.record).get(req.field) if pending else None
        rows.append(
            {
                "req": req,
                "registry": registry,
                "label": field_label(field) if field else req.field,
                "proposed": _shown(field, _decode(req.proposed_value)),
                "current": _shown(field, current),
                "overdue": pending and req.due_on is not None and req.due_on < today,
            }
        )
    return rows


@login_required
def corrections(request):
    """The correction inbox: requests for fields my department is authoritative for, pending first."""
    _user, department = _official(request)
    today = timezone.localdate()
    pending, decided = [], []
    if department is not None:
        inbox = _inbox_query(department)
        no_due_last = Case(When(due_on__isnull=True, then=Value(1)), default=Value(0), output_field=IntegerField())
        pending = _inbox_rows(
            inbox.filter(status=CorrectionRequest.Status.PENDING)
            .annotate(_no_due=no_due_last)
            .order_by("_no_due", "due_on", "submitted_at")[:PENDING_LIMIT],
            department,
            today,
        )
        decided = _inbox_rows(
            inbox.exclude(status=CorrectionRequest.Status.PENDING).order_by("-decided_at")[:DECIDED_LIMIT],
            department,
            today,
        )
    context = {
        "department": department,
        "pending": pending,
        "decided": decided,
        "overdue_count": sum(1 for row in pending if row["overdue"]),
    }
    return render(request, "registry/corrections.html", context)


@login_required
@require_POST
def decide_correction(request, pk):
    """Accept or reject a correction request of a field the department is authoritative for."""
    user, department = _official(request)
    req = get_object_or_404(CorrectionRequest.objects.select_related("record__registry"), pk=pk)
    registry, _prefix = _readable_registry(req.record.registry.code, user)
    services.check_read(registry, actor=user, division_code=req.record.division_code)
    if not services.can_write(registry, req.field, department, record=req.record):
        raise PermissionDenied(gettext("本部门不是该字段的权威来源，不能处理此纠错申请。"))
    target = _safe_next(request, reverse("registry:corrections"))
    form = CorrectionDecisionForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for message in errors:
                messages.error(request, message)
        return redirect(target)
    accept = form.cleaned_data["decision"] == "accept"
    try:
        services.decide_correction(req, accept=accept, actor=user, note=form.cleaned_data.get("note") or "")
    except services.NotAuthoritative as exc:
        raise PermissionDenied(str(exc)) from exc
    except ValidationError as exc:
        for text in exc.messages:
            messages.error(request, text)
        return redirect(target)
    messages.success(request, gettext("已采纳纠错，记录已更新。") if accept else gettext("已驳回纠错申请。"))
    return redirect(target)


# --- Schemas (administrators) ---------------------------------------------------------------------


def _authority_rule_rows(fields, labels: dict) -> dict | None:
    """The conditional authority rule of a schema version for display: the field and value → departments."""
    field = authority_rule_field(fields)
    if field is None:
        return None
    return {
        "field": field,
        "label": field_label(field),
        "rules": [
            {"value": value, "label": field.choice_label(value), "authority": labels.get(tokens, tokens)}
            for value, tokens in field.authority_by_value
        ],
    }


@login_required
def schema_versions(request, code):
    """A registry's schema versions and their fields; administrators add a field as a new version."""
    user, department = _official(request)
    registry = _registry(code)
    if not may_manage_schemas(user, department, registry):
        raise PermissionDenied(gettext("只有系统管理员、大数据管理部门和牵头部门可以维护信息库结构。"))
    publish = may_publish_schemas(user, department, registry)
    if request.method == "POST" and not publish:
        raise PermissionDenied(gettext("只有系统管理员和牵头部门可以发布信息库的新版本。"))
    form = SchemaFieldForm(request.POST or None)
    schema_errors = []
    if request.method == "POST" and form.is_valid():
        current = list(registry.current_schema.fields) if registry.current_schema_id else []
        try:
            published = services.publish_schema_version(
                registry, [*current, form.definition()], actor=user, note=form.cleaned_data.get("note") or ""
            )
        except SchemaError as exc:
            schema_errors = exc.messages
        else:
            messages.success(
                request,
                gettext("已发布第 %(version)s 版，新增字段“%(label)s”。")
                % {"version": published.version, "label": form.cleaned_data["label"]},
            )
            return redirect("registry:schema", code=registry.code)
    versions = [
        {
            "schema": version,
            "fields": services.registry_fields(registry, version.version),
            "current": version.pk == registry.current_schema_id,
        }
        for version in registry.schemas.order_by("-version")
    ]
    labels = _authority_labels(
        [f.authority for v in versions for f in v["fields"]]
        + [tokens for v in versions for f in v["fields"] for _value, tokens in f.authority_by_value]
    )
    for item in versions:
        item["rows"] = [
            {
                "field": f,
                "type_label": TYPE_LABELS.get(f.type, f.type),
                "sensitivity_label": SENSITIVITY_LABELS.get(f.sensitivity, f.sensitivity),
                "authority": labels.get(f.authority, f.authority),
                "choices": [f"{code} {label}" if label != code else code for code, label in choice_pairs(f)],
            }
            for f in item["fields"]
        ]
        item["rule"] = _authority_rule_rows(item["fields"], labels)
    context = {
        "registry": registry,
        "versions": versions,
        "form": form,
        "schema_errors": schema_errors,
        "publish": publish,
        "readable": services.reader_scope(registry, user) is not None,
    }
    return render(request, "registry/schema.html", context, status=400 if request.method == "POST" else 200)


# --- Who read my data (谁查了我的数据) ----------------------------------------------------------------

MY_READS_PAGE_SIZE = 50


@login_required
def my_reads(request):
    """A verified citizen's or enterprise's own access log: which department read which record, when and why."""
    digest = services.subject_digest_of_account(request.user)
    context = {"verified": bool(digest), "reads": [], "total": 0}
    if digest:
        reads = services.access_log_for_digest(digest)
        total = reads.count()
        pages = max(1, math.ceil(total / MY_READS_PAGE_SIZE))
        try:
            page = min(max(1, int(request.GET.get("page", "1"))), pages)
        except ValueError:
            page = 1
        start = (page - 1) * MY_READS_PAGE_SIZE
        context.update(
            reads=list(reads[start : start + MY_READS_PAGE_SIZE]),
            total=total,
            **_page_links(request, page, pages),
        )
    return render(request, "registry/my_reads.html", context)
