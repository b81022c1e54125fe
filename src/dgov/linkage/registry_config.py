"""Settings of a stored linkage run over registries (数据比对设置): the ``dgov link`` format, registries for files.

A platform run links (or deduplicates) the records of registries (基础库/主题库) instead of CSV
files. The settings have the shape of a ``dgov link`` config (docs/linkage.md) with three
differences: each table names a ``registry`` and maps registry **fields** (not CSV columns) to
roles, may filter the records (``division``: a division code whose records are kept; ``filter``:
field → value or list of values), and there are no output paths — the run stores its results.

::

    name: 人口-社保比对
    mode: link
    entity: person
    tables:
      - name: population                 # optional, default: the registry code
        registry: population.person
        division: "370100"               # optional: records of 济南市 only
        filter: {status: normal}         # optional: field → value or [values]
        fields: {name: full_name, id_number: identifier, birth_date: birth_date}
      - registry: social_security.insured
        fields: {name: full_name, id_number: identifier}
    golden:
      authority: {phone: population}     # optional overrides: role → table name

Authority (一数一源): every role some table maps gets a golden value, taken from one table only. By
default that is the table whose registry is the field's authoritative source (see
:func:`default_authority`); ``golden.authority`` overrides it per role. Every mistake raises
:class:`~dgov.linkage.config.LinkageConfigError` with a message naming the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

from dgov.linkage.config import (
    ROLES,
    LinkageConfigError,
    LinkSettings,
    TableSpec,
    _mapping,
    _settings,
    _unknown_keys,
)
from dgov.registry import services as registry_services
from dgov.registry.models import Registry
from dgov.registry.schema import FieldDef, SchemaError, field_map

__all__ = ["RegistryPlan", "RegistryTable", "default_authority", "parse_registry_settings"]

NAME_MAX = 100  # finding keys ("linkage:<name>:<field>") must fit in 200 characters
_TOP_KEYS = frozenset(
    {
        "name",
        "mode",
        "entity",
        "identifier_kind",
        "tables",
        "blocking",
        "threshold",
        "one_to_one",
        "u_sample_size",
        "max_em_iterations",
        "term_frequency",
        "seed",
        "golden",
    }
)
_TABLE_KEYS = frozenset({"name", "registry", "fields", "division", "filter"})
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.\-\u4e00-\u9fff]{1,64}$")
_DIVISION = re.compile(r"^\d{2,12}$")


@dataclass
class RegistryTable:
    """One source of a platform run: a registry, its field → role mapping and the record filter."""

    name: str
    registry: Registry
    fields: dict[str, str]  # registry field → role
    definitions: dict[str, FieldDef]  # every field of the registry's current schema
    division: str = ""  # division code whose records are kept (prefix match), "" for all
    filter: dict[str, list[str]] = field(default_factory=dict)  # field → accepted values

    def role_fields(self) -> dict[str, list[str]]:
        """Role → the registry fields mapped to it, in mapping order."""
        result: dict[str, list[str]] = {}
        for name, role in self.fields.items():
            result.setdefault(role, []).append(name)
        return result

    def field_of(self, role: str) -> str | None:
        """The (first) registry field mapped to ``role``: the one lineage and findings name."""
        fields = self.role_fields().get(role)
        return fields[0] if fields else None


@dataclass
class RegistryPlan:
    """A validated platform run: the engine's settings, the registry tables and the authority per role."""

    name: str
    settings: LinkSettings
    tables: list[RegistryTable]
    authority: dict[str, str]  # role → table name
    authority_overridden: list[str] = field(default_factory=list)

    def table(self, name: str) -> RegistryTable:
        """The table with this name."""
        return next(t for t in self.tables if t.name == name)

    def registries(self) -> list[Registry]:
        """The distinct registries of the run, in table order."""
        seen: dict[int, Registry] = {}
        for table in self.tables:
            seen.setdefault(table.registry.pk, table.registry)
        return list(seen.values())


def _values(raw: Any, where: str) -> list[str]:
    """A filter's accepted values: a scalar or a non-empty list of scalars, as text."""
    items = raw if isinstance(raw, list) else [raw]
    if not items or not all(isinstance(v, (str, int, float, bool)) and not isinstance(v, dict) for v in items):
        raise LinkageConfigError(_("%(where)s：应为一个值或值的列表") % {"where": where})
    return [("true" if v else "false") if isinstance(v, bool) else str(v) for v in items]


