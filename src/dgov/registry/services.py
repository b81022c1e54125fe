"""The registry engine's services: schemas, records, history, authority (一数一源), corrections, reads.

Who writes (一数一源, one data one source)
    Every write happens on behalf of a **department**: ``source`` if given, else
    :func:`department_of` the actor (an official's department, an API client's organization). A
    department may write a field when its kind (``GA``, ``MZ`` …) or its code is one of the field's
    ``authority`` tokens (``"WJ|GA"``; a field without authority belongs to the registry owner's
    kind), or when a live :class:`Delegation` names it for that field (or ``*``) from one of those
    authorities. When the registry has a ``scope_field`` the record's division (``Record.division_code``)
    must lie within the writer's division (:func:`dgov.kernel.services.divisions.scope_prefix`;
    provincial departments cover the province); a record without a division may only be written
    by provincial departments. Conditional authority (``authority_by_value`` on one enum field, e.g.
    ``population.event``'s ``kind``): for a record whose value of that field has a rule, a field
    listing several authorities may only be written by a department matching both the field's
    authority and the rule (a rule never widens anyone's rights); the new record's value decides,
    and changing the value of an existing record needs authority under the old and the new value.
    Administrators (superusers, ``User.Kind.ADMIN``) may read every registry, but they too write
    only through a department: data keeps exactly one accountable source. A refused write raises
    :class:`NotAuthoritative` and leaves an audit record with outcome ``denied``; that record is
    written in its own (savepoint) transaction after the failed write rolled back, so it persists
    unless the caller rolls back its own enclosing transaction.

Who reads
    :func:`can_read`: the owner, any department authoritative for a field, delegates and data
    administrators (kind ``DSJ``). With a ``scope_field``, a reader sees only records within its
    division unless it is provincial or a data administrator. :func:`read_record` checks this,
    records an :class:`AccessLog` row (谁查了我的数据) and masks personal values unless asked not to.

Values and keys
    Public and internal values are stored in ``Record.data``; all personal values of a record go
    into ``Record.sealed`` as one JSON object (SM4-GCM encrypted by the field). Identifier, unique
    and lookup fields get ``RecordKey`` rows holding the blind index of the value; resident IDs,
    USCCs and phones are indexed with their type as purpose, so one person has the same digest in
    every registry. Keys follow updates and are removed on soft delete (freeing unique values);
    :func:`restore_record` re-creates them after checking uniqueness again.

History, as-of and versions
    Creation is not a change: its who/source/when are on the Record. Every later write is one
    ``RecordChange`` with ``{field: [old, new]}`` (personal fields in its sealed column), also
    deletions and restorations. :func:`record_values` with ``as_of`` reverts, newest first, the
    changes made after that moment. A record keeps the schema version it was created with; an
    update that sets a field unknown to that version moves the record to the current version.

Every state change runs in one transaction with its audit record and outbox events
(``registry.record.created``/``updated``/``deleted`` …); bulk creation writes one summary audit
record and one summary event instead of one per row.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import DecimalField, Q, QuerySet
from django.db.models.fields.json import KT, KeyTransform
from django.db.models.functions import Cast
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext as _

from dgov.kernel.fields import blind_index
from dgov.kernel.models import Organization
from dgov.kernel.services import audit, events
from dgov.kernel.services.calendar import add_working_days
from dgov.kernel.services.divisions import scope_prefix
from dgov.kernel.services.organizations import BUREAU_KINDS
from dgov.registry.accesslog import ReadLog
from dgov.registry.bulk import Prepared, RowSealer, sqlite_bulk_cache
from dgov.registry.models import (
    AccessLog,
    CorrectionRequest,
    Delegation,
    Observation,
    Record,
    RecordChange,
    RecordKey,
    Registry,
    RegistrySchema,
)
from dgov.registry.schema import (
    FieldDef,
    RecordValidationError,
    SchemaError,
    authority_rule_field,
    check_evolution,
    clean_value,
    compile_cleaner,
    field_map,
    fields_to_dicts,
    key_purpose,
    mask_value,
    parse_fields,
)

logger = logging.getLogger(__name__)

__all__ = [
    "DATA_ADMIN_KIND",
    "CORRECTION_DAYS",
    "NotAuthoritative",
    "RecordDeleted",
    "RecordNotFound",
    "RegistryNotFound",
    "VersionConflict",
    "access_log_for_subject",
    "add_observation",
    "bulk_create_records",
    "can_read",
    "can_write",
    "check_read",
    "clear_caches",
    "create_record",
    "create_registry",
    "decide_correction",
    "delegate_field",
    "delete_record",
    "department_of",
    "field_authority",
    "find_record",
    "find_records",
    "get_registry",
    "history",
    "is_admin",
    "log_reads",
    "new_uid",
    "publish_schema_version",
    "read_record",
    "reader_scope",
    "record_values",
    "refused_changes",
    "record_values_now",
    "registry_fields",
    "restore_record",
    "revoke_delegation",
    "search_records",
    "submit_correction",
    "update_or_create_record",
    "update_record",
    "writable_fields",
]

DATA_ADMIN_KIND = "DSJ"  # 大数据局: data administrators read every registry (but write none)
CORRECTION_DAYS = 5  # working days an authority has to decide a correction request
MAX_PAGE = 1000
UID_KEY = "_uid"  # bulk rows may name their record's uid under this key (field names start with a letter)
_QUERY_CHUNK = 900  # parameters per IN (...) query, below SQLite's historical limit of 999


# --- Errors ----------------------------------------------------------------------------------------------


class RegistryNotFound(ObjectDoesNotExist):
    """No registry with that code (the API maps it to 404)."""


class RecordNotFound(ObjectDoesNotExist):
    """No such record, or it did not exist at the requested time (the API maps it to 404)."""


class RecordDeleted(ValidationError):
    """The record is soft-deleted and cannot be changed (restore it first)."""


class VersionConflict(Exception):
    """The record changed since the caller read it (optimistic concurrency; the API maps it to 409)."""

    def __init__(self, expected: int, actual: int):
        self.expected, self.actual = expected, actual
        super().__init__(
            _("记录已被修改（期望修订号 %(expected)s，当前 %(actual)s），请刷新后重试")
            % {"expected": expected, "actual": actual}
        )


class NotAuthoritative(PermissionDenied):
    """A write by a department that is not the source (authority or delegate) of the fields."""

    def __init__(
        self,
        fields: Iterable[str] = (),
        department: Organization | None = None,
        *,
        registry: Registry | None = None,
        message: str = "",
        states: Iterable[dict] = (),
    ):
        self.fields = sorted(fields)
        self.department = department
        self.registry = registry
        if not message:
            message = _describe_refusal(registry, self.fields, department, states)
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        return self.message


def _describe_refusal(
    registry: Registry | None, names: list[str], department: Organization | None, states: Iterable[dict] = ()
) -> str:
    """A Chinese message naming the refused fields, their (conditionally narrowed) authorities and the department."""
    if department is None:
        return _("写入须以部门身份进行：当前用户不属于任何部门")
    parts = []
    defs = field_map(registry_fields(registry)) if registry is not None else {}
    states = [state for state in states if state]
    for name in names:
        field = defs.get(name)
        if field is None:
            parts.append(name)
            continue
        authority = "|".join(_authorities(registry, field))
        narrowed = []
        for state in states:
            tokens, condition = field_authority(registry, field, state)
            if condition:
                text = _("%(condition)s的记录为 %(tokens)s") % {"condition": condition, "tokens": tokens or "—"}
                narrowed.append(text)
        if narrowed:
            authority = f"{authority}；{'；'.join(dict.fromkeys(narrowed))}"
        parts.append(_("%(label)s（权威来源：%(authority)s）") % {"label": field.label, "authority": authority})
    return _("%(department)s 不是以下字段的权威来源或不在其管辖区划内，不能写入：%(fields)s") % {
        "department": department.name,
        "fields": "、".join(parts),
    }


# --- Actors --------------------------------------------------------------------------------------------------


def is_admin(actor) -> bool:
    """Whether the actor is a platform administrator (superuser or admin account): reads everything."""
    return bool(
        getattr(actor, "is_authenticated", False)
        and (getattr(actor, "is_superuser", False) or getattr(actor, "kind", "") == "admin")
    )


def department_of(actor) -> Organization | None:
    """The department an actor works for: an official's (or admin's) department, an API client's organization."""
    if actor is None or isinstance(actor, str):
        return None
    if isinstance(actor, Organization):
        return actor
    if hasattr(actor, "organization"):
        organization = actor.organization
        return organization if isinstance(organization, Organization) else None
    if getattr(actor, "is_authenticated", False) and getattr(actor, "kind", "") in ("official", "admin"):
        return actor.department if getattr(actor, "department_id", None) else None
    return None


def _actor_label(actor) -> str:
    """A short text naming the actor for history and access logs (user name or API client id)."""
    if actor is None:
        return "system"
    if isinstance(actor, str):
        return actor[:150]
    client_id = getattr(actor, "client_id", None)
    if client_id:
        return f"client:{client_id}"[:150]
    if hasattr(actor, "get_username"):
        return actor.get_username()[:150]
    return str(actor)[:150]


def _audit_actor(actor):
    """The actor as the audit service understands it (a User, a "kind:label" string or None)."""
    if actor is None or isinstance(actor, str) or hasattr(actor, "get_username"):
        return actor
    return _actor_label(actor)


# --- Registries and schemas ---------------------------------------------------------------------------------

_fields_cache: dict[tuple, list[FieldDef]] = {}


def clear_caches() -> None:
    """Forget cached field lists and registries (after schema changes in another process; tests)."""
    _fields_cache.clear()
    _registry_cache.clear()


def _registry_stamp(registry: Registry) -> tuple:
    """A cache key part telling registries apart even when a test database reuses ids."""
    return (registry.pk, registry.created_at.isoformat() if registry.created_at else "")


def get_registry(code: str) -> Registry:
    """The registry with this code (owner and current schema loaded); RegistryNotFound if missing."""
    try:
        return Registry.objects.select_related("owner", "owner__division", "current_schema").get(code=code)
    except Registry.DoesNotExist:
        raise RegistryNotFound(_("信息库“%(code)s”不存在") % {"code": code}) from None


# Registries are read on every API request and change rarely (a new schema version, a deactivation):
# each process keeps them for a few seconds, and forgets them at once when it saves one itself.
REGISTRY_CACHE_SECONDS = 10.0
_registry_cache: dict[str, tuple[float, Registry]] = {}


@receiver([post_save, post_delete], sender=Registry)
@receiver([post_save, post_delete], sender=RegistrySchema)
def _forget_registries(**kwargs) -> None:
    """Drop cached registries when one (or a schema version) is saved or deleted in this process."""
    _registry_cache.clear()


def cached_registry(code: str) -> Registry:
    """:func:`get_registry`, kept ``REGISTRY_CACHE_SECONDS`` per process (the API's and the gateway's lookups)."""
    now = time.monotonic()
    hit = _registry_cache.get(code)
    if hit is not None and hit[0] > now:
        return hit[1]
    registry = get_registry(code)
    if len(_registry_cache) > 1000:
        _registry_cache.clear()
    _registry_cache[code] = (now + REGISTRY_CACHE_SECONDS, registry)
    return registry


