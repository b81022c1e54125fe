"""Data quality services (数据质量): rules as data, runs with DuckDB, scores per dimension, registry, department.

Who may do what
    * **Rules and runs** are managed by the provincial data administrators (officials of the
      provincial 大数据局, department kind ``DSJ``), platform administrators and the operator's CLI
      (``system:cli``). **Custom SQL rules** only by platform administrators and the CLI: a query
      is powerful even read-only, so it stays with those who already hold the whole platform.
    * **Results and scores** of a registry are read by whoever may read the registry
      (:func:`dgov.registry.services.can_read`: the owner, the authoritative departments, delegates,
      data administrators) and by platform administrators; failing-row samples are limited to the
      reader's division scope (:func:`dgov.registry.services.reader_scope`). A **department
      scorecard** is read by the department itself, data administrators whose division covers it
      and platform administrators.

Rule ownership (一数一源): a rule's owner is the department that must fix what it finds — the
field's authoritative source. Unless a rule names its ``owner``, it is the department named by the
first field's ``authority`` (a department code, or the kind of department: the registry owner when
it is of that kind, else the active department of that kind at the owner's division, else of the
province), the registry owner for fields without authority, and the provider for a catalogue
resource's rules without fields.

A run (:func:`run_registry`, :func:`request_run` + :func:`execute_run`) loads the registry's live
records into DuckDB (:mod:`dgov.quality.extract`), compiles every enabled rule of the registry
(:mod:`dgov.quality.rules`), evaluates them in one query (:mod:`dgov.quality.engine`), masks the
personal values of the samples, and stores the results with the run's scores in one transaction.
A failing run records its error and leaves earlier results as they were: scores always come from
each registry's latest **successful** run. Every change is audited (``quality.rule.*``,
``quality.rules.load``, ``quality.run.*``); a finished run also puts ``quality.run.finished`` into
the outbox.
"""

from __future__ import annotations

import datetime
import logging
import re
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from dgov.catalog import services as catalog_services
from dgov.catalog.models import InformationResource, ResourceVersion
from dgov.kernel.models import Organization
from dgov.kernel.services import audit, events
from dgov.kernel.services.divisions import scope_prefix
from dgov.quality import engine, extract, scoring
from dgov.quality.io import LoadReport
from dgov.quality.models import Dimension, QualityRule, QualityRun, RuleResult, Severity
from dgov.quality.rules import RULE_TYPES, Check, Context, RuleError, RuleSpec, canonical_type, compile_rule, quote
from dgov.registry import services as registry_services
from dgov.registry.models import Registry
from dgov.registry.schema import FieldDef, SchemaError, field_map, mask_value

logger = logging.getLogger(__name__)

__all__ = [
    "DATA_ADMIN_KIND",
    "RULE_KEYS",
    "Scorecard",
    "can_view_department",
    "can_view_registry",
    "department_scorecard",
    "department_scores",
    "execute_run",
    "find_resource",
    "latest_run",
    "latest_runs",
    "load_rules",
    "may_manage_rules",
    "may_write_sql",
    "registry_scores",
    "request_run",
    "resource_score",
    "resource_scores",
    "resource_target",
    "rule_type_choices",
    "run_registry",
    "run_samples",
    "sample_prefix",
    "set_rule_enabled",
    "start_run",
    "visible_registries",
    "visible_samples",
]

DATA_ADMIN_KIND = registry_services.DATA_ADMIN_KIND  # 大数据局
DEFAULT_SAMPLES = 20
WORKER_ACTOR = "system:quality-worker"  # queued runs executed by `dgov worker` (the requester is on the run)
MAX_SAMPLES = 200
SEVERITY_WEIGHTS = {Severity.HIGH: 3, Severity.MEDIUM: 2, Severity.LOW: 1}
RULE_KEYS = frozenset(
    {
        "code",
        "name",
        "description",
        "registry",
        "resource",
        "fields",
        "field",
        "type",
        "params",
        "sql",
        "dimension",
        "severity",
        "weight",
        "enabled",
        "owner",
    }
)
_CODE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
_DIMENSION_BY_LABEL = {str(label): value for value, label in Dimension.choices}
_SEVERITY_BY_LABEL = {str(label): value for value, label in Severity.choices}


# --- Actors and permissions ---------------------------------------------------------------------------------


def _is_system(actor) -> bool:
    """The CLI or another system actor (a ``kind:label`` string): the operator holding the platform."""
    return isinstance(actor, str)


def _is_provincial_data_admin(actor) -> bool:
    """An official of the provincial 大数据局 (people only, not API clients)."""
    if not getattr(actor, "is_authenticated", False) or hasattr(actor, "client_id"):
        return False
    department = registry_services.department_of(actor)
    return bool(
        department is not None
        and department.is_active
        and department.kind == DATA_ADMIN_KIND
        and department.level == Organization.Level.PROVINCE
    )


def may_manage_rules(actor) -> bool:
    """Whether the actor may change rules and start runs: CLI, platform administrators, provincial DSJ officials."""
    return _is_system(actor) or registry_services.is_admin(actor) or _is_provincial_data_admin(actor)