def _parse_table(raw: Any, index: int, registries: dict[str, Registry]) -> RegistryTable:
    """One entry of ``tables``: the registry exists, the fields exist and map to known roles."""
    where = _("tables 第 %(index)d 项") % {"index": index}
    raw = _mapping(raw, where)
    _unknown_keys(raw, _TABLE_KEYS, where)
    code = raw.get("registry")
    if not isinstance(code, str) or not code.strip():
        raise LinkageConfigError(_("%(where)s：缺少 registry（信息库编码，如 population.person）") % {"where": where})
    code = code.strip()
    if code not in registries:
        registries[code] = Registry.objects.select_related("owner", "owner__division").filter(code=code).first()
    registry = registries[code]
    if registry is None:
        raise LinkageConfigError(_("%(where)s：信息库“%(code)s”不存在") % {"where": where, "code": code})
    try:
        definitions = field_map(registry_services.registry_fields(registry))
    except SchemaError as exc:
        raise LinkageConfigError(
            _("%(where)s：信息库“%(code)s”的字段无法读取：%(error)s")
            % {"where": where, "code": code, "error": "；".join(exc.messages)}
        ) from None
    name = raw.get("name", code)
    if not isinstance(name, str) or not _TABLE_NAME.match(name.strip()):
        raise LinkageConfigError(
            _("%(where)s：name 应为 1–64 个字母、数字、汉字、点、下划线或连字符") % {"where": where}
        )
    fields_raw = _mapping(raw.get("fields"), _("%(where)s 的 fields") % {"where": where})
    if not fields_raw:
        raise LinkageConfigError(_("%(where)s：fields 至少要把一个字段映射到角色") % {"where": where})
    fields: dict[str, str] = {}
    for field_name, role in fields_raw.items():
        field_name = str(field_name)
        if field_name not in definitions:
            raise LinkageConfigError(
                _("%(where)s 的 fields：字段“%(field)s”不是信息库 %(code)s 的字段（可用：%(fields)s）")
                % {"where": where, "field": field_name, "code": code, "fields": "、".join(definitions)}
            )
        if not isinstance(role, str) or role not in ROLES:
            raise LinkageConfigError(
                _("%(where)s 的 fields：字段“%(field)s”的角色“%(role)s”无效，可用角色：%(roles)s")
                % {"where": where, "field": field_name, "role": role, "roles": "、".join(ROLES)}
            )
        fields[field_name] = role
    division = raw.get("division", "")
    if division not in ("", None):
        division = str(division).strip()
        if not _DIVISION.match(division):
            raise LinkageConfigError(
                _("%(where)s：division 应为行政区划代码（如 370100），实际为“%(value)s”")
                % {"where": where, "value": division}
            )
    else:
        division = ""
    filters: dict[str, list[str]] = {}
    for field_name, accepted in _mapping(raw.get("filter") or {}, _("%(where)s 的 filter") % {"where": where}).items():
        field_name = str(field_name)
        definition = definitions.get(field_name)
        if definition is None:
            raise LinkageConfigError(
                _("%(where)s 的 filter：字段“%(field)s”不是信息库 %(code)s 的字段")
                % {"where": where, "field": field_name, "code": code}
            )
        if definition.is_personal:
            raise LinkageConfigError(
                _("%(where)s 的 filter：个人信息字段“%(field)s”不能用于筛选") % {"where": where, "field": field_name}
            )
        values = _values(accepted, _("%(where)s 的 filter.%(field)s") % {"where": where, "field": field_name})
        if definition.choices:
            unknown = [v for v in values if v not in definition.choices]
            if unknown:
                raise LinkageConfigError(
                    _("%(where)s 的 filter.%(field)s：%(values)s 不是可选值（可选：%(choices)s）")
                    % {
                        "where": where,
                        "field": field_name,
                        "values": "、".join(unknown),
                        "choices": "、".join(definition.choices),
                    }
                )
        filters[field_name] = values
    return RegistryTable(
        name=name.strip(), registry=registry, fields=fields, definitions=definitions, division=division, filter=filters
    )


def _authority_tokens(table: RegistryTable, field_name: str) -> tuple[str, ...]:
    """The authority of a field in its registry (the owner's kind or code when the schema names none)."""
    definition = table.definitions[field_name]
    if definition.authorities:
        return definition.authorities
    owner = table.registry.owner
    return (owner.kind or owner.code,)


def _rank(table: RegistryTable, role: str, tables: list[RegistryTable]) -> tuple[int, int, int]:
    """How authoritative a table is for a role: (owner is the field's authority, referenced by others, base library)."""
    field_name = table.field_of(role)
    owner = table.registry.owner
    tokens = set(_authority_tokens(table, field_name)) if field_name else set()
    own = int((bool(owner.kind) and owner.kind in tokens) or owner.code in tokens)
    code = table.registry.code
    referenced = sum(
        1
        for other in tables
        if other.registry.code != code
        and any(d.type == "reference" and d.ref == code for d in other.definitions.values())
    )
    base = int(table.registry.library == Registry.Library.BASE)
    return own, referenced, base