def registry_fields(registry: Registry, version: int | None = None) -> list[FieldDef]:
    """The fields of a schema version (default: the current one), cached per (registry, version)."""
    if version is None:
        key = (*_registry_stamp(registry), "current", registry.current_schema_id)
    else:
        key = (*_registry_stamp(registry), "version", version)
    cached = _fields_cache.get(key)
    if cached is not None:
        return cached
    if version is None:
        if registry.current_schema_id is None:
            raise SchemaError(_("信息库“%(code)s”尚无已发布的版本") % {"code": registry.code})
        schema = RegistrySchema.objects.get(pk=registry.current_schema_id)
    else:
        schema = RegistrySchema.objects.filter(registry=registry, version=version).first()
        if schema is None:
            raise SchemaError(_("信息库“%(code)s”没有版本 %(version)s") % {"code": registry.code, "version": version})
    fields = parse_fields(schema.fields, identifier=registry.identifier_field)
    _fields_cache[key] = fields
    if version is None:
        _fields_cache[(*_registry_stamp(registry), "version", schema.version)] = fields
        _fields_cache[(*_registry_stamp(registry), "number", registry.current_schema_id)] = schema.version
    return fields


def _current_version(registry: Registry) -> int:
    """The version number of the registry's current schema."""
    registry_fields(registry)
    return _fields_cache[(*_registry_stamp(registry), "number", registry.current_schema_id)]


def may_administer(actor, registry: Registry | None = None) -> bool:
    """Schemas are managed by administrators, the system (installers), the provincial data administrators
    (大数据局, kind DSJ, who run the base libraries) or the owner department's officials."""
    if actor is None or isinstance(actor, str) or is_admin(actor):
        return True
    department = department_of(actor)
    if department is None:
        return False
    if department.kind == DATA_ADMIN_KIND and department.level == Organization.Level.PROVINCE:
        return True
    return registry is not None and department.pk == registry.owner_id


def _check_registry_definition(fields: list[FieldDef], identifier_field: str, scope_field: str) -> None:
    """Rules tying the registry to its fields: identifier and scope fields exist with suitable types."""
    by_name = field_map(fields)
    identifier = by_name.get(identifier_field)
    if identifier is None:
        raise SchemaError(_("标识字段“%(field)s”不在字段定义中") % {"field": identifier_field})
    if identifier.type in ("geojson", "json", "text", "boolean"):
        raise SchemaError(_("标识字段“%(field)s”的类型不能作为标识") % {"field": identifier_field})
    if scope_field:
        scope = by_name.get(scope_field)
        if scope is None or scope.type != "division_code":
            raise SchemaError(_("区划字段“%(field)s”应为行政区划代码类型的字段") % {"field": scope_field})
    rule_field = authority_rule_field(fields)
    if rule_field is not None:
        _check_rule_departments(rule_field)


def _check_rule_departments(field: FieldDef) -> None:
    """Every department named by a conditional authority rule is a known kind or an existing department code."""
    unknown = {token for _value, tokens in field.authority_by_value for token in tokens.split("|")}
    unknown -= {kind.kind for kind in BUREAU_KINDS}
    if unknown:
        for kind, code in Organization.objects.filter(Q(kind__in=unknown) | Q(code__in=unknown)).values_list(
            "kind", "code"
        ):
            unknown.discard(kind)
            unknown.discard(code)
    if unknown:
        raise SchemaError(
            _("字段“%(field)s”的按取值权威来源中有未知的部门类别或编码：%(tokens)s")
            % {"field": field.name, "tokens": "、".join(sorted(unknown))}
        )


def create_registry(
    *,
    code: str,
    name: str,
    owner: Organization,
    library_code: str,
    identifier_field: str,
    fields: list[dict],
    actor,
    name_en: str = "",
    library: str = "base",
    description: str = "",
    scope_field: str = "",
) -> Registry:
    """Create a registry with its first schema version (v1, published); audited."""
    if not may_administer(actor):
        raise PermissionDenied(_("只有系统管理员可以创建信息库"))
    code = (code or "").strip()
    if not code or len(code) > 64 or not all(ch.isalnum() or ch in "._-" for ch in code) or not code.isascii():
        raise SchemaError(_("信息库编码“%(code)s”无效（字母、数字、点、下划线、连字符）") % {"code": code})
    if library not in Registry.Library.values:
        raise SchemaError(_("库类别“%(library)s”无效") % {"library": library})
    if not (name or "").strip():
        raise SchemaError(_("信息库名称不能为空"))
    parsed = parse_fields(fields, identifier=identifier_field)
    _check_registry_definition(parsed, identifier_field, scope_field)
    with transaction.atomic():
        if Registry.objects.filter(code=code).exists():
            raise SchemaError(_("信息库编码“%(code)s”已存在") % {"code": code})
        registry = Registry.objects.create(
            code=code,
            name=name.strip(),
            name_en=name_en,
            library=library,
            library_code=library_code,
            description=description,
            owner=owner,
            identifier_field=identifier_field,
            scope_field=scope_field,
        )
        schema = RegistrySchema.objects.create(
            registry=registry,
            version=1,
            fields=fields_to_dicts(parsed),
            status=RegistrySchema.Status.PUBLISHED,
            note=_("初始版本"),
            created_by=_actor_label(actor),
            published_at=timezone.now(),
        )
        registry.current_schema = schema
        registry.save(update_fields=["current_schema", "updated_at"])
        audit.record(
            "registry.registry.create",
            actor=_audit_actor(actor),
            target=registry,
            detail={"code": code, "owner": owner.code, "fields": [f.name for f in parsed], "version": 1},
        )
        events.publish(
            "registry.schema.published",
            {"registry": code, "version": 1, "fields": [f.name for f in parsed]},
            aggregate=f"registry:{code}",
            aggregate_id=code,
        )
    return registry


def publish_schema_version(registry: Registry, fields: list[dict], *, actor, note: str = "") -> RegistrySchema:
    """Publish a new schema version (fields may be added, never removed or retyped) and make it current."""
    if not may_administer(actor, registry):
        raise PermissionDenied(_("只有系统管理员或牵头部门可以修改信息库版本"))
    parsed = parse_fields(fields, identifier=registry.identifier_field)
    _check_registry_definition(parsed, registry.identifier_field, registry.scope_field)
    with transaction.atomic():
        locked = Registry.objects.select_for_update().get(pk=registry.pk)
        current = RegistrySchema.objects.get(pk=locked.current_schema_id)
        old = parse_fields(current.fields, identifier=registry.identifier_field)
        check_evolution(old, parsed)
        if fields_to_dicts(old) == fields_to_dicts(parsed):
            raise SchemaError(_("新版本与现行版本相同"))
        schema = RegistrySchema.objects.create(
            registry=locked,
            version=current.version + 1,
            fields=fields_to_dicts(parsed),
            status=RegistrySchema.Status.PUBLISHED,
            note=note,
            created_by=_actor_label(actor),
            published_at=timezone.now(),
        )
        RegistrySchema.objects.filter(pk=current.pk).update(status=RegistrySchema.Status.RETIRED)
        locked.current_schema = schema
        locked.save(update_fields=["current_schema", "updated_at"])
        added = [f.name for f in parsed if f.name not in field_map(old)]
        audit.record(
            "registry.schema.publish",
            actor=_audit_actor(actor),
            target=schema,
            detail={"registry": registry.code, "version": schema.version, "added": added, "note": note[:200]},
        )
        events.publish(
            "registry.schema.published",
            {"registry": registry.code, "version": schema.version, "fields": [f.name for f in parsed]},
            aggregate=f"registry:{registry.code}",
            aggregate_id=registry.code,
        )
    registry.current_schema = schema
    registry.updated_at = locked.updated_at
    return schema


# --- Authority ----------------------------------------------------------------------------------------------


def _authorities(registry: Registry, field: FieldDef) -> tuple[str, ...]:
    """The kinds/codes authoritative for a field (the owner's kind, or its code, when none is given)."""
    if field.authorities:
        return field.authorities
    owner = registry.owner
    return (owner.kind or owner.code,)


def _matches(department: Organization, tokens: Iterable[str]) -> bool:
    """Whether the department's kind or code is one of the tokens."""
    tokens = set(tokens)
    return (bool(department.kind) and department.kind in tokens) or department.code in tokens


def _live_delegations(registry: Registry, department: Organization) -> list[Delegation]:
    """Delegations naming this department for this registry that are neither revoked nor expired."""
    now = timezone.now()
    return list(
        Delegation.objects.filter(registry=registry, delegate=department, revoked_at__isnull=True).filter(
            Q(valid_until__isnull=True) | Q(valid_until__gt=now)
        )
    )


def _in_scope(department: Organization, division_code: str) -> bool:
    """Whether a record's division lies within the department's division (empty: provincial only)."""
    prefix = scope_prefix(department.division.code)
    if not division_code:
        return department.level == Organization.Level.PROVINCE
    return division_code.startswith(prefix)


def _rule_tokens(field: FieldDef | None, values: dict | None) -> tuple[str, ...] | None:
    """The sources a conditional rule (on ``field``) narrows a record with these values to, or None."""
    if field is None or not values:
        return None
    value = values.get(field.name)
    return field.authority_rules().get(value) if isinstance(value, str) else None


def field_authority(registry: Registry, field: FieldDef, values: dict | None = None) -> tuple[str, str]:
    """A field's authority for people to read: ``(tokens, condition)``.

    ``tokens`` are the field's authority (``"WJ|GA|MZ"``; the owner's kind when it names none),
    narrowed by the registry's conditional rule for a record with these ``values`` (``"WJ"`` for
    a birth; ``""`` when no listed source remains); ``condition`` names the rule that applied
    (``事件类型为“出生”``), ``""`` when none did.
    """
    tokens = _authorities(registry, field)
    rule_field = authority_rule_field(registry_fields(registry))
    only = _rule_tokens(rule_field, values)
    if only is None or len(tokens) < 2:
        return "|".join(tokens), ""
    value = values[rule_field.name]
    condition = _("%(field)s为“%(value)s”") % {"field": rule_field.label, "value": rule_field.choice_label(value)}
    return "|".join(token for token in only if token in tokens), condition