def may_write_sql(actor) -> bool:
    """Whether the actor may create or change custom SQL rules: CLI and platform administrators only."""
    return _is_system(actor) or registry_services.is_admin(actor)


def can_view_registry(actor, registry: Registry) -> bool:
    """Whether the actor may read the registry's quality results (those who may read the registry).

    Active data administrators (DSJ, people or their clients) read every registry: ``can_read`` says so.
    """
    if _is_system(actor) or registry_services.is_admin(actor):
        return True
    return registry_services.can_read(registry, registry_services.department_of(actor))


def sample_prefix(actor, registry: Registry) -> str | None:
    """The division prefix of the samples the actor may see (None: none, "": all)."""
    if _is_system(actor):
        return ""
    return registry_services.reader_scope(registry, actor)


def visible_samples(samples: list[dict] | None, prefix: str | None) -> list[dict]:
    """The stored samples within a :func:`sample_prefix` (None: none, "": all)."""
    if prefix is None:
        return []
    return [sample for sample in samples or [] if not prefix or (sample.get("division") or "").startswith(prefix)]


def can_view_department(actor, organization: Organization) -> bool:
    """Whether the actor may read a department's scorecard: itself, covering data administrators, admins."""
    if _is_system(actor) or registry_services.is_admin(actor):
        return True
    department = registry_services.department_of(actor)
    if department is None or not department.is_active:
        return False
    if department.pk == organization.pk:
        return True
    return department.kind == DATA_ADMIN_KIND and organization.division.code.startswith(
        scope_prefix(department.division.code)
    )


def _audit_actor(actor):
    """The actor as the audit service takes it (a User, a ``kind:label`` string or None)."""
    if actor is None or isinstance(actor, str) or hasattr(actor, "get_username"):
        return actor
    return registry_services._actor_label(actor)


def _actor_label(actor) -> str:
    """A short text naming the actor."""
    return registry_services._actor_label(actor)


def _deny(action: str, *, actor, target, message: str) -> PermissionDenied:
    """Audit a refused operation in its own transaction and return the PermissionDenied to raise."""
    with transaction.atomic():
        audit.record(action, actor=_audit_actor(actor), target=target, outcome="denied", detail={"reason": message})
    return PermissionDenied(message)


# --- Rules: resolution and validation -----------------------------------------------------------------------


def rule_type_choices() -> list[tuple[str, str]]:
    """(type, label) of every built-in rule type, for forms and the CLI."""
    return [(name, str(rule_type.label)) for name, rule_type in RULE_TYPES.items()]


def find_resource(key: str) -> InformationResource | None:
    """A catalogue entry by its code or URL key (``/`` written ``-``)."""
    code = key if "/" in key else key.replace("-", "/", 1)
    return catalog_services.find_resource(code)


def resource_target(resource: InformationResource) -> tuple[Registry | None, dict[str, str], list[str]]:
    """(the registry holding the resource's data, item code → registry field, problems)."""
    links = {}
    registries = {}
    for item in resource.items.select_related("registry"):
        if item.registry_id and item.registry_field:
            links[item.code] = item.registry_field
            registries[item.registry_id] = item.registry
    if not registries:
        return None, links, [_("信息资源“%(code)s”没有关联信息库字段，无法评估") % {"code": resource.code}]
    if len(registries) > 1:
        return (
            None,
            links,
            [_("信息资源“%(code)s”的信息项分布在多个信息库，请按信息库分别编写规则") % {"code": resource.code}],
        )
    return next(iter(registries.values())), links, []


def _department_for_token(token: str, registry: Registry) -> Organization | None:
    """The department an authority token names: a department code, or a kind resolved near the owner."""
    by_code = Organization.objects.filter(code=token, is_active=True).first()
    if by_code is not None:
        return by_code
    owner = registry.owner
    if owner.kind == token:
        return owner
    same_kind = Organization.objects.filter(kind=token, is_active=True)
    return (
        same_kind.filter(division_id=owner.division_id).order_by("code").first()
        or same_kind.filter(level=Organization.Level.PROVINCE).order_by("code").first()
    )


def default_owner(registry: Registry, fields: list[str], resource: InformationResource | None = None) -> Organization:
    """The department responsible for a rule: its first field's authoritative source (see the module docstring)."""
    if not fields:
        return resource.provider if resource is not None else registry.owner
    definitions = field_map(registry_services.registry_fields(registry))
    definition = definitions.get(fields[0])
    for token in definition.authorities if definition is not None else ():
        department = _department_for_token(token, registry)
        if department is not None:
            return department
    return registry.owner


@dataclass
class _Draft:
    """A checked rule ready to be written: the model values and the rule as data."""

    values: dict[str, Any]
    spec: RuleSpec
    registry: Registry
    resource: InformationResource | None = None


def _choice(value: Any, allowed: Iterable[str], by_label: dict[str, str], name: str, errors: list[str]) -> str:
    """A choice given by its value or its Chinese label."""
    if isinstance(value, str) and value in allowed:
        return value
    if isinstance(value, str) and value in by_label:
        return by_label[value]
    errors.append(_("%(name)s 应为 %(values)s 之一") % {"name": name, "values": "、".join(allowed)})
    return ""