def default_authority(tables: list[RegistryTable], role: str) -> str:
    """The table authoritative for ``role`` by the registries' schemas (一数一源); LinkageConfigError when undecided.

    Among the tables that map the role, the one ranked highest by, in order: (1) the registry's
    owner is the field's authoritative source in its schema (the data is first-hand, not a copy);
    (2) other tables of the run refer to its registry (a reference field such as
    ``social_security.insured.person → population.person`` names the master record); (3) it is a
    base library (基础库) rather than a theme library (主题库). A tie at the top is an error asking for
    ``golden.authority.<role>``.
    """
    candidates = [t for t in tables if t.field_of(role)]
    if len(candidates) == 1:
        return candidates[0].name
    ranked = sorted(((_rank(t, role, tables), i, t) for i, t in enumerate(candidates)), key=lambda x: (x[0], -x[1]))
    best = ranked[-1][0]
    top = [t for rank, _i, t in ranked if rank == best]
    if len(top) > 1:
        raise LinkageConfigError(
            _(
                "golden.authority：无法从信息库的权威来源确定角色“%(role)s”的权威表"
                "（%(tables)s 同等权威），请在 golden.authority 中指定"
            )
            % {"role": role, "tables": "、".join(sorted(t.name for t in top))}
        )
    return top[0].name


def _parse_authority(raw: Any, tables: list[RegistryTable]) -> tuple[dict[str, str], list[str]]:
    """Authority of every mapped role: the defaults, with ``golden.authority`` overrides."""
    overrides: dict[str, str] = {}
    if raw is not None:
        raw = _mapping(raw, "golden")
        _unknown_keys(raw, frozenset({"authority"}), "golden")
        given = _mapping(raw.get("authority") or {}, "golden.authority")
        names = {t.name: t for t in tables}
        for role, table_name in given.items():
            role, table_name = str(role), str(table_name)
            if role not in ROLES:
                raise LinkageConfigError(
                    _("golden.authority：角色“%(role)s”无效，可用角色：%(roles)s")
                    % {"role": role, "roles": "、".join(ROLES)}
                )
            table = names.get(table_name)
            if table is None:
                raise LinkageConfigError(
                    _("golden.authority：角色“%(role)s”的权威来源“%(table)s”不是 tables 中的表")
                    % {"role": role, "table": table_name}
                )
            if table.field_of(role) is None:
                raise LinkageConfigError(
                    _("golden.authority：权威来源表 %(table)s 没有映射角色“%(role)s”")
                    % {"role": role, "table": table_name}
                )
            overrides[role] = table_name
    roles = [role for role in ROLES if any(t.field_of(role) for t in tables)]
    authority = {role: overrides.get(role) or default_authority(tables, role) for role in roles}
    return authority, sorted(overrides)


def parse_registry_settings(data: Any) -> RegistryPlan:
    """Validate the settings of a platform run (a mapping, e.g. loaded YAML) against the registries.

    Raises :class:`LinkageConfigError` naming the key: unknown keys, a missing or unknown registry,
    a field the registry does not have, an unknown role, a bad filter, an undecidable authority, and
    everything ``dgov link`` checks about modes, blocking and thresholds.
    """
    data = _mapping(data, _("设置"))
    _unknown_keys(data, _TOP_KEYS, _("设置"))
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > NAME_MAX:
        raise LinkageConfigError(_("name：缺少比对名称（至多 %(max)d 字，用于标识整改工单）") % {"max": NAME_MAX})
    tables_raw = data.get("tables")
    if not isinstance(tables_raw, list) or not tables_raw:
        raise LinkageConfigError(_("tables：应为非空列表，每项描述一个信息库"))
    registries: dict[str, Registry] = {}
    tables = [_parse_table(raw, index, registries) for index, raw in enumerate(tables_raw, start=1)]
    for key in ("mode", "entity", "identifier_kind"):
        if key in data and not isinstance(data[key], str):
            raise LinkageConfigError(_("%(key)s：应为文本") % {"key": key})
    # rows=[] stands in for the records until the run extracts them.
    settings = _settings(data, [TableSpec(name=t.name, columns=dict(t.fields), rows=[]) for t in tables])
    authority, overridden = _parse_authority(data.get("golden"), tables)
    return RegistryPlan(
        name=name.strip(), settings=settings, tables=tables, authority=authority, authority_overridden=overridden
    )