class _WriteCheck:
    """Authority decisions for one department on one registry, with delegations loaded once."""

    def __init__(self, registry: Registry, department: Organization | None):
        self.registry = registry
        self.department = department
        self.fields = field_map(registry_fields(registry))
        self.rule_field = authority_rule_field(self.fields.values())
        self._delegations: list[Delegation] | None = None
        self._field_ok: dict[tuple, bool] = {}

    def rule_for(self, values: dict | None) -> tuple[str, ...] | None:
        """The sources a record with these values is narrowed to by the conditional rule, or None."""
        return _rule_tokens(self.rule_field, values) if self.rule_field is not None else None

    def field_ok(self, name: str, only: tuple[str, ...] | None = None) -> bool:
        """Authority (or delegation) for the field, ignoring divisions; ``only``: a conditional rule's sources.

        The rule narrows fields that list several sources: the department (or the delegation's
        grantor) must match both the field's authority and the rule. A single-source field keeps it.
        """
        key = (name, only)
        if key in self._field_ok:
            return self._field_ok[key]
        ok = False
        department = self.department
        field = self.fields.get(name)
        if department is not None and department.is_active and field is not None:
            tokens = _authorities(self.registry, field)
            if len(tokens) < 2:
                only = None
            ok = _matches(department, tokens) and (only is None or _matches(department, only))
            if not ok:
                if self._delegations is None:
                    self._delegations = _live_delegations(self.registry, department)
                ok = any(
                    d.field in (name, "*") and d.authority in tokens and (only is None or d.authority in only)
                    for d in self._delegations
                )
        self._field_ok[key] = ok
        return ok

    def scope_ok(self, division_code: str) -> bool:
        """The division part of the rule (always true for registries without a scope field)."""
        if not self.registry.scope_field:
            return True
        return self.department is not None and _in_scope(self.department, division_code)

    def refused(self, names: Iterable[str], *division_codes: str, values: Iterable[dict] = ()) -> list[str]:
        """The names among ``names`` this department may not write for records in these divisions.

        ``values``: the record's states to judge conditional authority by (before and after a change
        of its discriminator); the write must be allowed under each of them.
        """
        in_scope = all(self.scope_ok(code) for code in division_codes) if division_codes else self.scope_ok("")
        rules = {self.rule_for(state) for state in values} or {None}
        return sorted(name for name in names if not (in_scope and all(self.field_ok(name, rule) for rule in rules)))


def _judged(check: _WriteCheck, record: Record | None, division_code: str, values: dict | None):
    """The division and record states a permission question is judged by (record values loaded only if needed)."""
    if record is not None and not division_code:
        division_code = record.division_code
    if check.rule_field is None:
        return division_code, ()
    if values is None and record is not None:
        values = record_values_now(record)
    return division_code, ((values,) if values else ())


def can_write(
    registry: Registry,
    field: str,
    department: Organization | None,
    *,
    division_code: str = "",
    record: Record | None = None,
    values: dict | None = None,
) -> bool:
    """Whether the department may write the field (authority or delegation, division scope, conditional authority).

    ``record``: the existing record written to (its division, unless ``division_code`` is given, and
    its values decide); ``values``: the values of the record (for a new one, at least its
    discriminator) when the registry has a conditional authority rule.
    """
    if department is None:
        return False
    check = _WriteCheck(registry, department)
    division, states = _judged(check, record, division_code, values)
    return not check.refused([field], division, values=states)


def writable_fields(
    registry: Registry,
    department: Organization | None,
    *,
    division_code: str = "",
    record: Record | None = None,
    values: dict | None = None,
) -> list[str]:
    """The names of the fields the department may write for a record in this division (see :func:`can_write`)."""
    check = _WriteCheck(registry, department)
    division, states = _judged(check, record, division_code, values)
    return [name for name in check.fields if not check.refused([name], division, values=states)]


def can_read(registry: Registry, department: Organization | None, *, division_code: str | None = None) -> bool:
    """Whether the department may read the registry (and, with ``division_code``, a record of that division).

    Readers: the owner, departments authoritative for any field, delegates and data administrators
    (kind DSJ). With a scope field, other departments than provincial ones and data administrators
    see only records within their own division.
    """
    if department is None or not department.is_active:
        return False
    if department.kind == DATA_ADMIN_KIND:
        return True
    allowed = department.pk == registry.owner_id or any(
        _matches(department, _authorities(registry, field)) for field in registry_fields(registry)
    )
    if not allowed:
        allowed = bool(_live_delegations(registry, department))
    if not allowed:
        return False
    if division_code is None or not registry.scope_field or department.level == Organization.Level.PROVINCE:
        return True
    return bool(division_code) and division_code.startswith(scope_prefix(department.division.code))


def reader_scope(registry: Registry, actor) -> str | None:
    """The division prefix an actor's reads are limited to: None (no access), "" (everything) or a prefix."""
    if is_admin(actor):
        return ""
    department = department_of(actor)
    if not can_read(registry, department):
        return None
    if (
        not registry.scope_field
        or department.kind == DATA_ADMIN_KIND
        or department.level == Organization.Level.PROVINCE
    ):
        return ""
    return scope_prefix(department.division.code)


def check_read(registry: Registry, *, actor, division_code: str | None = None) -> Organization | None:
    """Raise PermissionDenied unless the actor may read the registry (or a record of that division)."""
    department = department_of(actor)
    if is_admin(actor) or can_read(registry, department, division_code=division_code):
        return department
    raise PermissionDenied(_("无权查询信息库“%(name)s”的该记录") % {"name": registry.name})


def _audit_denial(action: str, *, actor, target, exc: PermissionDenied, registry: Registry) -> None:
    """Record a refused operation in its own transaction, after the attempted write rolled back."""
    detail = {"registry": registry.code, "reason": str(exc)[:300]}
    if isinstance(exc, NotAuthoritative):
        detail["fields"] = exc.fields
        detail["department"] = exc.department.code if exc.department is not None else ""
    with transaction.atomic():
        audit.record(action, actor=_audit_actor(actor), target=target, outcome="denied", detail=detail)


def _resolve_source(actor, source: Organization | None) -> Organization | None:
    """The department a write is made for: ``source`` if given, else the actor's department."""
    return source if source is not None else department_of(actor)


# --- Values, keys and references ------------------------------------------------------------------------


def record_values_now(record: Record) -> dict:
    """The record's current values (public and decrypted personal), including deleted records."""
    values = dict(record.data or {})
    if record.sealed:
        values.update(json.loads(record.sealed))
    return values


def _split(fields: dict[str, FieldDef], values: dict) -> tuple[dict, dict]:
    """Values split into (public/internal, personal)."""
    public, personal = {}, {}
    for name, value in values.items():
        (personal if fields[name].is_personal else public)[name] = value
    return public, personal


def _dumps(values: dict) -> str:
    """Compact JSON for the sealed column ("" when there is nothing to seal)."""
    return json.dumps(values, ensure_ascii=False, separators=(",", ":"), sort_keys=True) if values else ""


def _key_fields(fields: Iterable[FieldDef]) -> list[FieldDef]:
    """The fields that get RecordKey rows."""
    return [field for field in fields if field.unique or field.lookup]


def _digest(registry: Registry, field: FieldDef, value) -> str:
    """The blind index of a key field's (cleaned) value."""
    return blind_index(str(value), purpose=key_purpose(registry.code, field))


def _key_rows(registry: Registry, key_fields: list[FieldDef], values: dict) -> list[tuple[str, str, bool]]:
    """(field, digest, is_unique) for the key fields that have a value."""
    rows = []
    for field in key_fields:
        value = values.get(field.name)
        if value is not None and value != "":
            rows.append((field.name, _digest(registry, field, value), field.unique))
    return rows


def _chunk_size() -> int:
    """Values per IN (...) list: SQLite's historical limit is 999 parameters, PostgreSQL takes far more."""
    return 10000 if connection.vendor == "postgresql" else _QUERY_CHUNK


def _existing_unique(registry: Registry, field: str, digests: Iterable[str], *, exclude_record: int | None = None):
    """The digests among ``digests`` already held by a unique key of another record."""
    digests = list(digests)
    found: set[str] = set()
    chunk = _chunk_size()
    for start in range(0, len(digests), chunk):
        query = RecordKey.objects.filter(
            registry=registry, field=field, is_unique=True, digest__in=digests[start : start + chunk]
        )
        if exclude_record is not None:
            query = query.exclude(record_id=exclude_record)
        found.update(query.values_list("digest", flat=True))
    return found


def _taken_unique_digests(registry_id: int, field: str, digests: list[str]) -> list[str]:
    """Like :func:`_existing_unique` for bulk writes: plain SQL, since building thousands of ORM
    lookup parameters per batch costs more than the index probes themselves."""
    if not digests:
        return []
    meta = RecordKey._meta
    quote = connection.ops.quote_name
    column = {name: quote(meta.get_field(name).column) for name in ("registry", "field", "digest", "is_unique")}
    taken: list[str] = []
    chunk = _chunk_size()
    with connection.cursor() as cursor:
        for start in range(0, len(digests), chunk):
            part = digests[start : start + chunk]
            # The condition on is_unique is written as the unique index's own, so that it is used.
            cursor.execute(
                f"SELECT {column['digest']} FROM {quote(meta.db_table)} WHERE {column['registry']} = %s "
                f"AND {column['field']} = %s AND {column['is_unique']} AND {column['digest']} IN "
                f"({', '.join(['%s'] * len(part))})",
                [registry_id, field, *part],
            )
            taken.extend(row[0] for row in cursor.fetchall())
    return taken


def _missing_references(fields: dict[str, FieldDef], rows: list[dict]) -> dict[str, set[str]]:
    """For each reference field, the referenced uids that name no live record of its registry."""
    missing: dict[str, set[str]] = {}
    for field in fields.values():
        if field.type != "reference":
            continue
        wanted = {row[field.name] for row in rows if row.get(field.name)}
        if wanted:
            missing[field.name] = wanted - live_uids(field.ref, wanted)
    return missing


def live_uids(registry_code: str, uids) -> set[str]:
    """Those of ``uids`` (as text) that name a live (not deleted) record of the registry ``registry_code``."""
    target = Registry.objects.filter(code=registry_code).values_list("pk", flat=True).first()
    found: set[str] = set()
    if target is None:
        return found
    ordered = sorted({str(uid) for uid in uids})
    for start in range(0, len(ordered), _QUERY_CHUNK):
        found.update(
            str(uid)
            for uid in Record.objects.filter(
                registry_id=target, deleted_at__isnull=True, uid__in=ordered[start : start + _QUERY_CHUNK]
            ).values_list("uid", flat=True)
        )
    return found


def _reference_errors(fields: dict[str, FieldDef], values: dict) -> dict[str, list[str]]:
    """Validation errors for reference values that do not name a live record."""
    errors = {}
    for name, uids in _missing_references(fields, [values]).items():
        if uids:
            field = fields[name]
            errors[name] = [
                _("%(field)s：信息库“%(ref)s”中没有记录 %(uid)s")
                % {"field": field.label, "ref": field.ref, "uid": next(iter(uids))}
            ]
    return errors


def _division_of(registry: Registry, values: dict) -> str:
    """The record's division code: the value of the registry's scope field, if any."""
    if not registry.scope_field:
        return ""
    return str(values.get(registry.scope_field) or "")


def _duplicate_message(field: FieldDef) -> str:
    """The message for a unique value already held by another record."""
    return _("%(field)s：该值已存在于其他记录") % {"field": field.label}


def _announce(event_type: str, registry: Registry, record: Record, names: Iterable[str]) -> None:
    """Put a record event into the outbox (field names only, never values)."""
    events.publish(
        event_type,
        {"registry": registry.code, "uid": str(record.uid), "fields": sorted(names), "version": record.version},
        aggregate=f"registry:{registry.code}",
        aggregate_id=str(record.uid),
    )


# --- Creating records -------------------------------------------------------------------------------------