def _clean_rule(raw: Any, *, actor, registries: dict, resources: dict) -> tuple[_Draft | None, list[str]]:
    """Check one rule's data (everything except compiling it); (draft, problems)."""
    if not isinstance(raw, dict):
        return None, [_("规则应为对象")]
    errors: list[str] = []
    unknown = sorted(set(raw) - RULE_KEYS)
    if unknown:
        errors.append(_("未知的规则项 %(keys)s") % {"keys": "、".join(map(str, unknown))})
    code = raw.get("code")
    if not isinstance(code, str) or not _CODE.match(code):
        errors.append(_("code 应为小写字母或数字开头的字母、数字、点、下划线、连字符，至多 100 位"))
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        errors.append(_("缺少规则名称（name，至多 200 字）"))
    description = raw.get("description", "")
    if not isinstance(description, str):
        errors.append(_("description 应为字符串"))
    rule_type = canonical_type(raw.get("type") or "")
    if rule_type not in RULE_TYPES:
        errors.append(
            _("未知的规则类型“%(type)s”（可用：%(types)s）")
            % {"type": raw.get("type") or "", "types": "、".join(RULE_TYPES)}
        )
    fields_raw = raw.get("fields", [raw["field"]] if "field" in raw else [])
    if isinstance(fields_raw, str):
        fields_raw = [fields_raw]
    if not isinstance(fields_raw, list) or not all(isinstance(f, str) and f for f in fields_raw):
        errors.append(_("fields 应为字段名列表"))
        fields_raw = []
    params = raw.get("params", {}) or {}
    if not isinstance(params, dict):
        errors.append(_("params 应为对象"))
        params = {}
    sql = raw.get("sql", "") or ""
    if not isinstance(sql, str):
        errors.append(_("sql 应为字符串"))
        sql = ""
    if sql and rule_type != "sql":
        errors.append(_("只有 sql 类型的规则可以有 sql"))
    if rule_type == "sql" and not may_write_sql(actor):
        errors.append(_("自定义 SQL 规则仅限平台管理员创建或修改"))
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        errors.append(_("enabled 应为 true 或 false"))

    # Target: a registry, or a catalogue resource whose items point at one registry.
    registry = resource = None
    fields = list(fields_raw)
    if raw.get("resource"):
        key = str(raw["resource"])
        if key not in resources:
            resources[key] = find_resource(key)
        resource = resources[key]
        if resource is None:
            errors.append(_("信息资源“%(code)s”不存在") % {"code": key})
        else:
            registry, links, problems = resource_target(resource)
            errors.extend(problems)
            missing = [f for f in fields_raw if f not in links]
            if missing and registry is not None:
                errors.append(_("信息资源没有关联信息库字段的信息项：%(items)s") % {"items": "、".join(missing)})
            fields = [links.get(f, f) for f in fields_raw]
            if raw.get("registry") and registry is not None and raw["registry"] != registry.code:
                errors.append(_("信息资源的数据不在信息库“%(code)s”中") % {"code": raw["registry"]})
    elif raw.get("registry"):
        key = str(raw["registry"])
        if key not in registries:
            registries[key] = Registry.objects.select_related("owner").filter(code=key).first()
        registry = registries[key]
        if registry is None:
            errors.append(_("信息库“%(code)s”不存在") % {"code": key})
    else:
        errors.append(_("须指明规则针对的信息库（registry）或信息资源（resource）"))
    if registry is not None:
        try:
            definitions = field_map(registry_services.registry_fields(registry))
        except SchemaError as exc:
            errors.append(str(exc.message))
            definitions = None
        if definitions is not None:
            unknown_fields = [f for f in fields if f not in definitions]
            if unknown_fields:
                errors.append(_("字段不存在：%(fields)s") % {"fields": "、".join(unknown_fields)})

    dimension = raw.get("dimension") or (RULE_TYPES[rule_type].dimension if rule_type in RULE_TYPES else "")
    if not dimension:
        errors.append(_("自定义 SQL 规则须指明质量维度（dimension）"))
    else:
        dimension = _choice(dimension, Dimension.values, _DIMENSION_BY_LABEL, "dimension", errors)
    severity = _choice(raw.get("severity", Severity.MEDIUM), Severity.values, _SEVERITY_BY_LABEL, "severity", errors)
    weight = raw.get("weight", SEVERITY_WEIGHTS.get(severity, 2))
    if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= 100:
        errors.append(_("weight 应为 1–100 的整数"))
    owner = None
    if raw.get("owner"):
        owner = Organization.objects.filter(code=str(raw["owner"]), is_active=True).first()
        if owner is None:
            errors.append(_("责任部门“%(code)s”不存在") % {"code": raw["owner"]})
    if errors:
        return None, errors
    if owner is None:
        owner = default_owner(registry, fields, resource)
    values = {
        "name": name.strip(),
        "description": description,
        "registry": registry,
        "resource": resource,
        "fields": fields,
        "rule_type": rule_type,
        "params": params,
        "sql": sql,
        "dimension": dimension,
        "severity": severity,
        "weight": weight,
        "enabled": enabled,
        "owner": owner,
    }
    spec = RuleSpec(code, rule_type, tuple(fields), params, sql)
    return _Draft(values, spec, registry, resource), []


