"""Where a form field's value can come from (``x-source``): the syntax, its check at catalogue load, metadata.

A property of an item's ``form_schema`` may name the source of its value with the JSON-Schema
extension keyword ``x-source`` (extension keywords start with ``x-``, so ordinary JSON-Schema
tools ignore it). Two forms:

``<registry code>.<field>``
    A field of a base or theme library, e.g. ``population.person.name``,
    ``legal_entity.enterprise.uscc``. The registry code is everything before the last dot. The
    applicant's *own* record is read: the registry's **subject field** — its identifier when that is
    a resident ID or a USCC, else its first keyed resident-ID field (a person's theme record such
    as ``social_security.insured``), else its first keyed USCC field — is looked up with the
    account's verified ID number (person) or USCC (enterprise). A registry without a subject field
    is reached through the subject's record of another registry that references it, e.g.
    ``population.household`` through ``population.person.household``. Reference, GeoJSON and JSON
    fields cannot be a source (their values are not form values).

``licence:<type>.<item>``
    A data item of the applicant's valid e-licence of a type, the type named by its full code or
    as ``KIND:serial`` (the province's competent department of that kind and the serial of
    ``licenses/data/types.yaml``, e.g. ``licence:SCJG:001.legal_representative``). Besides the
    type's data items, ``holder_name``, ``holder_id``, ``number``, ``valid_from`` and
    ``valid_until`` of the licence itself may be named.

:func:`check_form_sources` is called by the catalogue loader for every item: a source that does
not parse, names an unknown registry, field, licence type or item, a registry whose records cannot
be tied to an applicant, a subject kind that is not among the item's holder kinds, or a form type
that cannot hold the value is a load problem (the load is all or nothing). ``KIND:serial`` is
replaced by the full type code in the stored schema, so pre-filling never depends on the province.
Registries are known from the installed ones and, for a catalogue loaded before the libraries are
installed, from the shipped library definitions.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from dgov.kernel.services.organizations import find_department
from dgov.licenses.models import LicenceType
from dgov.registry import libraries
from dgov.registry import services as registry_services
from dgov.registry.models import Registry
from dgov.registry.schema import FieldDef, parse_fields

__all__ = [
    "SOURCE_KEY",
    "LICENCE_PREFIX",
    "LICENCE_ATTRIBUTES",
    "RegistryInfo",
    "Source",
    "check_form_sources",
    "form_sources",
    "library_label",
    "parse_source",
    "registry_infos",
    "resolve_licence_type",
]

SOURCE_KEY = "x-source"
LICENCE_PREFIX = "licence:"
#: Attributes of a licence itself that may be named as ``licence:<type>.<attribute>``.
LICENCE_ATTRIBUTES = ("holder_name", "holder_id", "number", "valid_from", "valid_until")
_NAME = r"[a-z][a-z0-9_]*"
_REGISTRY_SOURCE = re.compile(rf"^({_NAME}(?:\.{_NAME})+)\.({_NAME})$")
_LICENCE_SOURCE = re.compile(rf"^{LICENCE_PREFIX}([A-Z]{{2,16}}:\d{{3}}|[0-9A-Z]{{6,40}})\.({_NAME})$")
_KIND_SERIAL = re.compile(r"^([A-Z]{2,16}):(\d{3})$")
_UNUSABLE_TYPES = ("reference", "geojson", "json")
_SUBJECT_TYPES = (("resident_id", "person"), ("uscc", "enterprise"))


@dataclass(frozen=True)
class Source:
    """A parsed ``x-source``: a registry field or a licence item."""

    text: str
    kind: str  # "registry" or "licence"
    registry: str = ""
    field: str = ""
    licence_type: str = ""  # as written: full code or KIND:serial
    item: str = ""

    @property
    def is_licence(self) -> bool:
        """Whether the value comes from an e-licence."""
        return self.kind == "licence"


@dataclass(frozen=True)
class RegistryInfo:
    """What pre-filling needs to know of a registry: its fields and how a subject's record is found."""

    code: str
    name: str
    library: str
    fields: dict[str, FieldDef] = field(default_factory=dict)
    subject_field: str = ""
    subject_kind: str = ""  # "person", "enterprise" or "" (no subject)
    # (registry code, reference field): the record is the one the subject's record there references.
    via: tuple[str, str] | None = None
    installed: bool = False

    @property
    def label(self) -> str:
        """The library's name in the active language (人口基础库 / Population base library), else the registry's."""
        if (get_language() or "").startswith("en"):
            english = _library_names().get(self.library, ("", ""))[1]
            if english:
                return english
        return self.library or self.name