def create_record(registry: Registry, values: dict, *, actor, source: Organization | None = None) -> Record:
    """Create a record; every given field must be writable by the source department. Audited."""
    department = _resolve_source(actor, source)
    fields = field_map(registry_fields(registry))
    cleaned = compile_cleaner(tuple(fields.values()))(values, False)
    division = _division_of(registry, cleaned)
    try:
        refused = _WriteCheck(registry, department).refused(cleaned, division, values=(cleaned,))
        if refused or department is None:
            raise NotAuthoritative(refused, department, registry=registry, states=(cleaned,))
    except NotAuthoritative as exc:
        _audit_denial("registry.record.create", actor=actor, target=registry, exc=exc, registry=registry)
        raise
    errors = _reference_errors(fields, cleaned)
    key_fields = _key_fields(fields.values())
    keys = _key_rows(registry, key_fields, cleaned)
    with transaction.atomic():
        for name, digest, unique in keys:
            if unique and _existing_unique(registry, name, [digest]):
                errors.setdefault(name, []).append(_duplicate_message(fields[name]))
        if errors:
            raise RecordValidationError(errors)
        public, personal = _split(fields, cleaned)
        now = timezone.now()
        record = Record(
            registry=registry,
            uid=new_uid(),
            schema_version=_current_version(registry),
            data=public,
            sealed=_dumps(personal),
            division_code=division,
            version=1,
            created_by_org=department,
            created_by=_actor_label(actor),
            created_at=now,
            updated_at=now,
        )
        record.save(force_insert=True)
        _insert_keys(registry, record, keys, fields)
        audit.record(
            "registry.record.create",
            actor=_audit_actor(actor),
            target=record,
            detail={"registry": registry.code, "source": department.code, "fields": sorted(cleaned)},
        )
        _announce("registry.record.created", registry, record, cleaned)
    return record


def _insert_keys(registry: Registry, record: Record, keys: list[tuple[str, str, bool]], fields) -> None:
    """Insert key rows; a unique clash from a concurrent writer becomes a RecordValidationError."""
    if not keys:
        return
    try:
        with transaction.atomic():
            RecordKey.objects.bulk_create(
                [
                    RecordKey(registry=registry, record=record, field=name, digest=digest, is_unique=unique)
                    for name, digest, unique in keys
                ]
            )
    except IntegrityError:
        clashing = [name for name, digest, unique in keys if unique]
        raise RecordValidationError({name: [_duplicate_message(fields[name])] for name in clashing}) from None


def _insert_sql(model, columns: list[str]) -> str:
    """An INSERT statement for ``columns`` of ``model`` with one placeholder per column."""
    quote = connection.ops.quote_name
    return "INSERT INTO {} ({}) VALUES ({})".format(
        quote(model._meta.db_table), ", ".join(quote(c) for c in columns), ", ".join(["%s"] * len(columns))
    )


def _insert_rows(cursor, model, columns: list[str], params: list[tuple]) -> None:
    """Insert many rows: COPY on PostgreSQL (several times faster than executemany there), executemany elsewhere.

    COPY checks constraints (unique, foreign keys) like INSERT does; it only skips the per-statement
    overhead.
    """
    if connection.vendor == "postgresql":
        quote = connection.ops.quote_name
        statement = "COPY {} ({}) FROM STDIN".format(
            quote(model._meta.db_table), ", ".join(quote(column) for column in columns)
        )
        with cursor.cursor.copy(statement) as copy:
            for row in params:
                copy.write_row(row)
        return
    cursor.executemany(_insert_sql(model, columns), params)


def _raw_insert_records(
    *,
    registry_id: int,
    schema_version: int,
    department_id: int,
    actor_label: str,
    rows: list[tuple[str, str, str, uuid.UUID | None]],
) -> list[int]:
    """Insert records without model instances and return their ids in input order.

    ``rows`` are (data as JSON text, sealed ciphertext or "", division code, uid or None for a new
    one), as :class:`dgov.registry.bulk.RowSealer` prepares them. The ORM's bulk_create spends most
    of an import preparing values field by field; here constant columns are prepared once per batch
    and only data, sealed and uid per row. Where ids cannot be reserved beforehand they are read
    back by uid (unique, indexed), which works on every backend regardless of the order of RETURNING rows.
    """
    meta = Record._meta
    now = timezone.now()
    constants = {
        "registry": registry_id,
        "schema_version": schema_version,
        "version": 1,
        "created_by_org": department_id,
        "created_by": actor_label,
        "created_at": now,
        "updated_at": now,
        "deleted_at": None,
    }
    varying = ("uid", "data", "sealed", "division_code")
    columns, fixed = [], []
    for field in meta.concrete_fields:
        if field.primary_key or field.name in varying:
            continue
        value = constants[field.name] if field.name in constants else field.get_default()
        columns.append(field.column)
        fixed.append(field.get_db_prep_save(value, connection))
    columns += [meta.get_field(name).column for name in varying]
    fixed_tuple = tuple(fixed)
    native_uuid = connection.features.has_native_uuid_field
    ids = _allocate_ids(Record, len(rows))
    params, prepared_uids = [], []
    for position, (data, sealed, division, given_uid) in enumerate(rows):
        # What UUIDField.get_db_prep_value would produce, without its per-call overhead; data is
        # the JSON text JSONField would send (COPY on PostgreSQL takes it as text too).
        uid = given_uid or new_uid()
        prepared_uid = uid if native_uuid else uid.hex
        prepared_uids.append(prepared_uid)
        if ids is not None:
            params.append((ids[position], *fixed_tuple, prepared_uid, data, sealed, division))
        else:
            params.append((*fixed_tuple, prepared_uid, data, sealed, division))
    with connection.cursor() as cursor:
        if ids is not None:
            _insert_rows(cursor, Record, [meta.pk.column, *columns], params)
            return ids
        _insert_rows(cursor, Record, columns, params)
        return _ids_by_uid(cursor, prepared_uids)


def _allocate_ids(model, count: int) -> list[int] | None:
    """Reserve ``count`` primary keys for rows we insert ourselves (None where the backend has no cheap way).

    PostgreSQL hands out sequence values (safe under concurrency); on SQLite the caller's
    transaction holds the database write lock (BEGIN IMMEDIATE), so the next ids after the
    highest used one (or the AUTOINCREMENT counter, whichever is larger) are ours.
    """
    meta = model._meta
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [meta.db_table, meta.pk.column, count],
            )
            return [row[0] for row in cursor.fetchall()]
        if connection.vendor == "sqlite":
            quote = connection.ops.quote_name
            cursor.execute(f"SELECT MAX({quote(meta.pk.column)}) FROM {quote(meta.db_table)}")
            top = cursor.fetchone()[0] or 0
            cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [meta.db_table])
            row = cursor.fetchone()
            top = max(top, row[0] if row and row[0] else 0)
            return list(range(top + 1, top + 1 + count))
    return None


def _ids_by_uid(cursor, prepared_uids: list) -> list[int]:
    """The ids of just-inserted records, read back by their (unique, indexed) uid."""
    meta = Record._meta
    quote = connection.ops.quote_name
    column = quote(meta.get_field("uid").column)
    ids: dict = {}
    for start in range(0, len(prepared_uids), _QUERY_CHUNK):
        chunk = prepared_uids[start : start + _QUERY_CHUNK]
        cursor.execute(
            "SELECT {}, {} FROM {} WHERE {} IN ({})".format(
                column, quote(meta.pk.column), quote(meta.db_table), column, ", ".join(["%s"] * len(chunk))
            ),
            chunk,
        )
        ids.update((_uid_key(uid), pk) for uid, pk in cursor.fetchall())
    return [ids[_uid_key(uid)] for uid in prepared_uids]


def new_uid() -> uuid.UUID:
    """A record identifier: random, but time-ordered in its first 48 bits (UUIDv7 layout).

    Ordered identifiers keep the unique index on ``Record.uid`` append-mostly, which makes
    million-row imports markedly faster than with uuid4 (random B-tree inserts).
    """
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & ((1 << 48) - 1)) << 80 | 0x7 << 76 | ((rand >> 62) & 0xFFF) << 64 | 0b10 << 62
    return uuid.UUID(int=value | (rand & ((1 << 62) - 1)))


def _uid_key(value) -> str:
    """A uid as returned or sent to the database (hex text on SQLite, UUID on PostgreSQL) as one comparable text."""
    return value.hex if isinstance(value, uuid.UUID) else str(value).replace("-", "").lower()


def _raw_insert_keys(rows: list[tuple[int, int, str, str, bool]], *, skip_conflicts: bool = False) -> int:
    """Insert RecordKey rows (registry id, record id, field, digest, is_unique) without model instances.

    With ``skip_conflicts`` (SQLite only) a row whose unique key is already held is skipped
    instead of failing; returns the number of rows inserted, so the caller sees whether any was.
    """
    if not rows:
        return 0
    meta = RecordKey._meta
    columns = [meta.get_field(name).column for name in ("registry", "record", "field", "digest", "is_unique")]
    with connection.cursor() as cursor:
        if skip_conflicts:
            cursor.executemany(_insert_sql(RecordKey, columns) + " ON CONFLICT DO NOTHING", rows)
            return cursor.rowcount
        _insert_rows(cursor, RecordKey, columns, rows)
    return len(rows)


def _raw_delete_records(ids: list[int]) -> None:
    """Delete just-inserted records and their keys (a bulk batch undone within its transaction)."""
    quote = connection.ops.quote_name
    targets = ((RecordKey, RecordKey._meta.get_field("record").column), (Record, Record._meta.pk.column))
    with connection.cursor() as cursor:
        for start in range(0, len(ids), _QUERY_CHUNK):
            part = ids[start : start + _QUERY_CHUNK]
            marks = ", ".join(["%s"] * len(part))
            for model, column in targets:
                cursor.execute(f"DELETE FROM {quote(model._meta.db_table)} WHERE {quote(column)} IN ({marks})", part)