def _reference_name(registry_code: str, field_name: str) -> str:
    """The DuckDB table name of a referenced registry field's values."""
    import hashlib

    digest = hashlib.sha1(f"{registry_code}#{field_name}".encode(), usedforsecurity=False).hexdigest()[:12]
    return f"_dq_ref_{digest}"


def _context(registry: Registry, fields: list[FieldDef], *, resource=None, references=None, now=None) -> Context:
    """The compile context of a registry's rules (references are recorded in ``references``)."""
    now = now or timezone.now()

    def reference(code: str, name: str) -> str:
        target = Registry.objects.filter(code=code).first()
        if target is None:
            raise RuleError(_("被引用的信息库“%(code)s”不存在") % {"code": code})
        if name != "_uid" and name not in field_map(registry_services.registry_fields(target)):
            raise RuleError(_("被引用信息库“%(code)s”没有字段“%(field)s”") % {"code": code, "field": name})
        table = _reference_name(code, name)
        if references is not None:
            references[table] = (target, name)
        return table

    return Context(
        columns=extract.columns_for(fields),
        now=now,
        today=timezone.localdate(now),
        reference=reference,
        update_cycle=resource.update_cycle if resource is not None else "",
    )


def _bind_check(draft: _Draft) -> list[str]:
    """Compile a rule and run it on an empty copy of its table in DuckDB: the problems found, if any."""
    import duckdb

    fields = registry_services.registry_fields(draft.registry)
    references: dict[str, tuple] = {}
    try:
        check = compile_rule(
            draft.spec, _context(draft.registry, fields, resource=draft.resource, references=references)
        )
    except RuleError as exc:
        return exc.messages
    if check.external:
        return []
    con = duckdb.connect()
    try:
        con.execute("SET autoinstall_known_extensions = false")
        con.execute("SET autoload_known_extensions = false")
        columns = extract.columns_for(fields)
        definitions = ", ".join(
            f"{quote(name)} {_duck_type(column.type) if name.startswith('_') else 'VARCHAR'}"
            for name, column in columns.items()
        )
        con.execute(f"CREATE TABLE records ({definitions})")
        for table in references:
            con.execute(f"CREATE TABLE {quote(table)} (v VARCHAR)")
        extract.lock_down(con)
        engine.evaluate(con.table("records"), [check], samples=1, order="_id", extra=("_division",))
    except engine.EngineError as exc:
        return [_("规则无法执行：%(error)s") % {"error": exc}]
    finally:
        con.close()
    return []


def _duck_type(kind: str) -> str:
    """DuckDB type of a meta column."""
    return {"integer": "BIGINT", "datetime": "TIMESTAMPTZ"}.get(kind, "VARCHAR")


_COMPARED = (
    "name",
    "description",
    "fields",
    "rule_type",
    "params",
    "sql",
    "dimension",
    "severity",
    "weight",
    "enabled",
)


def _changes(rule: QualityRule, values: dict) -> list[str]:
    """The keys whose values differ between a stored rule and new values."""
    changed = [key for key in _COMPARED if getattr(rule, key) != values[key]]
    for key in ("registry", "resource", "owner"):
        new = values[key]
        if getattr(rule, f"{key}_id") != (new.pk if new is not None else None):
            changed.append(key)
    return changed


def _rule_detail(rule: QualityRule, changed: list[str] | None = None) -> dict:
    """Audit detail of a rule (never data values)."""
    detail = {
        "code": rule.code,
        "registry": rule.registry.code,
        "type": rule.rule_type,
        "fields": rule.fields,
        "dimension": rule.dimension,
        "enabled": rule.enabled,
        "owner": rule.owner.code,
    }
    if rule.resource_id:
        detail["resource"] = rule.resource.code
    if changed is not None:
        detail["changed"] = changed
    return detail