def parse_source(text: Any) -> Source:
    """Parse an ``x-source`` value; ValueError with a Chinese message when it does not follow the syntax."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(_("x-source 应为“库编码.字段”或“licence:证照类型.数据项”"))
    text = text.strip()
    if text.startswith(LICENCE_PREFIX):
        match = _LICENCE_SOURCE.match(text)
        if not match:
            raise ValueError(
                _("x-source “%(source)s”应为 licence:<证照类型代码或 KIND:序号>.<数据项>，如 licence:SCJG:001.address")
                % {"source": text}
            )
        return Source(text, "licence", licence_type=match.group(1), item=match.group(2))
    match = _REGISTRY_SOURCE.match(text)
    if not match:
        raise ValueError(_("x-source “%(source)s”应为 <库编码>.<字段>，如 population.person.name") % {"source": text})
    return Source(text, "registry", registry=match.group(1), field=match.group(2))


def form_sources(schema: dict) -> list[tuple[str, dict, Source]]:
    """``(field, property, source)`` for every property of ``schema`` with a well-formed ``x-source``."""
    found = []
    for name, prop in ((schema or {}).get("properties") or {}).items():
        if not isinstance(prop, dict) or SOURCE_KEY not in prop:
            continue
        try:
            found.append((name, prop, parse_source(prop[SOURCE_KEY])))
        except ValueError:
            continue  # refused at load; a schema written some other way simply pre-fills nothing there
    return found


# --- registries ---------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _library_names() -> dict[str, tuple[str, str]]:
    """Chinese library name → (Chinese, English) and library_code → the same, from the shipped definition files."""
    names: dict[str, tuple[str, str]] = {}
    for path in sorted(libraries.LIBRARY_DIR.glob("*.json")):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(document, dict) and document.get("library_code"):
            pair = (str(document.get("name") or ""), str(document.get("name_en") or ""))
            names[document["library_code"]] = pair
            names[pair[0]] = pair
    return names


def library_label(registry_code: str, infos: dict[str, RegistryInfo] | None = None) -> str:
    """The name of the library a registry belongs to (人口基础库), else the registry code.

    ``infos`` — :func:`registry_infos` already built by a caller labelling several materials.
    """
    info = (infos if infos is not None else registry_infos()).get(registry_code)
    return info.label if info is not None else registry_code


@lru_cache(maxsize=1)
def _shipped() -> tuple[tuple[str, str, str, str, tuple[FieldDef, ...]], ...]:
    """The shipped registry definitions as (code, name, library code, identifier, fields)."""
    try:
        definitions = libraries.load_definitions()
    except libraries.LibraryDefinitionError:
        return ()
    return tuple(
        (
            d["code"],
            d["name"],
            d["library_code"],
            d["identifier_field"],
            tuple(parse_fields(d["fields"], identifier=d["identifier_field"])),
        )
        for d in definitions
    )


def _subject(fields: dict[str, FieldDef], identifier: str) -> tuple[str, str]:
    """(subject field, subject kind) of a registry, ("", "") when its records do not name a person or enterprise."""
    ident = fields.get(identifier)
    for ftype, kind in _SUBJECT_TYPES:
        if ident is not None and ident.type == ftype:
            return ident.name, kind
    for ftype, kind in _SUBJECT_TYPES:
        for definition in fields.values():
            if definition.type == ftype and (definition.unique or definition.lookup):
                return definition.name, kind
    return "", ""


def registry_infos() -> dict[str, RegistryInfo]:
    """Every known registry (installed ones over the shipped definitions), with subject field and route."""
    raw: dict[str, tuple[str, str, str, dict[str, FieldDef], bool]] = {}
    for code, name, library_code, identifier, defs in _shipped():
        raw[code] = (name, library_code, identifier, {f.name: f for f in defs}, False)
    for registry in Registry.objects.filter(is_active=True).select_related("current_schema"):
        defs = {f.name: f for f in registry_services.registry_fields(registry)}
        raw[registry.code] = (registry.name, registry.library_code, registry.identifier_field, defs, True)
    names = _library_names()
    infos: dict[str, RegistryInfo] = {}
    for code, (name, library_code, identifier, defs, installed) in raw.items():
        subject_field, kind = _subject(defs, identifier)
        infos[code] = RegistryInfo(
            code, name, names.get(library_code, ("", ""))[0], defs, subject_field, kind, installed=installed
        )
    for code, info in list(infos.items()):
        if info.subject_kind:
            continue
        for other in infos.values():
            if not other.subject_kind:
                continue
            ref = next((f for f in other.fields.values() if f.type == "reference" and f.ref == code), None)
            if ref is not None:
                infos[code] = RegistryInfo(
                    code,
                    info.name,
                    info.library,
                    info.fields,
                    "",
                    other.subject_kind,
                    (other.code, ref.name),
                    installed=info.installed,
                )
                break
    return infos


# --- licence types ------------------------------------------------------------------------------------


def resolve_licence_type(ref: str, *, province_code: str | None = None, cache: dict | None = None):
    """The licence type named by full code or ``KIND:serial`` (in ``province_code``, default the demo province)."""
    ref = (ref or "").strip().upper()
    cache = cache if cache is not None else {}
    key = ("prefill-licence", ref, province_code)
    if key not in cache:
        code = ref
        match = _KIND_SERIAL.match(ref)
        if match:
            province = province_code or getattr(settings, "DEMO_PROVINCE_CODE", "370000")
            department = find_department(province, match.group(1))
            code = f"{department.uscc}{match.group(2)}" if department else ""
        cache[key] = LicenceType.objects.filter(code=code).first() if code else None
    return cache[key]


def _licence_item_type(licence_type, item: str) -> str | None:
    """The value type of a licence item or attribute; None when the type has no such item."""
    if item in LICENCE_ATTRIBUTES:
        return "date" if item.startswith("valid_") else "string"
    for entry in licence_type.items or []:
        if isinstance(entry, dict) and entry.get("name") == item:
            return str(entry.get("type", "string"))
    return None


# --- the check at load ----------------------------------------------------------------------------------


def _form_types(value_type: str) -> tuple[str, ...]:
    """The form property types that can hold a value of this registry-field or licence-item type."""
    if value_type in ("integer", "decimal"):
        return ("integer", "number", "string")
    if value_type == "boolean":
        return ("boolean",)
    return ("string",)


def check_form_sources(
    schema: dict,
    *,
    province_code: str | None = None,
    holder_kinds=None,
    cache: dict | None = None,
) -> tuple[dict, list[str]]:
    """Check every ``x-source`` of a form schema; returns the schema (licence types as full codes) and problems.

    ``holder_kinds`` (the item's 服务对象) — when given, a source whose subject is of no listed kind
    is refused: nobody applying for the item could have such a record or licence.
    """
    properties = (schema or {}).get("properties") if isinstance(schema, dict) else None
    if not isinstance(properties, dict) or not any(
        isinstance(prop, dict) and SOURCE_KEY in prop for prop in properties.values()
    ):
        return schema, []
    schema = copy.deepcopy(schema)
    problems: list[str] = []
    if cache is None:
        cache = {}
    if "prefill-infos" not in cache:  # one catalogue load checks many items against the same registries
        cache["prefill-infos"] = registry_infos()
    infos = cache["prefill-infos"]
    kinds = set(holder_kinds) if holder_kinds else None
    for name, prop in schema["properties"].items():
        if not isinstance(prop, dict) or SOURCE_KEY not in prop:
            continue
        where = f"form_schema.properties.{name}.x-source"
        try:
            source = parse_source(prop[SOURCE_KEY])
        except ValueError as exc:
            problems.append(f"{where}：{exc}")
            continue
        if source.is_licence:
            licence_type = resolve_licence_type(source.licence_type, province_code=province_code, cache=cache)
            if licence_type is None:
                problems.append(
                    _("%(where)s：电子证照类型 %(ref)s 不存在") % {"where": where, "ref": source.licence_type}
                )
                continue
            value_type = _licence_item_type(licence_type, source.item)
            if value_type is None:
                problems.append(
                    _("%(where)s：证照“%(type)s”没有数据项 %(item)s")
                    % {"where": where, "type": licence_type.name, "item": source.item}
                )
                continue
            subject_kind = licence_type.holder_kind
            prop[SOURCE_KEY] = f"{LICENCE_PREFIX}{licence_type.code}.{source.item}"
        else:
            info = infos.get(source.registry)
            if info is None:
                problems.append(_("%(where)s：信息库 %(code)s 不存在") % {"where": where, "code": source.registry})
                continue
            definition = info.fields.get(source.field)
            if definition is None:
                problems.append(
                    _("%(where)s：信息库 %(code)s 没有字段 %(field)s")
                    % {"where": where, "code": source.registry, "field": source.field}
                )
                continue
            if definition.type in _UNUSABLE_TYPES:
                problems.append(
                    _("%(where)s：字段 %(field)s 的类型 %(type)s 不能用于预填")
                    % {"where": where, "field": source.field, "type": definition.type}
                )
                continue
            if not info.subject_kind:
                problems.append(
                    _("%(where)s：信息库 %(code)s 的记录无法对应到申请人（没有身份证号码或统一社会信用代码字段）")
                    % {"where": where, "code": source.registry}
                )
                continue
            value_type, subject_kind = definition.type, info.subject_kind
        if kinds is not None and subject_kind not in kinds:
            problems.append(
                _("%(where)s：来源的主体类型为 %(kind)s，不在事项服务对象 %(kinds)s 之中")
                % {"where": where, "kind": subject_kind, "kinds": "、".join(sorted(kinds))}
            )
        if prop.get("type", "string") not in _form_types(value_type):
            problems.append(
                _("%(where)s：表单字段类型 %(form)s 不能容纳来源值（%(value)s）")
                % {"where": where, "form": prop.get("type"), "value": value_type}
            )
    return schema, problems