def bulk_create_records(
    registry: Registry,
    rows: Iterable,
    *,
    actor,
    source: Organization | None,
    batch_size: int = 2000,
    progress: Callable[[int], Any] | None = None,
    validate: bool = True,
    max_errors: int | None = None,
) -> int:
    """Create many records fast (imports, demo data); all or nothing; returns how many were created.

    ``rows`` yields dicts of values, or ``(row_number, dict)`` pairs when the caller numbers rows
    itself (e.g. CSV line numbers); otherwise rows are numbered from 1. Without ``validate`` a pair
    may carry a third item, what :class:`dgov.registry.bulk.RowSealer` prepared for the row
    (digests and ciphertext computed elsewhere, e.g. in an import's worker process); it is used
    while its key ids are the active ones, else the row is prepared here. With ``validate`` the values
    are cleaned like :func:`create_record` does, references are checked per batch (one query per
    reference field), and unique values are checked within the input and against existing records.
    Every bad row is reported in one :class:`RecordValidationError` keyed ``"row N: field"`` (up to
    ``max_errors`` rows); once a bad row is found nothing more is written and the transaction is
    rolled back. A row may carry its record's uid under the key ``"_uid"`` (never a field name), so
    that generated data can refer to records of the same run before they exist; otherwise a new
    uid is drawn. Authority is checked like for single writes. One summary audit record and one
    ``registry.records.imported`` event are written instead of one per row. ``progress(n)`` is
    called after each batch with the number of rows processed so far.
    """
    department = _resolve_source(actor, source)
    fields = field_map(registry_fields(registry))
    cleaner = compile_cleaner(tuple(fields.values()))
    key_fields = _key_fields(fields.values())
    unique_names = [field.name for field in key_fields if field.unique]
    sealer = RowSealer(registry.code, fields.values())
    ref_fields = {name: field for name, field in fields.items() if field.type == "reference"}
    scope_field = registry.scope_field
    check = _WriteCheck(registry, department)
    schema_version = _current_version(registry)
    actor_label = _actor_label(actor)
    registry_id = registry.pk
    errors: dict[str, list[str]] = {}
    bad_rows: set[int] = set()
    seen: dict[str, dict[str, int]] = {name: {} for name in unique_names}
    given_uids: set[uuid.UUID] = set()
    checked_names: set[str] = set()  # the field names used so far, all checked for authority
    checked_by_rule: dict[tuple, set[str]] = {}  # names checked per conditional-authority rule
    scope_allowed: dict[str, bool] = {}  # division scope, decided once per division code
    created = 0
    processed = 0
    batch_size = max(1, int(batch_size))

    def add_error(number: int, name: str, message: str) -> None:
        bad_rows.add(number)
        errors.setdefault(f"row {number}: {name}", []).append(message)

    def refuse(names):
        raise NotAuthoritative(names, department, registry=registry)

    def _check_given_uids(batch: list[tuple[int, dict]], uids: list[uuid.UUID | None]) -> None:
        # Caller-chosen uids must be unique within the input and unused (one query per batch).
        first_row: dict[uuid.UUID, int] = {}
        for (number, _values), uid in zip(batch, uids, strict=True):
            if uid is None:
                continue
            if uid in first_row or uid in given_uids:
                add_error(number, UID_KEY, _("记录标识 %(uid)s 重复") % {"uid": uid})
            else:
                first_row[uid] = number
        wanted = list(first_row)
        for start in range(0, len(wanted), _QUERY_CHUNK):
            for uid in Record.objects.filter(uid__in=wanted[start : start + _QUERY_CHUNK]).values_list(
                "uid", flat=True
            ):
                add_error(first_row[uid], UID_KEY, _("记录标识 %(uid)s 已被其他记录使用") % {"uid": uid})
        given_uids.update(first_row)

    def flush(batch: list[tuple[int, dict]], uids: list[uuid.UUID | None], prepared: list[Prepared | None]) -> int:
        nonlocal created
        # References: one query per reference field for the whole batch.
        if validate and ref_fields:
            missing = _missing_references(ref_fields, [values for _n, values in batch])
            for number, values in batch:
                for name, absent in missing.items():
                    if values.get(name) in absent:
                        field = fields[name]
                        add_error(
                            number,
                            name,
                            _("%(field)s：信息库“%(ref)s”中没有记录 %(uid)s")
                            % {"field": field.label, "ref": field.ref, "uid": values[name]},
                        )
        # Keys, and uniqueness within the input and against stored records. The data keys are
        # looked up once per batch; rows prepared elsewhere with the same keys are taken as they are.
        keys = sealer.keys()
        prepared = [row if sealer.usable(row, keys) else None for row in prepared]
        batch_keys: list[tuple[tuple[str, str, bool], ...]] = []
        fresh: dict[str, dict[str, int]] = {name: {} for name in unique_names}
        for (number, values), ready in zip(batch, prepared, strict=True):
            row_keys = ready.keys if ready is not None else sealer.digests(values, keys)
            for name, digest, unique in row_keys:
                if unique:
                    first = seen[name].get(digest) or fresh[name].get(digest)
                    if first is not None:
                        add_error(
                            number,
                            name,
                            _("%(field)s：与第 %(row)s 行重复") % {"field": fields[name].label, "row": first},
                        )
                    else:
                        fresh[name][digest] = number
            batch_keys.append(row_keys)
        given = any(uid is not None for uid in uids)
        # On SQLite a batch that is written finds its clashes with stored keys while inserting them
        # (the unique index is probed anyway; a clashing key is skipped and then reported, and the
        # transaction is rolled back): one index probe per key instead of two. Elsewhere, and for
        # batches that are only checked, stored keys are looked up first.
        on_insert = connection.vendor == "sqlite" and not errors and not given
        for name in unique_names:
            if not on_insert:
                taken = _taken_unique_digests(registry_id, name, list(fresh[name]))
                for digest in taken:
                    add_error(fresh[name][digest], name, _duplicate_message(fields[name]))
            if errors:
                # Once nothing is written any more, later duplicates of these rows must still be found.
                seen[name].update(fresh[name])
        if given:
            _check_given_uids(batch, uids)
        if errors:
            return 0
        rows_out = []
        for (_number, values), given_uid, ready in zip(batch, uids, prepared, strict=True):
            data, sealed = (ready.data, ready.sealed) if ready is not None else sealer.seal(values, keys)
            division = str(values.get(scope_field) or "") if scope_field else ""
            rows_out.append((data, sealed, division, given_uid))
        records = _raw_insert_records(
            registry_id=registry_id,
            schema_version=schema_version,
            department_id=department.pk,
            actor_label=actor_label,
            rows=rows_out,
        )
        key_rows = [
            (registry_id, record_id, name, digest, unique)
            for record_id, row_keys in zip(records, batch_keys, strict=True)
            for name, digest, unique in row_keys
        ]
        if _raw_insert_keys(key_rows, skip_conflicts=on_insert) < len(key_rows):
            # Some unique values are held by stored records (or rows of earlier batches): undo the
            # batch (a savepoint per batch would cost a statement journal on every page touched)
            # and report them exactly as the lookup before writing would have.
            _raw_delete_records(records)
            for name in unique_names:
                for digest in _taken_unique_digests(registry_id, name, list(fresh[name])):
                    add_error(fresh[name][digest], name, _duplicate_message(fields[name]))
                seen[name].update(fresh[name])
            return 0
        created += len(records)
        return len(records)

    try:
        with sqlite_bulk_cache(), transaction.atomic():
            batch: list[tuple[int, dict]] = []
            batch_uids: list[uuid.UUID | None] = []
            batch_prepared: list[Prepared | None] = []
            for position, item in enumerate(rows, start=1):
                ready = None
                if isinstance(item, tuple):
                    if len(item) == 3:
                        number, values, ready = item
                        if validate:
                            ready = None  # prepared from values this engine is about to clean
                    else:
                        number, values = item
                else:
                    number, values = position, item
                processed += 1
                given_uid = None
                if UID_KEY in values:
                    ready = None
                    values = dict(values)
                    raw_uid = values.pop(UID_KEY)
                    try:
                        given_uid = raw_uid if isinstance(raw_uid, uuid.UUID) else uuid.UUID(str(raw_uid))
                    except ValueError:
                        add_error(number, UID_KEY, _("记录标识“%(uid)s”无效") % {"uid": str(raw_uid)[:40]})
                        continue
                if max_errors is not None and len(bad_rows) >= max_errors:
                    break
                if validate:
                    try:
                        values = cleaner(values, False)
                    except RecordValidationError as exc:
                        for name, messages in exc.errors.items():
                            for message in messages:
                                add_error(number, name, message)
                        continue
                new_names = values.keys() - checked_names
                if new_names:
                    if department is None:
                        refuse(new_names)
                    refused = [name for name in new_names if not check.field_ok(name)]
                    if refused:
                        refuse(refused)
                    checked_names.update(new_names)
                if check.rule_field is not None:  # conditional authority: the row's discriminator decides
                    only = check.rule_for(values)
                    if only is not None:
                        ruled = checked_by_rule.setdefault(only, set())
                        unchecked = values.keys() - ruled
                        if unchecked:
                            refused = sorted(name for name in unchecked if not check.field_ok(name, only))
                            if refused:
                                raise NotAuthoritative(refused, department, registry=registry, states=(values,))
                            ruled.update(unchecked)
                if scope_field:
                    division = str(values.get(scope_field) or "")
                    allowed = scope_allowed.get(division)
                    if allowed is None:
                        allowed = scope_allowed[division] = check.scope_ok(division)
                    if not allowed:
                        refuse([scope_field])
                batch.append((number, values))
                batch_uids.append(given_uid)
                batch_prepared.append(ready)
                if len(batch) >= batch_size:
                    flush(batch, batch_uids, batch_prepared)
                    batch, batch_uids, batch_prepared = [], [], []
                    if progress is not None:
                        progress(processed)
            if batch:
                flush(batch, batch_uids, batch_prepared)
            if progress is not None:
                progress(processed)
            if errors:
                raise RecordValidationError(errors)
            if department is None:
                refuse([])
            audit.record(
                "registry.record.bulk_create",
                actor=_audit_actor(actor),
                target=registry,
                detail={
                    "registry": registry.code,
                    "source": department.code,
                    "count": created,
                    "fields": sorted(checked_names),
                },
            )
            events.publish(
                "registry.records.imported",
                {
                    "registry": registry.code,
                    "count": created,
                    "source": department.code,
                    "fields": sorted(checked_names),
                },
                aggregate=f"registry:{registry.code}",
                aggregate_id=registry.code,
            )
    except NotAuthoritative as exc:
        _audit_denial("registry.record.bulk_create", actor=actor, target=registry, exc=exc, registry=registry)
        raise
    return created


# --- Updating records ---------------------------------------------------------------------------------------


def _lock(record: Record) -> Record:
    """The record re-read with a row lock for this transaction."""
    return Record.objects.select_for_update().select_related("registry", "registry__owner").get(pk=record.pk)


def _refresh_instance(target: Record, source: Record) -> None:
    """Copy the stored state of ``source`` onto the caller's instance."""
    for attr in ("schema_version", "data", "sealed", "division_code", "version", "updated_at", "deleted_at"):
        setattr(target, attr, getattr(source, attr))


def _apply(
    record: Record,
    changes: dict,
    *,
    fields: dict[str, FieldDef],
    department: Organization,
    actor,
    reason: str,
    kind: str,
) -> dict:
    """Write cleaned changes to a locked record: history row, values, keys, version; returns {field: [old, new]}."""
    registry = record.registry
    current = record_values_now(record)
    diff = {name: [current.get(name), value] for name, value in changes.items() if current.get(name) != value}
    if not diff:
        return {}
    # Unique keys of changed fields must not clash with another record.
    key_fields = [field for field in _key_fields(fields.values()) if field.name in diff]
    new_values = {name: pair[1] for name, pair in diff.items()}
    keys = _key_rows(registry, key_fields, new_values)
    errors = {}
    for name, digest, unique in keys:
        if unique and _existing_unique(registry, name, [digest], exclude_record=record.pk):
            errors[name] = [_duplicate_message(fields[name])]
    errors.update(_reference_errors(fields, {k: v for k, v in new_values.items() if v is not None}))
    if errors:
        raise RecordValidationError(errors)
    now = timezone.now()
    public_diff, personal_diff = _split(fields, diff)
    RecordChange.objects.create(
        record=record,
        kind=kind,
        changes=public_diff,
        sealed=_dumps(personal_diff),
        source=department,
        actor=_actor_label(actor),
        reason=reason,
        at=now,
    )
    values = {**current, **new_values}
    values = {name: value for name, value in values.items() if value is not None}
    public, personal = _split(fields, values)
    record.data = public
    record.sealed = _dumps(personal)
    record.division_code = _division_of(registry, values)
    record.version += 1
    record.updated_at = now
    stored_version_fields = field_map(registry_fields(registry, record.schema_version))
    if any(name not in stored_version_fields for name in diff):
        record.schema_version = _current_version(registry)
    record.save(update_fields=["data", "sealed", "division_code", "version", "updated_at", "schema_version"])
    if key_fields:
        RecordKey.objects.filter(record=record, field__in=[f.name for f in key_fields]).delete()
        _insert_keys(registry, record, keys, fields)
    return diff