def load_rules(rules: list, *, actor, source: str = "", dry_run: bool = False) -> LoadReport:
    """Check every rule of a rule set and, only when all are good, create or update them (by code) in one transaction.

    Returns a :class:`LoadReport` naming each bad rule with all its problems (unknown type or field,
    bad parameters, a query DuckDB refuses); nothing is written then. Rules not in the set are left
    as they are (``enabled: false`` disables one). Refused outright (PermissionDenied, audited)
    unless the actor may manage rules.
    """
    if not may_manage_rules(actor):
        raise _deny(
            "quality.rules.load", actor=actor, target=source or None, message=_("只有数据管理员可以维护质量规则")
        )
    report = LoadReport(source=source)
    if not isinstance(rules, list):
        report.errors.append((0, "", [_("规则集应为规则列表")]))
        return report
    registries: dict = {}
    resources: dict = {}
    drafts: list[_Draft] = []
    seen: dict[str, int] = {}
    existing = {
        rule.code: rule
        for rule in QualityRule.objects.select_related("registry", "resource", "owner").filter(
            code__in=[raw.get("code") for raw in rules if isinstance(raw, dict) and isinstance(raw.get("code"), str)]
        )
    }
    for index, raw in enumerate(rules, start=1):
        code = raw.get("code", "") if isinstance(raw, dict) else ""
        code = code if isinstance(code, str) else ""
        draft, problems = _clean_rule(raw, actor=actor, registries=registries, resources=resources)
        if code and code in seen:
            problems.append(_("规则编码与第 %(index)d 条重复") % {"index": seen[code]})
        if code:
            seen.setdefault(code, index)
        stored = existing.get(code)
        if stored is not None and stored.rule_type == "sql" and not may_write_sql(actor):
            problems.append(_("自定义 SQL 规则仅限平台管理员修改"))
        if draft is not None and not problems:
            problems = _bind_check(draft)
        if problems:
            report.errors.append((index, code, problems))
        elif draft is not None:
            drafts.append(draft)
    if report.errors or dry_run:
        for draft in drafts:
            stored = existing.get(draft.spec.code)
            bucket = report.created if stored is None else report.updated if _changes(stored, draft.values) else None
            (bucket if bucket is not None else report.unchanged).append(draft.spec.code)
        return report
    label = _actor_label(actor)
    with transaction.atomic():
        for draft in drafts:
            code = draft.spec.code
            stored = existing.get(code)
            if stored is None:
                rule = QualityRule.objects.create(code=code, created_by=label, updated_by=label, **draft.values)
                audit.record("quality.rule.create", actor=_audit_actor(actor), target=rule, detail=_rule_detail(rule))
                report.created.append(code)
                continue
            changed = _changes(stored, draft.values)
            if not changed:
                report.unchanged.append(code)
                continue
            for key, value in draft.values.items():
                setattr(stored, key, value)
            stored.updated_by = label
            stored.save()
            audit.record(
                "quality.rule.update", actor=_audit_actor(actor), target=stored, detail=_rule_detail(stored, changed)
            )
            if "enabled" in changed and not stored.enabled:
                _rectification().on_rule_disabled(stored, actor=actor)
            report.updated.append(code)
        audit.record(
            "quality.rules.load",
            actor=_audit_actor(actor),
            target=source or None,
            detail={"created": len(report.created), "updated": len(report.updated), "unchanged": len(report.unchanged)},
        )
    return report


def set_rule_enabled(rule: QualityRule, enabled: bool, *, actor) -> QualityRule:
    """Enable or disable a rule (audited); PermissionDenied unless the actor may manage rules."""
    action = "quality.rule.enable" if enabled else "quality.rule.disable"
    if not may_manage_rules(actor) or (rule.rule_type == "sql" and not may_write_sql(actor)):
        raise _deny(action, actor=actor, target=rule, message=_("只有数据管理员可以维护质量规则"))
    with transaction.atomic():
        locked = (
            QualityRule.objects.select_for_update(of=("self",))
            .select_related("registry", "resource", "owner")
            .get(pk=rule.pk)
        )
        if locked.enabled != enabled:
            locked.enabled = enabled
            locked.updated_by = _actor_label(actor)
            locked.save(update_fields=["enabled", "updated_by", "updated_at"])
            audit.record(action, actor=_audit_actor(actor), target=locked, detail=_rule_detail(locked))
            if not enabled:
                _rectification().on_rule_disabled(locked, actor=actor)
    return locked


def rules_of(registry: Registry) -> QuerySet[QualityRule]:
    """The registry's rules (enabled or not), with their resource and owner."""
    return QualityRule.objects.filter(registry=registry).select_related("resource", "owner").order_by("code")


# --- Runs ---------------------------------------------------------------------------------------------------


def _enabled_rules(registry: Registry) -> list[QualityRule]:
    """The enabled rules of a registry."""
    return list(
        QualityRule.objects.filter(registry=registry, enabled=True)
        .select_related("resource", "owner", "registry")
        .order_by("code")
    )


def start_run(registry: Registry, *, actor) -> QualityRun:
    """Queue a run of the registry's enabled rules (audited); PermissionDenied / ValidationError when it cannot."""
    if not may_manage_rules(actor):
        raise _deny("quality.run.request", actor=actor, target=registry, message=_("只有数据管理员可以发起质量检查"))
    if not QualityRule.objects.filter(registry=registry, enabled=True).exists():
        raise ValidationError(_("信息库“%(code)s”没有启用的质量规则") % {"code": registry.code})
    with transaction.atomic():
        run = QualityRun.objects.create(registry=registry, requested_by=_actor_label(actor))
        audit.record("quality.run.request", actor=_audit_actor(actor), target=run, detail={"registry": registry.code})
    return run


def request_run(registry: Registry, *, actor) -> QualityRun:
    """Queue a run for the background worker (pages): :func:`start_run`, then the task once committed."""
    run = start_run(registry, actor=actor)
    from dgov.quality.tasks import run_quality

    transaction.on_commit(lambda: run_quality.enqueue(run_id=run.pk))
    return run


def run_registry(
    registry: Registry, *, actor, samples: int | None = None, progress: Callable[[str, int, int], None] | None = None
) -> QualityRun:
    """Run the registry's enabled rules now (CLI): queue and execute; returns the finished (or failed) run."""
    run = start_run(registry, actor=actor)
    return execute_run(run, actor=actor, samples=samples, progress=progress)


