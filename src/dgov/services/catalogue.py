"""The service-item catalogue (政务服务事项目录): loading items and bundles, implementations, 三级四同, search.

* **Loading** — :func:`load_catalogue` checks every entry of a YAML/JSON file (``{items: [...],
  bundles: [...]}``) and writes only when all are good (``dgov services items load``); the report
  names every bad entry with all its problems. Items are keyed by their basic code (基本编码); a
  changed item gets ``version + 1`` and its materials are replaced. A licence type is named by its
  full code or ``KIND:serial`` (the province's competent department of that kind and the serial,
  as in ``licenses/data/types.yaml``).
* **Implementations** (实施清单) — :func:`implement_items` gives every item an implementation at
  each of its levels by the departments of its kind in the province (at a county without that
  kind, the county's 行政审批服务局), copying the four elements; implementing code = the
  organization's USCC + the basic code.
* **三级四同** — :func:`check_consistency` compares each active implementation's name, type, legal
  basis and basic code with the item and keeps one :class:`~dgov.services.models.ItemDrift` per
  differing element (opened, refreshed, resolved when gone); one audit record per run.
* **Search** — :func:`search_items`: the query is segmented with jieba and every word must match
  the name, keywords, summary or the competent department's name.

Who may change the catalogue and run the check: system actors (CLI), platform administrators and
officials of the provincial 大数据局 (DSJ) or 政务服务管理办公室 (ZWFW). Drift findings are shown
to those in full, to a city's 大数据局 for its city, and to other officials for their own department.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from dgov.kernel import dataload
from dgov.kernel.models import Organization
from dgov.kernel.services import audit
from dgov.kernel.services.divisions import scope_prefix
from dgov.kernel.services.organizations import find_department
from dgov.licenses.models import LicenceType
from dgov.registry.services import department_of, is_admin
from dgov.services import sources
from dgov.services.form_schema import FORMATS, ORDER_KEY
from dgov.services.models import Bundle, GuideMaterial, ItemDrift, ItemImplementation, ItemType, ServiceItem

__all__ = [
    "DEMO_ITEMS",
    "DEPARTMENT_KINDS",
    "CatalogueFileError",
    "CheckReport",
    "LoadReport",
    "check_consistency",
    "clean_form_schema",
    "drifts_for",
    "implement_items",
    "load_catalogue",
    "may_manage_catalogue",
    "read_catalogue_file",
    "search_items",
]

DEMO_ITEMS = Path(__file__).parent / "data" / "items.yaml"
ADMIN_KINDS = ("DSJ", "ZWFW")
LEVELS = {"province": 1, "city": 2, "county": 3}
HOLDER_KINDS = ("person", "enterprise")
FOUR_ELEMENTS = ("name", "type", "legal_basis", "basic_code")
#: Competent department kinds (部门类别) and their Chinese names, used in search and on guides.
DEPARTMENT_KINDS = {
    "GA": "公安",
    "MZ": "民政",
    "WJ": "卫生健康",
    "RS": "人力资源社会保障 人社",
    "SCJG": "市场监督管理 市场监管",
    "YB": "医疗保障 医保",
    "JT": "交通运输",
    "ZJ": "住房和城乡建设 住建",
    "JY": "教育",
    "ZRZY": "自然资源",
    "STHJ": "生态环境",
    "NYNC": "农业农村",
    "SW": "税务",
    "SF": "司法",
    "YJ": "应急管理",
    "XZSP": "行政审批",
}
COUNTY_FALLBACK_KIND = "XZSP"

_CODE = re.compile(r"^[0-9A-Z]{6,24}$")
_LICENCE_REF = re.compile(r"^([A-Z]{2,16}):(\d{3})$")
_FIELD = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_ITEM_KEYS = frozenset(
    {
        "code",
        "name",
        "type",
        "legal_basis",
        "department",
        "levels",
        "holder_kinds",
        "online_depth",
        "legal_limit_days",
        "promised_limit_days",
        "visits",
        "fees",
        "conditions",
        "steps",
        "keywords",
        "summary",
        "form_schema",
        "process_key",
        "produces_licence",
        "status",
        "materials",
    }
)
_MATERIAL_KEYS = frozenset({"name", "required", "kind", "licence", "registry", "fields", "source", "copies", "notes"})
_BUNDLE_KEYS = frozenset({"code", "name", "life_event", "description", "items", "form_mapping"})
_SCHEMA_TYPES = ("string", "integer", "number", "boolean")
_PROPERTY_KEYS = frozenset(
    {
        "type",
        "title",
        "description",
        "enum",
        "maxLength",
        "minLength",
        "pattern",
        "format",
        "minimum",
        "maximum",
        "x-source",  # where the value can be pre-filled from (dgov.services.sources), checked in _clean_item
    }
)
_TYPE_BY_LABEL = {str(label): value for value, label in ItemType.choices}


class CatalogueFileError(ValueError):
    """A catalogue file that cannot be read at all (not YAML/JSON, wrong shape); the message says why."""


# --- permissions ----------------------------------------------------------------------------------


def _is_system(actor) -> bool:
    """The CLI or another system actor (a ``kind:label`` string)."""
    return isinstance(actor, str)


def _is_provincial_admin_office(department: Organization | None) -> bool:
    """The active provincial 大数据局 or 政务服务管理办公室."""
    return bool(
        department is not None
        and department.is_active
        and department.kind in ADMIN_KINDS
        and department.level == Organization.Level.PROVINCE
    )


def may_manage_catalogue(actor) -> bool:
    """Whether the actor may change the catalogue and run 三级四同: system actors, admins, provincial DSJ/ZWFW."""
    if _is_system(actor) or is_admin(actor):
        return True
    if not getattr(actor, "is_authenticated", False) or hasattr(actor, "client_id"):
        return False
    return _is_provincial_admin_office(department_of(actor))


def _refuse(action: str, *, actor, message: str) -> PermissionDenied:
    """Audit a refused action (own transaction) and return the exception to raise."""
    with transaction.atomic():
        audit.record(action, actor=actor, outcome="denied", detail={"reason": message})
    return PermissionDenied(message)


# --- validation ---------------------------------------------------------------------------------------


def _is_int(value) -> bool:
    """A true integer (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _text(raw: Mapping, key: str, problems: list[str], *, limit: int, required: bool = True) -> str:
    """A stripped text field of at most ``limit`` characters (problem noted when missing or bad)."""
    value = raw.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        problems.append(_("%(key)s：应为文本") % {"key": key})
        return ""
    value = value.strip()
    if required and not value:
        problems.append(_("%(key)s：不能为空") % {"key": key})
    elif len(value) > limit:
        problems.append(_("%(key)s：不能超过 %(n)d 个字符") % {"key": key, "n": limit})
    return value


def _days(raw: Mapping, key: str, problems: list[str], *, required: bool = True) -> int:
    """A number of working days, 0–999."""
    value = raw.get(key)
    if value is None and not required:
        return 0
    if not _is_int(value) or not 0 <= value <= 999:
        problems.append(_("%(key)s：应为 0–999 的整数（工作日）") % {"key": key})
        return 0
    return value


def clean_form_schema(schema) -> tuple[dict, list[str]]:
    """Check an application form schema (JSON Schema 2020-12 subset); returns it and the problems.

    The subset: an object with ``properties`` of type string/integer/number/boolean (``format`` one of
    :data:`dgov.services.form_schema.FORMATS`), each with ``title`` (Chinese) and optionally ``enum``,
    ``maxLength``, ``minLength``, ``pattern``, ``minimum``, ``maximum``, ``description`` and the
    extension ``x-source`` (its value is checked by :func:`dgov.services.sources.check_form_sources`);
    ``required`` names properties. The cleaned schema gets ``x-order``, the property names in file
    order, which :func:`dgov.services.form_schema.fields_of` follows.
    """
    problems: list[str] = []
    if schema in (None, {}):
        return {}, problems
    if not isinstance(schema, Mapping) or schema.get("type") != "object":
        return {}, [_("form_schema：应为 type 为 object 的 JSON Schema")]
    unknown = sorted(
        set(schema) - {"$schema", "type", "title", "properties", "required", "additionalProperties", ORDER_KEY}
    )
    if unknown:
        problems.append(_("form_schema：未知的键 %(keys)s") % {"keys": ", ".join(unknown)})
    properties = schema.get("properties") or {}
    if not isinstance(properties, Mapping):
        return {}, [*problems, _("form_schema.properties：应为对象")]
    for name, prop in properties.items():
        where = f"form_schema.properties.{name}"
        if not isinstance(name, str) or not _FIELD.match(name):
            problems.append(_("%(where)s：字段名应为小写字母开头的标识符") % {"where": where})
            continue
        if not isinstance(prop, Mapping):
            problems.append(_("%(where)s：应为对象") % {"where": where})
            continue
        extra = sorted(set(prop) - _PROPERTY_KEYS)
        if extra:
            problems.append(_("%(where)s：未知的键 %(keys)s") % {"where": where, "keys": ", ".join(extra)})
        if prop.get("type") not in _SCHEMA_TYPES:
            problems.append(_("%(where)s：type 应为 string/integer/number/boolean") % {"where": where})
        if not isinstance(prop.get("title"), str) or not prop["title"].strip():
            problems.append(_("%(where)s：缺少中文标题 title") % {"where": where})
        if "format" in prop and prop["format"] not in FORMATS:
            problems.append(
                _("%(where)s：format 只支持 %(formats)s") % {"where": where, "formats": " / ".join(FORMATS)}
            )
        if "enum" in prop and (not isinstance(prop["enum"], list) or not prop["enum"]):
            problems.append(_("%(where)s：enum 应为非空列表") % {"where": where})
        for key in ("maxLength", "minLength"):
            if key in prop and (not _is_int(prop[key]) or prop[key] < 0):
                problems.append(_("%(where)s：%(key)s 应为非负整数") % {"where": where, "key": key})
        if "pattern" in prop:
            try:
                re.compile(str(prop["pattern"]))
            except re.error:
                problems.append(_("%(where)s：pattern 不是有效的正则表达式") % {"where": where})
    required = schema.get("required", [])
    if not isinstance(required, list) or any(name not in properties for name in required):
        problems.append(_("form_schema.required：应为 properties 中字段名的列表"))
    order = schema.get(ORDER_KEY, list(properties))
    if not isinstance(order, list) or sorted(map(str, order)) != sorted(map(str, properties)):
        problems.append(_("form_schema.x-order：应列出 properties 的全部字段名，各一次"))
    # The field order as written: PostgreSQL's jsonb does not keep the key order of ``properties``.
    return {**schema, ORDER_KEY: list(order) if isinstance(order, list) else list(properties)}, problems


def _resolve_licence(ref, province_code: str, cache: dict) -> LicenceType | None | str:
    """A licence type by full code or ``KIND:serial``; ``"?"`` when given but not found."""
    if ref in (None, ""):
        return None
    if not isinstance(ref, str):
        return "?"
    ref = ref.strip().upper()
    if ref not in cache:
        code = ref
        match = _LICENCE_REF.match(ref)
        if match:
            department = find_department(province_code, match.group(1))
            code = f"{department.uscc}{match.group(2)}" if department else ""
        cache[ref] = LicenceType.objects.filter(code=code).first() if code else None
    return cache[ref] or "?"


@dataclass
class _ItemDraft:
    """A checked item entry: the item's values and its materials' values."""

    code: str
    values: dict[str, Any]
    materials: list[dict[str, Any]]


def _clean_materials(raw, problems: list[str], province_code: str, cache: dict) -> list[dict[str, Any]]:
    """The materials of an item entry."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.append(_("materials：应为材料列表"))
        return []
    cleaned = []
    for position, entry in enumerate(raw, start=1):
        where = f"materials[{position}]"
        if not isinstance(entry, Mapping):
            problems.append(_("%(where)s：应为对象") % {"where": where})
            continue
        mine: list[str] = []
        extra = sorted(set(entry) - _MATERIAL_KEYS)
        if extra:
            mine.append(_("未知的键 %(keys)s") % {"keys": ", ".join(extra)})
        name = _text(entry, "name", mine, limit=200)
        kind = entry.get("kind", "file")
        values: dict[str, Any] = {"position": position, "name": name, "kind": kind}
        if kind not in GuideMaterial.Kind.values:
            mine.append(_("kind 应为 file、licence 或 data"))
        if not isinstance(entry.get("required", True), bool):
            mine.append(_("required 应为 true 或 false"))
        values["required"] = entry.get("required", True) is not False
        copies = entry.get("copies", 1)
        if not _is_int(copies) or not 0 <= copies <= 99:
            mine.append(_("copies 应为 0–99 的整数"))
        values["copies"] = copies if _is_int(copies) else 1
        values["source"] = _text(entry, "source", mine, limit=100, required=False)
        values["notes"] = _text(entry, "notes", mine, limit=2000, required=False)
        licence = _resolve_licence(entry.get("licence"), province_code, cache)
        if licence == "?":
            mine.append(_("licence：电子证照类型 %(ref)s 不存在") % {"ref": entry.get("licence")})
            licence = None
        values["licence_type"] = licence
        values["registry_code"] = _text(entry, "registry", mine, limit=64, required=False)
        fields = entry.get("fields", [])
        if not isinstance(fields, list) or not all(isinstance(f, str) and f for f in fields):
            mine.append(_("fields 应为数据项名称列表"))
            fields = []
        values["registry_fields"] = fields
        if kind == "licence" and licence is None:
            mine.append(_("电子证照材料应给出 licence（证照类型）"))
        if kind == "data" and (not values["registry_code"] or not fields):
            mine.append(_("共享数据材料应给出 registry（基础库）和 fields（数据项）"))
        problems.extend(f"{where}（{name or '—'}）：{message}" for message in mine)
        cleaned.append(values)
    return cleaned


def _clean_item(raw, province_code: str, cache: dict) -> tuple[_ItemDraft | None, list[str]]:
    """Check one item entry; returns the draft (None when unusable) and every problem."""
    if not isinstance(raw, Mapping):
        return None, [_("应为事项对象")]
    problems: list[str] = []
    extra = sorted(set(raw) - _ITEM_KEYS)
    if extra:
        problems.append(_("未知的键 %(keys)s") % {"keys": ", ".join(extra)})
    code = str(raw.get("code") or "").strip().upper()
    if not _CODE.match(code):
        problems.append(_("code：基本编码应为 6–24 位数字或大写字母"))
    values: dict[str, Any] = {
        "name": _text(raw, "name", problems, limit=200),
        "legal_basis": _text(raw, "legal_basis", problems, limit=4000),
        "conditions": _text(raw, "conditions", problems, limit=4000, required=False),
        "keywords": _text(raw, "keywords", problems, limit=200, required=False),
        "summary": _text(raw, "summary", problems, limit=4000, required=False),
    }
    item_type = raw.get("type")
    item_type = _TYPE_BY_LABEL.get(item_type, item_type)
    if item_type not in ItemType.values:
        problems.append(_("type：事项类型应为 %(types)s 之一") % {"types": "、".join(_TYPE_BY_LABEL)})
    values["type"] = item_type
    department = raw.get("department")
    if not isinstance(department, str) or not re.match(r"^[A-Z]{2,16}$", department):
        problems.append(_("department：主管部门类别应为大写字母代码，如 GA、SCJG"))
    values["department_kind"] = department
    levels = raw.get("levels", ["province", "city", "county"])
    if not isinstance(levels, list) or not levels or any(level not in LEVELS for level in levels):
        problems.append(_("levels：行使层级应为 province、city、county 的列表"))
    values["levels"] = levels
    holders = raw.get("holder_kinds", ["person"])
    if not isinstance(holders, list) or not holders or any(h not in HOLDER_KINDS for h in holders):
        problems.append(_("holder_kinds：服务对象应为 person、enterprise 的列表"))
    values["holder_kinds"] = holders
    depth = raw.get("online_depth", 1)
    if not _is_int(depth) or not 1 <= depth <= 4:
        problems.append(_("online_depth：网办深度应为 1–4"))
    values["online_depth"] = depth
    values["legal_limit_days"] = _days(raw, "legal_limit_days", problems)
    values["promised_limit_days"] = _days(raw, "promised_limit_days", problems)
    if values["promised_limit_days"] > values["legal_limit_days"]:
        problems.append(_("promised_limit_days：承诺时限不能超过法定时限"))
    visits = raw.get("visits", 0)
    if not _is_int(visits) or not 0 <= visits <= 9:
        problems.append(_("visits：到现场次数应为 0–9"))
    values["visits"] = visits
    fees = raw.get("fees") or []
    if not isinstance(fees, list) or any(
        not isinstance(f, Mapping) or not f.get("name") or not _is_int(f.get("amount_fen")) or f["amount_fen"] < 0
        for f in fees
    ):
        problems.append(_("fees：收费应为 {name, amount_fen, basis} 列表（金额以分计）"))
    values["fees"] = fees
    steps = raw.get("steps") or []
    if not isinstance(steps, list) or any(not isinstance(s, Mapping) or not s.get("name") for s in steps):
        problems.append(_("steps：办理流程应为 {name, description} 列表"))
    values["steps"] = steps
    schema, schema_problems = clean_form_schema(raw.get("form_schema"))
    problems.extend(schema_problems)
    schema, source_problems = sources.check_form_sources(
        schema, province_code=province_code, holder_kinds=holders if isinstance(holders, list) else None, cache=cache
    )
    problems.extend(source_problems)
    values["form_schema"] = schema
    process_key = raw.get("process_key", "review")
    if not isinstance(process_key, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$", process_key):
        problems.append(_("process_key：应为 BPMN 流程标识"))
    values["process_key"] = process_key
    produces = _resolve_licence(raw.get("produces_licence"), province_code, cache)
    if produces == "?":
        problems.append(_("produces_licence：电子证照类型 %(ref)s 不存在") % {"ref": raw.get("produces_licence")})
        produces = None
    values["produces_licence_type"] = produces
    status = raw.get("status", "active")
    if status not in ServiceItem.Status.values:
        problems.append(_("status：应为 active 或 retired"))
    values["status"] = status
    materials = _clean_materials(raw.get("materials"), problems, province_code, cache)
    return _ItemDraft(code, values, materials), problems


def _clean_bundle(raw, item_codes: set[str]) -> tuple[dict[str, Any] | None, list[str]]:
    """Check one bundle entry against the known item codes (stored or in the same file)."""
    if not isinstance(raw, Mapping):
        return None, [_("应为一件事对象")]
    problems: list[str] = []
    extra = sorted(set(raw) - _BUNDLE_KEYS)
    if extra:
        problems.append(_("未知的键 %(keys)s") % {"keys": ", ".join(extra)})
    code = str(raw.get("code") or "").strip()
    if not re.match(r"^[a-z][a-z0-9_-]{1,31}$", code):
        problems.append(_("code：一件事编码应为小写字母开头的标识符"))
    values = {
        "code": code,
        "name": _text(raw, "name", problems, limit=100),
        "life_event": _text(raw, "life_event", problems, limit=100, required=False),
        "description": _text(raw, "description", problems, limit=4000, required=False),
    }
    items = raw.get("items")
    if not isinstance(items, list) or len(items) < 2:
        problems.append(_("items：一件事应包含至少两个事项"))
        items = []
    codes = [str(code).strip().upper() for code in items]
    missing = [code for code in codes if code not in item_codes]
    if missing:
        problems.append(_("items：事项 %(codes)s 不存在") % {"codes": "、".join(missing)})
    values["items"] = codes
    mapping = raw.get("form_mapping") or {}
    if not isinstance(mapping, Mapping) or any(not isinstance(v, list) for v in mapping.values()):
        problems.append(_("form_mapping：应为 {字段: [事项编码.字段, …]}"))
        mapping = {}
    for targets in mapping.values():
        for target in targets:
            item_code = str(target).partition(".")[0].upper()
            if item_code not in codes:
                problems.append(_("form_mapping：%(target)s 不属于本一件事的事项") % {"target": target})
    values["form_mapping"] = dict(mapping)
    return values, problems


# --- loading -------------------------------------------------------------------------------------------


class LoadReport(dataload.LoadReport):
    """What a load did or would do: items and bundles created, updated, unchanged, and every bad entry."""

    rejected_text = gettext_noop("事项目录有 %(n)d 个条目不正确，未做任何修改：")
    entry_text = gettext_noop("第 %(index)d 个（%(code)s）：%(messages)s")
    summary_text = gettext_noop("新增 %(created)d 个、更新 %(updated)d 个、未变 %(unchanged)d 个事项或一件事。")


#: The item fields a catalogue entry sets.
_DRAFT_KEYS = (
    "name",
    "legal_basis",
    "conditions",
    "keywords",
    "summary",
    "type",
    "department_kind",
    "levels",
    "holder_kinds",
    "online_depth",
    "legal_limit_days",
    "promised_limit_days",
    "visits",
    "fees",
    "steps",
    "form_schema",
    "process_key",
    "produces_licence_type",
    "status",
)


def _canonical_item(item: ServiceItem) -> dict[str, Any]:
    """The stored item and materials in the shape of a draft, to tell whether a load changes it."""
    values = {key: getattr(item, key) for key in _DRAFT_KEYS}
    values["produces_licence_type"] = item.produces_licence_type_id
    materials = [
        {
            "position": m.position,
            "name": m.name,
            "kind": m.kind,
            "required": m.required,
            "copies": m.copies,
            "source": m.source,
            "notes": m.notes,
            "licence_type": m.licence_type_id,
            "registry_code": m.registry_code,
            "registry_fields": m.registry_fields,
        }
        for m in item.materials.all()
    ]
    return {"values": values, "materials": materials}


def _canonical_draft(draft: _ItemDraft) -> dict[str, Any]:
    """A draft with licence types as ids, comparable with :func:`_canonical_item`."""
    values = dict(draft.values)
    values["produces_licence_type"] = values["produces_licence_type"].pk if values["produces_licence_type"] else None
    materials = [{**m, "licence_type": m["licence_type"].pk if m["licence_type"] else None} for m in draft.materials]
    return {"values": values, "materials": materials}


def load_catalogue(
    document, *, actor, source: str = "", dry_run: bool = False, province_code: str | None = None
) -> LoadReport:
    """Check every item and bundle of a catalogue document and, only when all are good, write them.

    ``document`` is ``{"items": [...], "bundles": [...]}`` (or a list of items). Entries are
    numbered in file order, items first. Items and bundles not in the document are left as they
    are. Refused (PermissionDenied, audited) for actors who may not manage the catalogue.
    """
    if not may_manage_catalogue(actor):
        raise _refuse("services.items.load", actor=actor, message=_("无权维护政务服务事项目录"))
    province_code = province_code or settings.DEMO_PROVINCE_CODE
    report = LoadReport(source=source)
    if isinstance(document, list):
        document = {"items": document}
    if not isinstance(document, Mapping) or not set(document) <= {"items", "bundles"}:
        report.errors.append((0, "", [_("事项目录应为 {items: [...], bundles: [...]}")]))
        return report
    items, bundles = document.get("items") or [], document.get("bundles") or []
    if not isinstance(items, list) or not isinstance(bundles, list):
        report.errors.append((0, "", [_("items 和 bundles 应为列表")]))
        return report
    cache: dict = {}
    drafts: list[_ItemDraft] = []
    seen: dict[str, int] = {}
    index = 0
    for raw in items:
        index += 1
        draft, problems = _clean_item(raw, province_code, cache)
        code = draft.code if draft else ""
        if code and code in seen:
            problems.append(_("基本编码与第 %(index)d 个重复") % {"index": seen[code]})
        if code:
            seen.setdefault(code, index)
        if problems:
            report.errors.append((index, code, problems))
        elif draft is not None:
            drafts.append(draft)
    known = set(ServiceItem.objects.values_list("basic_code", flat=True)) | set(seen)
    bundle_drafts: list[dict[str, Any]] = []
    bundle_seen: dict[str, int] = {}
    for raw in bundles:
        index += 1
        values, problems = _clean_bundle(raw, known)
        code = values["code"] if values else ""
        if code and code in bundle_seen:
            problems.append(_("一件事编码与第 %(index)d 个重复") % {"index": bundle_seen[code]})
        if code:
            bundle_seen.setdefault(code, index)
        if problems:
            report.errors.append((index, code, problems))
        elif values is not None:
            bundle_drafts.append(values)
    stored = {
        i.basic_code: i
        for i in ServiceItem.objects.prefetch_related("materials").filter(basic_code__in=[d.code for d in drafts])
    }
    stored_bundles = {
        b.code: b for b in Bundle.objects.prefetch_related("items").filter(code__in=[b["code"] for b in bundle_drafts])
    }
    if report.errors or dry_run:
        for draft in drafts:
            item = stored.get(draft.code)
            bucket = (
                report.created
                if item is None
                else report.unchanged
                if _canonical_item(item) == _canonical_draft(draft)
                else report.updated
            )
            bucket.append(draft.code)
        for values in bundle_drafts:
            (report.updated if values["code"] in stored_bundles else report.created).append(values["code"])
        return report
    with transaction.atomic():
        for draft in drafts:
            _write_item(draft, stored.get(draft.code), actor=actor, report=report)
        by_code = {i.basic_code: i for i in ServiceItem.objects.filter(basic_code__in=known)}
        for values in bundle_drafts:
            _write_bundle(values, stored_bundles.get(values["code"]), by_code, actor=actor, report=report)
        audit.record(
            "services.items.load",
            actor=actor,
            target=source or None,
            detail={"created": len(report.created), "updated": len(report.updated), "unchanged": len(report.unchanged)},
        )
    return report


def _write_item(draft: _ItemDraft, item: ServiceItem | None, *, actor, report: LoadReport) -> None:
    """Create or update one item and its materials (inside the load's transaction), audited."""
    if item is not None and _canonical_item(item) == _canonical_draft(draft):
        report.unchanged.append(draft.code)
        return
    if item is None:
        item = ServiceItem.objects.create(basic_code=draft.code, **draft.values)
        report.created.append(draft.code)
        action = "services.item.create"
    else:
        item = ServiceItem.objects.select_for_update().get(pk=item.pk)
        for key, value in draft.values.items():
            setattr(item, key, value)
        item.version += 1
        item.save()
        item.materials.all().delete()
        report.updated.append(draft.code)
        action = "services.item.update"
    GuideMaterial.objects.bulk_create(GuideMaterial(item=item, **m) for m in draft.materials)
    audit.record(action, actor=actor, target=item, detail={"code": item.basic_code, "version": item.version})


def _write_bundle(values: dict, bundle: Bundle | None, by_code: dict, *, actor, report: LoadReport) -> None:
    """Create or update one bundle (inside the load's transaction), audited when changed."""
    codes = values.pop("items")
    fields = {k: v for k, v in values.items() if k != "code"}
    if bundle is not None:
        same = all(getattr(bundle, k) == v for k, v in fields.items()) and sorted(
            i.basic_code for i in bundle.items.all()
        ) == sorted(codes)
        if same:
            report.unchanged.append(bundle.code)
            return
        for key, value in fields.items():
            setattr(bundle, key, value)
        bundle.save()
        report.updated.append(bundle.code)
    else:
        bundle = Bundle.objects.create(code=values["code"], **fields)
        report.created.append(bundle.code)
    bundle.items.set([by_code[code] for code in codes])
    audit.record("services.bundle.save", actor=actor, target=bundle, detail={"code": bundle.code, "items": codes})


def parse_catalogue(text: str, *, fmt: str = "") -> Any:
    """The data of a catalogue text (YAML or JSON)."""
    return dataload.parse_document(text, fmt=fmt, error=CatalogueFileError)


def read_catalogue_file(path: str | Path) -> Any:
    """The data of a ``.yaml``/``.yml`` or ``.json`` catalogue file (UTF-8, BOM allowed)."""
    text = dataload.read_text(
        path,
        error=CatalogueFileError,
        too_large=_("事项目录文件过大（上限 4 MiB）"),
        not_utf8=_("事项目录文件应为 UTF-8 编码"),
    )
    return parse_catalogue(text, fmt=dataload.format_of(path))


# --- implementations (实施清单) ----------------------------------------------------------------------------


def _default_windows(organization: Organization) -> list[dict[str, str]]:
    """The service window of an organization's area (demo data: the local government service centre)."""
    place = organization.division.name
    return [
        {
            "name": _("%(place)s政务服务中心综合受理窗口") % {"place": place},
            "address": _("%(place)s政务服务中心一楼") % {"place": place},
            "hours": _("工作日 9:00–12:00，13:30–17:00"),
            "phone": "12345",
        }
    ]


def implement_items(province_code: str, *, actor, items: QuerySet | None = None) -> int:
    """Give every active item an implementation at each of its levels in the province (idempotent); returns how many.

    At each level the departments of the item's kind implement it; at a county without one, the
    county's 行政审批服务局. The four elements are copied from the item. One audit record.
    """
    if not may_manage_catalogue(actor):
        raise _refuse("services.items.implement", actor=actor, message=_("无权维护实施清单"))
    items = list(items if items is not None else ServiceItem.objects.filter(status=ServiceItem.Status.ACTIVE))
    organizations = list(
        Organization.objects.select_related("division").filter(
            division__code__startswith=scope_prefix(province_code), is_active=True
        )
    )
    by_level_kind: dict[tuple[int, str], list[Organization]] = {}
    for org in organizations:
        by_level_kind.setdefault((org.level, org.kind), []).append(org)
    existing = set(ItemImplementation.objects.values_list("item_id", "organization_id"))
    made: list[ItemImplementation] = []
    for item in items:
        for level_name in item.levels:
            level = LEVELS[level_name]
            orgs = list(by_level_kind.get((level, item.department_kind), []))
            if level == LEVELS["county"]:
                covered = {org.division_id for org in orgs}
                orgs += [
                    org
                    for org in by_level_kind.get((level, COUNTY_FALLBACK_KIND), [])
                    if org.division_id not in covered
                ]
            for org in orgs:
                if (item.pk, org.pk) in existing:
                    continue
                existing.add((item.pk, org.pk))
                made.append(
                    ItemImplementation(
                        item=item,
                        organization=org,
                        level=level,
                        division_code=org.division.code,
                        implementing_code=f"{org.uscc}{item.basic_code}",
                        name=item.name,
                        type=item.type,
                        legal_basis=item.legal_basis,
                        basic_code=item.basic_code,
                        promised_limit_days=item.promised_limit_days,
                        windows=_default_windows(org),
                    )
                )
    with transaction.atomic():
        ItemImplementation.objects.bulk_create(made, batch_size=500)
        audit.record("services.items.implement", actor=actor, detail={"province": province_code, "created": len(made)})
    return len(made)


# --- 三级四同 ------------------------------------------------------------------------------------------------


@dataclass
class CheckReport:
    """The outcome of a 三级四同 check: implementations checked, drifts opened, still open, resolved."""

    checked: int = 0
    opened: int = 0
    still_open: int = 0
    resolved: int = 0

    def to_text(self) -> str:
        """One line for people (Chinese)."""
        return _(
            "检查实施清单 %(checked)d 条：新发现差异 %(opened)d 处，仍未整改 %(open)d 处，已整改 %(resolved)d 处。"
        ) % {
            "checked": self.checked,
            "opened": self.opened,
            "open": self.still_open,
            "resolved": self.resolved,
        }


def _element(value: Any) -> str:
    """An element compared as text with surrounding and repeated whitespace ignored."""
    return " ".join(str(value or "").split())


def check_consistency(*, actor) -> CheckReport:
    """三级四同: compare every active implementation's four elements with its item; keep the drift findings.

    A new difference opens an :class:`ItemDrift`, a known one is refreshed (and reopened if it had
    been resolved), an open finding whose difference is gone is resolved. One audit record.
    """
    if not may_manage_catalogue(actor):
        raise _refuse("services.check", actor=actor, message=_("无权运行三级四同检查"))
    now = timezone.now()
    report = CheckReport()
    known = {(d.implementation_id, d.field): d for d in ItemDrift.objects.all()}
    differences: dict[tuple[int, str], tuple[str, str]] = {}
    rows = ItemImplementation.objects.filter(is_active=True, item__status=ServiceItem.Status.ACTIVE).values_list(
        "pk", "name", "type", "legal_basis", "basic_code", "item__name", "item__type", "item__legal_basis",
        "item__basic_code",
    )  # fmt: skip
    for pk, *values in rows.iterator(chunk_size=2000):
        report.checked += 1
        found, expected = values[:4], values[4:]
        for field, got, want in zip(FOUR_ELEMENTS, found, expected, strict=True):
            if _element(got) != _element(want):
                differences[(pk, field)] = (want, got)
    with transaction.atomic():
        new, changed = [], []
        for key, (want, got) in differences.items():
            drift = known.get(key)
            if drift is None:
                new.append(ItemDrift(implementation_id=key[0], field=key[1], expected=want, found=got, last_seen=now))
                continue
            if drift.status == ItemDrift.Status.RESOLVED:
                report.opened += 1
            else:
                report.still_open += 1
            drift.expected, drift.found, drift.last_seen = want, got, now
            drift.status, drift.resolved_at = ItemDrift.Status.OPEN, None
            changed.append(drift)
        ItemDrift.objects.bulk_create(new, batch_size=500)
        report.opened += len(new)
        fields = ["expected", "found", "last_seen", "status", "resolved_at"]
        ItemDrift.objects.bulk_update(changed, fields, batch_size=500)
        gone = [d.pk for key, d in known.items() if key not in differences and d.status == ItemDrift.Status.OPEN]
        report.resolved = ItemDrift.objects.filter(pk__in=gone).update(
            status=ItemDrift.Status.RESOLVED, resolved_at=now, last_seen=now
        )
        audit.record(
            "services.check",
            actor=actor,
            detail={
                "checked": report.checked,
                "opened": report.opened,
                "still_open": report.still_open,
                "resolved": report.resolved,
            },
        )
    return report


def drifts_for(actor) -> QuerySet[ItemDrift]:
    """The drift findings the actor may see (see the module docstring); none for others."""
    qs = ItemDrift.objects.select_related("implementation__item", "implementation__organization")
    if may_manage_catalogue(actor):
        return qs
    department = department_of(actor)
    if department is None or not department.is_active or getattr(actor, "kind", "") not in ("official", "admin"):
        return qs.none()
    if department.kind in ADMIN_KINDS:
        return qs.filter(implementation__division_code__startswith=scope_prefix(department.division.code))
    return qs.filter(implementation__organization=department)


# --- search -----------------------------------------------------------------------------------------------

_STOP_WORDS = frozenset(
    {
        "办理",
        "申请",
        "怎么",
        "怎样",
        "如何",
        "我要",
        "我想",
        "需要",
        "什么",
        "哪些",
        "在哪",
        "哪里",
        "在哪里",
        "开个",
        "一个",
    }
)
_jieba = None
_jieba_lock = threading.Lock()


def _segment(query: str) -> list[str]:
    """The words of a query (jieba precise mode), stop words and punctuation dropped."""
    global _jieba
    with _jieba_lock:
        if _jieba is None:
            import logging

            import jieba

            jieba.setLogLevel(logging.WARNING)
            _jieba = jieba
    words = []
    cut = [word.strip() for word in _jieba.cut(query)]
    for word in cut:
        # Single characters (办、上、的) are function words in a query, unless they are all there is.
        if len(word) == 1 and len(cut) > 1:
            continue
        if word and word not in _STOP_WORDS and re.search(r"\w", word) and word not in words:
            words.append(word)
    return words[:8]


def search_items(
    query: str = "", *, holder_kind: str = "", department_kind: str = "", item_type: str = ""
) -> QuerySet[ServiceItem]:
    """Active items matching a Chinese query (every word in name, keywords, summary or department) and filters."""
    qs = ServiceItem.objects.filter(status=ServiceItem.Status.ACTIVE)
    for word in _segment(query[:100]):
        kinds = [kind for kind, label in DEPARTMENT_KINDS.items() if word in label or word.upper() == kind]
        match = Q(name__icontains=word) | Q(keywords__icontains=word) | Q(summary__icontains=word)
        if kinds:
            match |= Q(department_kind__in=kinds)
        qs = qs.filter(match)
    if holder_kind in HOLDER_KINDS:
        # JSON containment is not available on SQLite; catalogues are small, so filter the lists here.
        ids = [pk for pk, kinds in qs.values_list("pk", "holder_kinds") if holder_kind in (kinds or [])]
        qs = qs.filter(pk__in=ids)
    if department_kind:
        qs = qs.filter(department_kind=department_kind)
    if item_type in ItemType.values:
        qs = qs.filter(type=item_type)
    return qs.order_by("basic_code")


def department_label(kind: str) -> str:
    """The Chinese name of a department kind (its first word)."""
    return DEPARTMENT_KINDS.get(kind, kind).split()[0]