def _refused_update(
    registry: Registry, department: Organization | None, record: Record, current: dict, changing: dict
) -> tuple[list[str], tuple]:
    """The changed fields the department may not write on the record, and the record states judged.

    Division scope covers the record's division and, when it changes, the new one; conditional
    authority covers the record's discriminator value and, when it changes, the new one.
    """
    if department is None:
        return sorted(changing), ()
    check = _WriteCheck(registry, department)
    divisions = [record.division_code]
    if registry.scope_field in changing:
        divisions.append(str(changing[registry.scope_field] or ""))
    states = (current, {**current, **changing}) if check.rule_field is not None else ()
    return check.refused(changing, *divisions, values=states), states


def refused_changes(record: Record, changes: dict, *, department: Organization | None) -> list[str]:
    """The fields among cleaned ``changes`` that ``department`` may not write on ``record`` (unchanged values ignored).

    Judged like :func:`update_record` does: authority and delegations, the old and new division,
    and conditional authority under the old and new discriminator value.
    """
    current = record_values_now(record)
    changing = {name: value for name, value in changes.items() if current.get(name) != value}
    return _refused_update(record.registry, department, record, current, changing)[0]


def update_record(
    record: Record,
    changes: dict,
    *,
    actor,
    source: Organization | None = None,
    reason: str = "",
    expected_version: int | None = None,
    non_authoritative: str = "refuse",
) -> Record:
    """Change fields of a record as the source department; non-authoritative fields are refused, observed or filed.

    ``non_authoritative``: ``"refuse"`` raises NotAuthoritative (audited as denied) if any changed
    field is not the source's; ``"observe"`` applies the authoritative fields and keeps the others
    as Observations; ``"correct"`` applies the authoritative ones and files CorrectionRequests for
    the others. ``expected_version`` enables optimistic concurrency (VersionConflict on mismatch).
    """
    if non_authoritative not in ("refuse", "observe", "correct"):
        raise ValueError(f"non_authoritative must be refuse, observe or correct, not {non_authoritative!r}")
    registry = record.registry
    department = _resolve_source(actor, source)
    fields = field_map(registry_fields(registry))
    cleaned = compile_cleaner(tuple(fields.values()))(changes, True)
    try:
        with transaction.atomic():
            locked = _lock(record)
            if locked.deleted_at is not None:
                raise RecordDeleted(_("记录已删除，不能修改"), code="deleted")
            if expected_version is not None and int(expected_version) != locked.version:
                raise VersionConflict(int(expected_version), locked.version)
            current = record_values_now(locked)
            changing = {name: value for name, value in cleaned.items() if current.get(name) != value}
            if not changing:
                _refresh_instance(record, locked)
                return record
            refused, states = _refused_update(registry, department, locked, current, changing)
            if refused and (non_authoritative == "refuse" or department is None and non_authoritative == "observe"):
                raise NotAuthoritative(refused, department, registry=registry, states=states)
            allowed = {name: value for name, value in changing.items() if name not in refused}
            diff = {}
            if allowed:
                diff = _apply(
                    locked, allowed, fields=fields, department=department, actor=actor, reason=reason, kind="update"
                )
                audit.record(
                    "registry.record.update",
                    actor=_audit_actor(actor),
                    target=locked,
                    detail={
                        "registry": registry.code,
                        "source": department.code,
                        "fields": sorted(diff),
                        "version": locked.version,
                    },
                )
                _announce("registry.record.updated", registry, locked, diff)
            for name in refused:
                if non_authoritative == "observe":
                    _observe(locked, fields[name], changing[name], department=department, actor=actor)
                else:
                    _file_correction(
                        locked,
                        fields[name],
                        changing[name],
                        department=department,
                        actor=actor,
                        reason=reason or _("非权威来源提交的更新"),
                    )
            _refresh_instance(record, locked)
    except NotAuthoritative as exc:
        _audit_denial("registry.record.update", actor=actor, target=record, exc=exc, registry=registry)
        raise
    return record


def update_or_create_record(
    registry: Registry, key: dict, values: dict, *, actor, source: Organization | None = None
) -> tuple[Record, bool]:
    """Update the record found by ``key`` (one identifier/lookup field) or create it; (record, created)."""
    if not isinstance(key, dict) or len(key) != 1:
        raise RecordValidationError({"key": [_("查找条件应恰好包含一个检索字段")]})
    ((name, value),) = key.items()
    record = find_record(registry, name, value)
    if record is not None:
        changes = {k: v for k, v in values.items() if k != name}
        return update_record(record, changes, actor=actor, source=source), False
    merged = {**values, name: value}
    try:
        return create_record(registry, merged, actor=actor, source=source), True
    except RecordValidationError as exc:
        # A concurrent writer created it between our lookup and insert: update that one instead.
        record = find_record(registry, name, value)
        if record is None or name not in exc.errors:
            raise
        changes = {k: v for k, v in values.items() if k != name}
        return update_record(record, changes, actor=actor, source=source), False


def _may_delete(registry: Registry, department: Organization | None, record: Record) -> bool:
    """Deleting is for the owner or the identifier field's authority (within the division scope; the
    record's conditional authority rule applies)."""
    if department is None:
        return False
    if department.pk == registry.owner_id:
        return True
    return can_write(registry, registry.identifier_field, department, record=record)


def _set_deleted(locked: Record, kind: str, *, department, actor, reason: str) -> None:
    """Soft-delete (kind DELETE) or restore (kind RESTORE) a locked record and write its history entry."""
    now = timezone.now()
    RecordChange.objects.create(
        record=locked, kind=kind, source=department, actor=_actor_label(actor), reason=reason, at=now
    )
    locked.deleted_at = now if kind == RecordChange.Kind.DELETE else None
    locked.updated_at = now
    locked.version += 1
    locked.save(update_fields=["deleted_at", "updated_at", "version"])


def delete_record(record: Record, *, actor, source: Organization | None = None, reason: str) -> Record:
    """Soft-delete a record (owner or identifier authority only); frees its unique values. Audited."""
    registry = record.registry
    department = _resolve_source(actor, source)
    if not (reason or "").strip():
        raise ValidationError(_("删除记录须说明原因"), code="reason")
    try:
        with transaction.atomic():
            locked = _lock(record)
            if locked.deleted_at is not None:
                raise RecordDeleted(_("记录已删除"), code="deleted")
            if not _may_delete(registry, department, locked):
                raise NotAuthoritative(
                    [registry.identifier_field],
                    department,
                    registry=registry,
                    message=_("只有牵头部门或标识字段的权威来源可以删除记录"),
                )
            _set_deleted(locked, RecordChange.Kind.DELETE, department=department, actor=actor, reason=reason)
            RecordKey.objects.filter(record=locked).delete()
            audit.record(
                "registry.record.delete",
                actor=_audit_actor(actor),
                target=locked,
                detail={"registry": registry.code, "source": department.code, "reason": reason[:200]},
            )
            _announce("registry.record.deleted", registry, locked, [])
            _refresh_instance(record, locked)
    except NotAuthoritative as exc:
        _audit_denial("registry.record.delete", actor=actor, target=record, exc=exc, registry=registry)
        raise
    return record


def restore_record(record: Record, *, actor, source: Organization | None = None, reason: str) -> Record:
    """Undo a soft delete (same rights as deleting); its unique values must still be free. Audited."""
    registry = record.registry
    department = _resolve_source(actor, source)
    if not (reason or "").strip():
        raise ValidationError(_("恢复记录须说明原因"), code="reason")
    fields = field_map(registry_fields(registry))
    try:
        with transaction.atomic():
            locked = _lock(record)
            if locked.deleted_at is None:
                raise ValidationError(_("记录未被删除"), code="not_deleted")
            if not _may_delete(registry, department, locked):
                raise NotAuthoritative(
                    [registry.identifier_field],
                    department,
                    registry=registry,
                    message=_("只有牵头部门或标识字段的权威来源可以恢复记录"),
                )
            values = record_values_now(locked)
            keys = _key_rows(registry, _key_fields(fields.values()), values)
            errors = {
                name: [_duplicate_message(fields[name])]
                for name, digest, unique in keys
                if unique and _existing_unique(registry, name, [digest], exclude_record=locked.pk)
            }
            if errors:
                raise RecordValidationError(errors)
            _set_deleted(locked, RecordChange.Kind.RESTORE, department=department, actor=actor, reason=reason)
            _insert_keys(registry, locked, keys, fields)
            audit.record(
                "registry.record.restore",
                actor=_audit_actor(actor),
                target=locked,
                detail={"registry": registry.code, "source": department.code, "reason": reason[:200]},
            )
            _announce("registry.record.restored", registry, locked, [])
            _refresh_instance(record, locked)
    except NotAuthoritative as exc:
        _audit_denial("registry.record.restore", actor=actor, target=record, exc=exc, registry=registry)
        raise
    return record


# --- Reading: values, as-of, history, access log ------------------------------------------------------------


def _change_pairs(change: RecordChange) -> dict:
    """All {field: [old, new]} of a change, personal ones decrypted."""
    pairs = dict(change.changes or {})
    if change.sealed:
        pairs.update(json.loads(change.sealed))
    return pairs


def _as_moment(as_of) -> datetime.datetime:
    """A datetime for ``as_of``: a date means the end of that day in the platform time zone."""
    if isinstance(as_of, datetime.datetime):
        return as_of if timezone.is_aware(as_of) else timezone.make_aware(as_of)
    if isinstance(as_of, datetime.date):
        return timezone.make_aware(datetime.datetime.combine(as_of, datetime.time.max))
    if isinstance(as_of, str):
        try:
            return _as_moment(datetime.datetime.fromisoformat(as_of))
        except ValueError:
            raise ValidationError(_("时间“%(value)s”格式无效") % {"value": as_of[:40]}, code="as_of") from None
    raise TypeError("as_of must be a datetime, a date or an ISO string")


def record_values(record: Record, *, as_of=None) -> dict | None:
    """The record's decrypted values now (deleted or not), or as of a moment (None if it did not exist then)."""
    values = record_values_now(record)
    if as_of is None:
        return values
    moment = _as_moment(as_of)
    if moment < record.created_at:
        return None
    changes = list(record.changes.order_by("at", "id"))
    existed = True
    for change in changes:
        if change.at <= moment and change.kind in (RecordChange.Kind.DELETE, RecordChange.Kind.RESTORE):
            existed = change.kind == RecordChange.Kind.RESTORE
    if not existed:
        return None
    for change in reversed(changes):
        if change.at <= moment:
            break
        for name, (old, _new) in _change_pairs(change).items():
            if old is None:
                values.pop(name, None)
            else:
                values[name] = old
    return values