def _samples_setting(samples: int | None) -> int:
    """How many failing rows to keep per rule."""
    value = samples if samples is not None else getattr(settings, "QUALITY_SAMPLES", DEFAULT_SAMPLES)
    return max(0, min(int(value), MAX_SAMPLES))


def _mask_samples(samples: list[dict], fields: dict[str, FieldDef]) -> list[dict]:
    """Samples as stored: uid, division, values with personal values masked (脱敏)."""
    out = []
    for sample in samples:
        values = dict(sample.get("values") or {})
        division = values.pop("_division", "") or ""
        masked = {}
        for name, value in values.items():
            definition = fields.get(name)
            if definition is not None and definition.is_personal and value is not None:
                masked[name] = mask_value(definition, value)
            else:
                masked[name] = value
        out.append({"uid": sample.get("key") or "", "division": division, "values": masked})
    return out


def _accessibility(rule: QualityRule, registry: Registry, check: Check, now: datetime.datetime) -> engine.Outcome:
    """可访问性: the registry is active, the resource published, and its exchange calls were served."""
    problems = []
    if not registry.is_active:
        problems.append("registry_inactive")
    ok = errors = 0
    resource = rule.resource
    if resource is not None:
        resource = InformationResource.objects.get(pk=resource.pk)
        if resource.status == InformationResource.Status.RETIRED or resource.published_version_id is None:
            problems.append("not_published")
        ok, errors = _exchange_calls(resource.code, int(check.params.get("days", 30)), now)
    checked = 1 + ok + errors
    failed = (1 if problems else 0) + errors
    samples = []
    if failed:
        samples.append({"key": "", "values": {"problems": problems, "served": ok, "failed_calls": errors}})
    return engine.Outcome(checked, failed, samples)


def _exchange_calls(resource_code: str, days: int, now: datetime.datetime) -> tuple[int, int]:
    """(served, failed) exchange calls for a resource over the last ``days`` local days (refusals not counted)."""
    from django.db.models import Count

    from dgov.exchange import monitoring

    until = timezone.localdate(now)
    period = monitoring.Period(until - datetime.timedelta(days=days - 1), until)
    scope = monitoring.MonitorScope("platform", Q(resource_code=resource_code))
    rows = monitoring.entries_in(scope, period).values("result").annotate(n=Count("seq"))
    counts = {row["result"]: row["n"] for row in rows}
    return int(counts.get("ok", 0)), int(counts.get("error", 0))


def _compile_all(rules: list[QualityRule], registry: Registry, fields: list[FieldDef], now, references: dict):
    """Compile the rules of a run; RuleError naming every rule that does not compile."""
    checks: dict[int, Check] = {}
    problems = []
    for rule in rules:
        spec = RuleSpec(rule.code, rule.rule_type, tuple(rule.fields), rule.params or {}, rule.sql)
        try:
            ctx = _context(registry, fields, resource=rule.resource, references=references, now=now)
            checks[rule.pk] = compile_rule(spec, ctx)
        except RuleError as exc:
            problems.append(f"{rule.code}: {exc}")
    if problems:
        raise RuleError(problems)
    return checks