def history(record: Record, *, mask: bool = True) -> list[dict]:
    """The record's history, oldest first: creation then every change, personal values masked by default.

    Each entry: ``{"kind", "at", "source", "source_code", "actor", "reason", "changes": {field: [old, new]}}``;
    the creation entry (kind ``create``) lists every initial value as ``[None, value]``.
    """
    registry = record.registry
    fields = field_map(registry_fields(registry))
    changes = list(record.changes.select_related("source").order_by("at", "id"))
    values = record_values_now(record)
    entries = []
    for change in reversed(changes):
        pairs = _change_pairs(change)
        for name, (old, _new) in pairs.items():
            if old is None:
                values.pop(name, None)
            else:
                values[name] = old
        entries.append(
            {
                "kind": change.kind,
                "at": change.at,
                "source": change.source.name,
                "source_code": change.source.code,
                "actor": change.actor,
                "reason": change.reason,
                "changes": pairs,
            }
        )
    creator = record.created_by_org
    entries.append(
        {
            "kind": "create",
            "at": record.created_at,
            "source": creator.name,
            "source_code": creator.code,
            "actor": record.created_by,
            "reason": "",
            "changes": {name: [None, value] for name, value in values.items()},
        }
    )
    entries.reverse()
    if mask:
        for entry in entries:
            entry["changes"] = {
                name: [_masked(fields.get(name), old), _masked(fields.get(name), new)]
                for name, (old, new) in entry["changes"].items()
            }
    return entries


def _masked(field: FieldDef | None, value):
    """A personal value masked; others unchanged."""
    if field is None or not field.is_personal or value is None:
        return value
    return mask_value(field, value)


def _subject_digest(registry: Registry, fields: dict[str, FieldDef], values: dict) -> str:
    """The blind index of the record's identifier when it identifies a person or an organization."""
    identifier = fields.get(registry.identifier_field)
    value = values.get(registry.identifier_field) if identifier is not None else None
    if identifier is None or identifier.type not in ("resident_id", "uscc") or not value:
        return ""
    return blind_index(str(value), purpose=identifier.type)


def read_record(
    record: Record,
    *,
    actor,
    purpose: str = "",
    fields: Iterable[str] | None = None,
    channel: str = "web",
    unmask: bool = False,
    as_of=None,
) -> dict:
    """Read a record for an authorized reader, log the read (AccessLog) and mask personal values unless ``unmask``."""
    registry = record.registry
    try:
        department = check_read(registry, actor=actor, division_code=record.division_code)
    except PermissionDenied as exc:
        _audit_denial("registry.record.read", actor=actor, target=record, exc=exc, registry=registry)
        raise
    values = record_values(record, as_of=as_of)
    if values is None or (as_of is None and record.deleted_at is not None):
        raise RecordNotFound(_("记录不存在或在该时间尚未建立"))
    version_fields = field_map(registry_fields(registry))
    if fields is not None:
        wanted = list(fields)
        unknown = [name for name in wanted if name not in version_fields]
        if unknown:
            raise RecordValidationError({name: [_("未知字段“%(field)s”") % {"field": name}] for name in unknown})
        values = {name: values[name] for name in wanted if name in values}
    shown = values if unmask else {name: _masked(version_fields.get(name), v) for name, v in values.items()}
    entry = access_log_entry(
        registry,
        record_id=record.pk,
        values=record_values_now(record),
        actor=actor,
        purpose=purpose,
        channel=channel or "web",
        fields=sorted(values) if not unmask else sorted(values) + ["<unmasked>"],
        department=department,
    )
    entry.save()
    return {
        "uid": str(record.uid),
        "registry": registry.code,
        "version": record.version,
        "schema_version": record.schema_version,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "deleted_at": record.deleted_at,
        "values": shown,
    }


def access_log_entry(
    registry: Registry,
    *,
    record_id: int,
    values: dict,
    actor,
    purpose: str = "",
    channel: str = "api",
    fields: list[str],
    department: Organization | None = None,
) -> ReadLog:
    """The access-log row of one read (not yet stored): the record's current ``values`` give the subject's index.

    ``department`` defaults to the actor's; the caller stores the row (``.save()``, or the
    journal of :mod:`dgov.registry.accesslog`) before the data leaves.
    """
    organization = department if department is not None else department_of(actor)
    return ReadLog(
        registry_id=registry.pk,
        record_id=record_id,
        subject_digest=_subject_digest(registry, field_map(registry_fields(registry)), values),
        reader_org_id=organization.pk if organization is not None else None,
        reader=_actor_label(actor),
        channel=(channel or "api")[:16],
        purpose=(purpose or "")[:255],
        fields=list(fields),
        at=timezone.now(),
    )


def log_reads(
    records: Iterable[Record], *, actor, purpose: str = "", channel: str = "api", fields: Iterable[str] | None = None
) -> int:
    """Record reads of many records at once (list and search results); returns the number of rows logged."""
    department = department_of(actor)
    wanted = list(fields) if fields is not None else None
    rows = []
    for record in records:
        values = record_values_now(record)
        shown = sorted(name for name in (wanted if wanted is not None else values) if name in values)
        entry = access_log_entry(
            record.registry,
            record_id=record.pk,
            values=values,
            actor=actor,
            purpose=purpose,
            channel=channel,
            fields=shown,
            department=department,
        )
        rows.append(AccessLog(**entry._asdict()))
    AccessLog.objects.bulk_create(rows, batch_size=500)
    return len(rows)


def access_log_for_subject(value: str, *, kind: str = "resident_id") -> QuerySet[AccessLog]:
    """Reads of records identifying this person (resident ID) or organization (USCC), newest first."""
    if kind not in ("resident_id", "uscc"):
        raise ValueError("kind must be resident_id or uscc")
    return access_log_for_digest(blind_index(str(value), purpose=kind))


def access_log_for_digest(digest: str) -> QuerySet[AccessLog]:
    """Reads of records whose subject has this blind index (a verified account's own), newest first."""
    return (
        AccessLog.objects.filter(subject_digest=digest)
        .select_related("registry", "reader_org", "record")
        .order_by("-at", "-id")
    )


def subject_digest_of_account(user) -> str:
    """The blind index of the person or enterprise a verified account stands for ("" if not verified).

    Person accounts use their verified resident ID (level 2 and up); enterprise accounts their
    verified USCC. It matches ``AccessLog.subject_digest`` of reads of their records.
    """
    if getattr(user, "real_name_level", 1) < 2:
        return ""
    uscc = getattr(user, "enterprise_uscc", "")
    if getattr(user, "kind", "") == "enterprise":
        return blind_index(uscc, purpose="uscc") if uscc else ""
    return getattr(user, "id_number_digest", "") or ""


# --- Finding and searching ----------------------------------------------------------------------------------


def find_records(registry: Registry, field: str, value) -> QuerySet[Record]:
    """The live records whose identifier/unique/lookup ``field`` equals ``value`` (via its blind index), by id."""
    fields = field_map(registry_fields(registry))
    definition = fields.get(field)
    if definition is None or not (definition.unique or definition.lookup):
        raise RecordValidationError({field: [_("字段“%(field)s”不是检索字段") % {"field": field}]})
    try:
        cleaned = clean_value(definition, value)
    except RecordValidationError:
        return Record.objects.none()  # a value that cannot be valid cannot be stored either
    if cleaned is None:
        return Record.objects.none()
    digest = _digest(registry, definition, cleaned)
    return (
        Record.objects.filter(
            registry=registry,
            deleted_at__isnull=True,
            keys__registry=registry,
            keys__field=field,
            keys__digest=digest,
        )
        .select_related("registry", "created_by_org")
        .order_by("id")
    )


def find_record(registry: Registry, field: str, value) -> Record | None:
    """The live record whose identifier/unique/lookup ``field`` equals ``value`` (via its blind index)."""
    return find_records(registry, field, value).first()


_OPERATORS = ("exact", "gte", "lte", "gt", "lt", "contains", "icontains", "in")


def _filter_q(registry: Registry, fields: dict[str, FieldDef], spec: str, value) -> Q:
    """A Q object for one ``field[__op]`` filter on public values (personal: exact keys only)."""
    name, _sep, op = spec.partition("__")
    op = op or "exact"
    field = fields.get(name)
    if field is None:
        raise RecordValidationError({spec: [_("未知字段“%(field)s”") % {"field": name}]})
    if op not in _OPERATORS:
        raise RecordValidationError({spec: [_("不支持的筛选方式“%(op)s”") % {"op": op}]})
    values = list(value) if op == "in" and isinstance(value, list | tuple) else None
    if field.is_personal:
        if op not in ("exact", "in") or not (field.unique or field.lookup):
            raise RecordValidationError({spec: [_("个人信息字段只能按检索字段精确查找")]})
        candidates = values if values is not None else [value]
        digests = []
        for candidate in candidates:
            try:
                cleaned = clean_value(field, candidate)
            except RecordValidationError:
                continue
            if cleaned is not None:
                digests.append(_digest(registry, field, cleaned))
        return Q(pk__in=RecordKey.objects.filter(registry=registry, field=name, digest__in=digests).values("record_id"))
    if op in ("contains", "icontains"):
        return _text_q(name, op, str(value))

    def coerce(raw):
        try:
            return clean_value(field, raw)
        except RecordValidationError as exc:
            raise RecordValidationError({spec: sum(exc.errors.values(), [])}) from None

    if op == "in":
        return Q(**{f"data__{name}__in": [coerce(item) for item in (values or [value])]})
    cleaned = coerce(value)
    if op == "exact":
        if cleaned is None:
            return Q(**{f"data__{name}__isnull": True}) | Q(**{f"data__{name}": None})
        return Q(**{f"data__{name}": cleaned})
    if field.type == "decimal":
        return Q(**{f"_dec_{name}__{op}": cleaned})
    return Q(**{f"data__{name}__{op}": cleaned})


def _text_q(name: str, op: str, text: str) -> Q:
    """Substring match on the text of a JSON value (annotated as ``_txt_<name>``)."""
    return Q(**{f"_txt_{name}__{op}": text})


def search_records(
    registry: Registry,
    *,
    filters: dict | None = None,
    query: str = "",
    order_by: str = "",
    offset: int = 0,
    limit: int = 50,
    division_code: str = "",
) -> tuple[list[Record], int]:
    """Live records matching filters (``field`` or ``field__op``), a text query and a division.

    Operators: ``gte``, ``lte``, ``gt``, ``lt``, ``contains``, ``icontains``, ``in`` (exact without one).

    Filters on personal fields work only as exact matches on key fields (through the blind index).
    ``query`` is a case-insensitive substring over public string fields. ``order_by`` is a public
    field name, ``created_at``, ``updated_at`` or ``uid``, optionally prefixed with ``-``. Returns
    (page of records, total count).
    """
    fields = field_map(registry_fields(registry))
    qs = Record.objects.filter(registry=registry, deleted_at__isnull=True)
    if division_code:
        qs = qs.filter(division_code__startswith=scope_prefix(division_code))
    annotations = {}
    conditions = Q()
    for spec, value in (filters or {}).items():
        name, _sep, op = spec.partition("__")
        if name in fields and not fields[name].is_personal:
            if op in ("contains", "icontains"):
                annotations[f"_txt_{name}"] = KT(f"data__{name}")
            elif op in ("gt", "gte", "lt", "lte") and fields[name].type == "decimal":
                annotations[f"_dec_{name}"] = Cast(KT(f"data__{name}"), DecimalField(max_digits=38, decimal_places=10))
        conditions &= _filter_q(registry, fields, spec, value)
    text = (query or "").strip()
    if text:
        searchable = [f.name for f in fields.values() if not f.is_personal and f.type in ("string", "text", "enum")]
        match = Q(pk__in=[])
        for name in searchable:
            annotations[f"_txt_{name}"] = KT(f"data__{name}")
            match |= Q(**{f"_txt_{name}__icontains": text})
        conditions &= match
    if annotations:
        qs = qs.annotate(**annotations)
    qs = qs.filter(conditions)
    ordering = _ordering(fields, order_by)
    total = qs.count()
    offset = max(0, int(offset))
    limit = max(0, min(int(limit), MAX_PAGE))
    page = list(qs.order_by(*ordering).select_related("registry", "created_by_org")[offset : offset + limit])
    return page, total


def _ordering(fields: dict[str, FieldDef], order_by: str) -> list:
    """ORDER BY expressions for ``order_by`` (with the id as tie-breaker)."""
    spec = (order_by or "").strip()
    if not spec:
        return ["id"]
    descending = spec.startswith("-")
    name = spec.lstrip("-")
    if name in ("created_at", "updated_at", "uid", "version"):
        return [f"-{name}" if descending else name, "-id" if descending else "id"]
    field = fields.get(name)
    if field is None:
        raise RecordValidationError({"order_by": [_("未知字段“%(field)s”") % {"field": name}]})
    if field.is_personal:
        raise RecordValidationError({"order_by": [_("不能按个人信息字段排序")]})
    expression = KeyTransform(name, "data")
    if field.type == "decimal":
        expression = Cast(KT(f"data__{name}"), DecimalField(max_digits=38, decimal_places=10))
    ordered = expression.desc(nulls_last=True) if descending else expression.asc(nulls_last=True)
    return [ordered, "-id" if descending else "id"]


# --- Corrections, observations, delegations -----------------------------------------------------------------


def _observe(record: Record, field: FieldDef, value, *, department: Organization, actor) -> Observation:
    """Store a non-authoritative value beside the record (inside the caller's transaction); audited."""
    observation = Observation.objects.create(
        record=record,
        field=field.name,
        value=json.dumps(value, ensure_ascii=False),
        source=department,
        actor=_actor_label(actor),
        observed_at=timezone.now(),
    )
    audit.record(
        "registry.observation.create",
        actor=_audit_actor(actor),
        target=observation,
        detail={
            "registry": record.registry.code,
            "uid": str(record.uid),
            "field": field.name,
            "source": department.code,
        },
    )
    events.publish(
        "registry.observation.created",
        {"registry": record.registry.code, "uid": str(record.uid), "field": field.name, "source": department.code},
        aggregate=f"registry:{record.registry.code}",
        aggregate_id=str(record.uid),
    )
    return observation


def add_observation(record: Record, field: str, value, *, actor, source: Organization | None = None) -> Observation:
    """Keep a department's (non-authoritative) value of a field beside the record's own value."""
    department = _resolve_source(actor, source)
    if department is None:
        raise NotAuthoritative([field], None, registry=record.registry)
    definition = field_map(registry_fields(record.registry)).get(field)
    if definition is None:
        raise RecordValidationError({field: [_("未知字段“%(field)s”") % {"field": field}]})
    cleaned = clean_value(definition, value)
    if cleaned is None:
        raise RecordValidationError({field: [_("%(field)s：观测值不能为空") % {"field": definition.label}]})
    with transaction.atomic():
        return _observe(record, definition, cleaned, department=department, actor=actor)


def _file_correction(
    record: Record, field: FieldDef, value, *, department: Organization | None, actor, reason: str
) -> CorrectionRequest:
    """Create a pending correction request (inside the caller's transaction); audited."""
    now = timezone.now()
    request = CorrectionRequest.objects.create(
        record=record,
        field=field.name,
        proposed_value=json.dumps(value, ensure_ascii=False),
        reason=reason,
        submitted_by_org=department,
        submitted_by=_actor_label(actor),
        submitted_at=now,
        due_on=add_working_days(timezone.localdate(now), CORRECTION_DAYS),
    )
    audit.record(
        "registry.correction.submit",
        actor=_audit_actor(actor),
        target=request,
        detail={
            "registry": record.registry.code,
            "uid": str(record.uid),
            "field": field.name,
            "source": department.code if department is not None else "",
        },
    )
    events.publish(
        "registry.correction.submitted",
        {"registry": record.registry.code, "uid": str(record.uid), "field": field.name, "request": request.pk},
        aggregate=f"registry:{record.registry.code}",
        aggregate_id=str(record.uid),
    )
    return request


def submit_correction(
    record: Record, field: str, value, *, actor, reason: str, source: Organization | None = None
) -> CorrectionRequest:
    """File a correction (纠错) of one field for its authority to decide within CORRECTION_DAYS working days."""
    if not (reason or "").strip():
        raise ValidationError(_("纠错须说明理由"), code="reason")
    if record.deleted_at is not None:
        raise RecordDeleted(_("记录已删除，不能纠错"), code="deleted")
    definition = field_map(registry_fields(record.registry)).get(field)
    if definition is None:
        raise RecordValidationError({field: [_("未知字段“%(field)s”") % {"field": field}]})
    cleaned = compile_cleaner((definition,))({field: value}, True).get(field)
    department = _resolve_source(actor, source)
    with transaction.atomic():
        return _file_correction(record, definition, cleaned, department=department, actor=actor, reason=reason.strip())


def decide_correction(
    request: CorrectionRequest, *, accept: bool, actor, note: str = "", source: Organization | None = None
) -> CorrectionRequest:
    """Accept (apply the value as a correction change) or reject a pending request; field authority only."""
    department = _resolve_source(actor, source)
    record = request.record
    registry = record.registry
    fields = field_map(registry_fields(registry))
    try:
        with transaction.atomic():
            locked_request = CorrectionRequest.objects.select_for_update().get(pk=request.pk)
            if locked_request.status != CorrectionRequest.Status.PENDING:
                raise ValidationError(_("该纠错申请已处理"), code="decided")
            locked = _lock(record)
            field = fields[locked_request.field]
            divisions = [locked.division_code]
            value = json.loads(locked_request.proposed_value)
            if accept and field.name == registry.scope_field:
                divisions.append(str(value or ""))
            check = _WriteCheck(registry, department) if department is not None else None
            states = ()
            if check is not None and check.rule_field is not None:
                current = record_values_now(locked)
                states = (current, {**current, field.name: value}) if accept else (current,)
            if check is None or check.refused([field.name], *divisions, values=states):
                raise NotAuthoritative([field.name], department, registry=registry, states=states)
            if accept:
                if locked.deleted_at is not None:
                    raise RecordDeleted(_("记录已删除，不能采纳纠错"), code="deleted")
                reason = locked_request.reason if not note else f"{locked_request.reason}（{note}）"
                diff = _apply(
                    locked,
                    {field.name: value},
                    fields=fields,
                    department=department,
                    actor=actor,
                    reason=reason,
                    kind=RecordChange.Kind.CORRECTION,
                )
                if diff:
                    _announce("registry.record.updated", registry, locked, diff)
                _refresh_instance(record, locked)
            locked_request.status = CorrectionRequest.Status.ACCEPTED if accept else CorrectionRequest.Status.REJECTED
            locked_request.decided_by_org = department
            locked_request.decided_by = _actor_label(actor)
            locked_request.decided_at = timezone.now()
            locked_request.decision_note = note
            locked_request.save(update_fields=["status", "decided_by_org", "decided_by", "decided_at", "decision_note"])
            audit.record(
                "registry.correction.accept" if accept else "registry.correction.reject",
                actor=_audit_actor(actor),
                target=locked_request,
                detail={
                    "registry": registry.code,
                    "uid": str(record.uid),
                    "field": field.name,
                    "source": department.code,
                },
            )
            events.publish(
                "registry.correction.decided",
                {
                    "registry": registry.code,
                    "uid": str(record.uid),
                    "field": field.name,
                    "request": locked_request.pk,
                    "accepted": bool(accept),
                },
                aggregate=f"registry:{registry.code}",
                aggregate_id=str(record.uid),
            )
    except NotAuthoritative as exc:
        _audit_denial("registry.correction.decide", actor=actor, target=request, exc=exc, registry=registry)
        raise
    for attr in ("status", "decided_by_org", "decided_by", "decided_at", "decision_note"):
        setattr(request, attr, getattr(locked_request, attr))
    return request


def delegate_field(registry: Registry, field: str, delegate: Organization, *, actor, valid_until=None) -> Delegation:
    """Let another department write a field (or ``*``: every field) on the granting authority's behalf."""
    grantor = department_of(actor)
    fields = field_map(registry_fields(registry))
    if field != "*" and field not in fields:
        raise RecordValidationError({field: [_("未知字段“%(field)s”") % {"field": field}]})
    if valid_until is not None and valid_until <= timezone.now():
        raise ValidationError(_("委托有效期应晚于当前时间"), code="valid_until")
    targets = list(fields.values()) if field == "*" else [fields[field]]
    authority = ""
    if grantor is not None:
        for definition in targets:
            tokens = _authorities(registry, definition)
            if grantor.kind and grantor.kind in tokens:
                authority = grantor.kind
                break
            if grantor.code in tokens:
                authority = grantor.code
                break
    try:
        if not authority:
            raise NotAuthoritative(
                [field],
                grantor,
                registry=registry,
                message=_("只有字段的权威来源可以委托他人写入"),
            )
    except NotAuthoritative as exc:
        _audit_denial("registry.delegation.create", actor=actor, target=registry, exc=exc, registry=registry)
        raise
    with transaction.atomic():
        delegation = Delegation.objects.create(
            registry=registry,
            field=field,
            authority=authority,
            delegate=delegate,
            valid_until=valid_until,
            created_by=_actor_label(actor),
        )
        audit.record(
            "registry.delegation.create",
            actor=_audit_actor(actor),
            target=delegation,
            detail={
                "registry": registry.code,
                "field": field,
                "authority": authority,
                "delegate": delegate.code,
                "valid_until": valid_until.isoformat() if valid_until else None,
            },
        )
    return delegation


def revoke_delegation(delegation: Delegation, *, actor) -> Delegation:
    """End a delegation now (the granting authority or an administrator). Audited."""
    grantor = department_of(actor)
    allowed = is_admin(actor) or (grantor is not None and _matches(grantor, [delegation.authority]))
    if not allowed:
        raise PermissionDenied(_("只有委托方可以撤销委托"))
    with transaction.atomic():
        if delegation.revoked_at is None:
            delegation.revoked_at = timezone.now()
            delegation.save(update_fields=["revoked_at"])
        audit.record(
            "registry.delegation.revoke",
            actor=_audit_actor(actor),
            target=delegation,
            detail={
                "registry": delegation.registry.code,
                "field": delegation.field,
                "delegate": delegation.delegate.code,
            },
        )
    return delegation