def execute_run(
    run: QualityRun, *, actor=None, samples: int | None = None, progress: Callable[[str, int, int], None] | None = None
) -> QualityRun:
    """Execute a queued run: load, evaluate, store results and scores; a failure is recorded on the run.

    ``progress(stage, done, total)`` is told ``load`` (records read), ``evaluate`` and ``save``.
    """
    report = progress or (lambda stage, done, total: None)
    actor = actor if actor is not None else WORKER_ACTOR
    updated = QualityRun.objects.filter(pk=run.pk, status=QualityRun.Status.QUEUED).update(
        status=QualityRun.Status.RUNNING, started_at=timezone.now()
    )
    run.refresh_from_db()
    if not updated:
        return run  # another worker took it, or it already ran
    registry = Registry.objects.select_related("owner").get(pk=run.registry_id)
    keep = _samples_setting(samples)
    now = timezone.now()
    try:
        rules = _enabled_rules(registry)
        if not rules:
            raise RuleError(_("信息库“%(code)s”没有启用的质量规则") % {"code": registry.code})
        fields = registry_services.registry_fields(registry)
        definitions = field_map(fields)
        references: dict[str, tuple] = {}
        checks = _compile_all(rules, registry, fields, now, references)
        total = extract.count_records(registry)
        report("load", 0, total)
        done = [0]

        def loaded(n: int) -> None:
            done[0] += n
            report("load", done[0], total)

        with tempfile.TemporaryDirectory(
            prefix="dgov-quality-", dir=getattr(settings, "QUALITY_WORK_DIR", None)
        ) as tmp:
            workdir = Path(tmp)
            con = extract.open_connection(workdir)
            try:
                rows = extract.load_registry(con, registry, fields, workdir, progress=loaded)
                for table, (target, name) in references.items():
                    extract.load_values(
                        con, target, registry_services.registry_fields(target), name, workdir, table=table
                    )
                extract.lock_down(con)
                report("evaluate", 0, 1)
                evaluation = engine.evaluate(
                    con.table("records"),
                    list(checks.values()),
                    samples=keep,
                    key="_uid",
                    order="_id",
                    extra=("_division",),
                )
                report("evaluate", 1, 1)
            finally:
                con.close()
        outcomes = {}
        for rule in rules:
            check = checks[rule.pk]
            if check.external:
                outcomes[rule.pk] = _accessibility(rule, registry, check, now)
            else:
                outcomes[rule.pk] = evaluation.outcomes[rule.code]
    except Exception as exc:  # noqa: BLE001 - any failure is the run's outcome; earlier results stay
        if not isinstance(exc, RuleError | engine.EngineError | SchemaError):
            logger.exception("quality run %s of %s failed", run.pk, registry.code)
        message = str(exc) if isinstance(exc, RuleError | engine.EngineError) else f"{type(exc).__name__}: {exc}"
        return _fail(run, registry, message, actor=actor)
    report("save", 0, 1)
    results = []
    for rule in rules:
        outcome = outcomes[rule.pk]
        results.append(
            RuleResult(
                run=run,
                rule=rule,
                rule_code=rule.code,
                rule_name=rule.name,
                rule_type=rule.rule_type,
                dimension=rule.dimension,
                weight=rule.weight,
                owner_id=rule.owner_id,
                resource_id=rule.resource_id,
                fields=rule.fields,
                checked=outcome.checked,
                failed=outcome.failed,
                pass_rate=scoring.pass_rate(outcome.checked, outcome.failed),
                samples=_mask_samples(outcome.samples, definitions),
            )
        )
    summary = scoring.summarize(results)
    with transaction.atomic():
        RuleResult.objects.bulk_create(results)
        run.status = QualityRun.Status.SUCCEEDED
        run.finished_at = timezone.now()
        run.rows = rows
        run.rule_count = len(results)
        run.score = summary.score
        run.grade = summary.grade
        run.dimension_scores = {key: float(value) for key, value in summary.dimensions.items()}
        run.save()
        detail = {
            "registry": registry.code,
            "rows": rows,
            "rules": len(results),
            "score": str(summary.score) if summary.score is not None else None,
            "grade": summary.grade,
        }
        audit.record("quality.run.finish", actor=_audit_actor(actor), target=run, detail=detail)
        events.publish(
            "quality.run.finished",
            {"run": run.pk, "status": run.status, **detail},
            aggregate="quality",
            aggregate_id=registry.code,
        )
        # Rectification work orders (整改工单): open, update or close the orders of the run's findings.
        _rectification().after_run(run, actor=actor)
        # Trend snapshots (质量趋势): keep this the last step of the transaction, after any hook that
        # opens or closes rectification orders, so the day's snapshot counts them.
        _trends().record_run(run)
    report("save", 1, 1)
    return run


def _rectification():
    """The rectification module (imported late: it builds on this one)."""
    from dgov.quality import rectification

    return rectification


def _trends():
    """The trends module (imported late: it builds on this one)."""
    from dgov.quality import trends

    return trends


def _fail(run: QualityRun, registry: Registry, message: str, *, actor) -> QualityRun:
    """Record a failed run (its error, audited); earlier runs and their results are untouched."""
    with transaction.atomic():
        run.status = QualityRun.Status.FAILED
        run.finished_at = timezone.now()
        run.error = message[:4000]
        run.save(update_fields=["status", "finished_at", "error"])
        audit.record(
            "quality.run.finish",
            actor=_audit_actor(actor),
            target=run,
            outcome="failed",
            detail={"registry": registry.code, "error": message[:300]},
        )
        events.publish(
            "quality.run.finished",
            {"run": run.pk, "status": run.status, "registry": registry.code},
            aggregate="quality",
            aggregate_id=registry.code,
        )
    return run


# --- Scores -------------------------------------------------------------------------------------------------


def latest_runs() -> QuerySet[QualityRun]:
    """Each registry's latest successful run."""
    newest = (
        QualityRun.objects.filter(registry=OuterRef("registry"), status=QualityRun.Status.SUCCEEDED)
        .order_by("-finished_at", "-id")
        .values("id")[:1]
    )
    return QualityRun.objects.filter(status=QualityRun.Status.SUCCEEDED, id=Subquery(newest)).select_related("registry")


def latest_run(registry: Registry) -> QualityRun | None:
    """The registry's latest successful run, or None."""
    return (
        QualityRun.objects.filter(registry=registry, status=QualityRun.Status.SUCCEEDED)
        .order_by("-finished_at", "-id")
        .first()
    )


def visible_registries(actor) -> list[Registry]:
    """Registries with quality rules or runs that the actor may read the quality of."""
    ids = set(QualityRule.objects.values_list("registry_id", flat=True)) | set(
        QualityRun.objects.values_list("registry_id", flat=True)
    )
    registries = Registry.objects.filter(pk__in=ids).select_related("owner").order_by("code")
    return [registry for registry in registries if can_view_registry(actor, registry)]


def registry_scores(actor) -> list[tuple[Registry, QualityRun | None]]:
    """(registry, latest successful run or None) for every registry the actor may see."""
    runs = {run.registry_id: run for run in latest_runs()}
    return [(registry, runs.get(registry.pk)) for registry in visible_registries(actor)]


def run_samples(run: QualityRun, result: RuleResult, actor) -> list[dict]:
    """A result's samples the actor may see (within their division scope)."""
    return visible_samples(result.samples, sample_prefix(actor, run.registry))


@dataclass
class Scorecard:
    """A department's scorecard: overall summary, per registry (with its run), and the rule results."""

    department: Organization
    summary: scoring.Summary
    registries: list[tuple[Registry, QualityRun, scoring.Summary]] = field(default_factory=list)
    results: list[RuleResult] = field(default_factory=list)


def department_scorecard(department: Organization, *, actor) -> Scorecard:
    """The scorecard of a department: its rules' results in each registry's latest successful run."""
    if not can_view_department(actor, department):
        raise PermissionDenied(_("无权查看该部门的数据质量评分"))
    results = list(
        RuleResult.objects.filter(run__in=latest_runs().values("id"), owner=department)
        .select_related("run__registry", "resource")
        .order_by("run__registry__code", "rule_code")
    )
    by_registry: dict[int, list[RuleResult]] = {}
    for result in results:
        by_registry.setdefault(result.run_id, []).append(result)
    registries = [(items[0].run.registry, items[0].run, scoring.summarize(items)) for items in by_registry.values()]
    return Scorecard(department, scoring.summarize(results), registries, results)


def department_scores(actor) -> list[tuple[Organization, scoring.Summary]]:
    """(department, summary) for every department with results that the actor may see, best first."""
    results = RuleResult.objects.filter(run__in=latest_runs().values("id")).select_related("owner__division")
    grouped: dict[int, list[RuleResult]] = {}
    owners: dict[int, Organization] = {}
    for result in results:
        grouped.setdefault(result.owner_id, []).append(result)
        owners[result.owner_id] = result.owner
    rows = [
        (owners[pk], scoring.summarize(items))
        for pk, items in grouped.items()
        if can_view_department(actor, owners[pk])
    ]
    rows.sort(key=lambda row: (row[1].score is None, -(row[1].score or 0), row[0].code))
    return rows


def resource_score(resource: InformationResource) -> tuple[QualityRun | None, scoring.Summary, list[RuleResult]]:
    """A catalogue resource's score: its own rules and the registry rules on its items' fields, latest run."""
    registry, links, problems = resource_target(resource)
    if registry is None:
        return None, scoring.Summary(), []
    run = latest_run(registry)
    if run is None:
        return None, scoring.Summary(), []
    linked = set(links.values())
    results = [
        result
        for result in run.results.select_related("owner", "resource").order_by("rule_code")
        if result.resource_id == resource.pk
        or (result.resource_id is None and result.fields and set(result.fields) <= linked)
    ]
    return run, scoring.summarize(results), results


def resource_scores(resources: Iterable[InformationResource]) -> dict[int, dict]:
    """The catalogue badge of a page of resources: ``{resource id: {score, grade, finished_at, registry}}``.

    Built from each resource's **published** snapshot (the items readers see) in three queries
    whatever the page size: the snapshots, the latest successful runs of the linked registries, and
    those runs' results. A resource's score is what :func:`resource_score` computes (its own rules
    plus the registry rules whose fields all belong to its linked items) when that yields a score,
    else the score of its registry's run. Items spread over several registries: the lowest of the
    per-registry scores (a resource is as good as its weakest source). Resources without a published
    version, registry links or a successful run are absent from the answer.
    """
    resources = [r for r in resources if r.published_version_id]
    if not resources:
        return {}
    snapshots = ResourceVersion.objects.filter(pk__in=[r.published_version_id for r in resources]).values_list(
        "resource_id", "snapshot"
    )
    links: dict[int, dict[str, set[str]]] = {}  # resource id -> registry code -> linked fields
    for resource_id, snapshot in snapshots:
        for item in (snapshot or {}).get("items") or []:
            if item.get("registry") and item.get("registry_field"):
                links.setdefault(resource_id, {}).setdefault(item["registry"], set()).add(item["registry_field"])
    codes = {code for by_registry in links.values() for code in by_registry}
    if not codes:
        return {}
    runs = {run.registry.code: run for run in latest_runs().filter(registry__code__in=codes)}
    results: dict[int, list[tuple]] = {}
    for row in RuleResult.objects.filter(run__in=[run.pk for run in runs.values()]).values_list(
        "run_id", "resource_id", "fields", "dimension", "weight", "checked", "failed"
    ):
        results.setdefault(row[0], []).append(row[1:])
    answer: dict[int, dict] = {}
    for resource_id, by_registry in links.items():
        candidates = []
        for code, fields in by_registry.items():
            run = runs.get(code)
            if run is None:
                continue
            own = [
                row[2:]
                for row in results.get(run.pk, [])
                if row[0] == resource_id or (row[0] is None and row[1] and set(row[1]) <= fields)
            ]
            score = scoring.summarize(own).score
            if score is None:
                score = run.score
            if score is not None:
                candidates.append((Decimal(score), run))
        if candidates:
            score, run = min(candidates, key=lambda pair: (pair[0], pair[1].registry.code))
            answer[resource_id] = {
                "score": score,
                "grade": scoring.grade(score),
                "finished_at": run.finished_at,
                "registry": run.registry.code,
            }
    return answer
