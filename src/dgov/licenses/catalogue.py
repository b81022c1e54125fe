"""The licence-type catalogue (证照目录): validating, creating, changing and loading licence types.

A licence type (:class:`~dgov.licenses.models.LicenceType`) declares its data items, its validity
rule, the layout of its printable form and its sharing level. Everything entered here is checked
before anything is stored, and every problem is reported at once:

* **items** — a list of ``{name, label, label_en, type, required, sensitivity, choices, max_length,
  description}``: ``name`` a lower-case identifier (``[a-z][a-z0-9_]*``, up to 40 characters, not
  one of the holder columns of a bulk file), ``type`` one of :data:`dgov.licenses.services.ITEM_TYPES`,
  ``sensitivity`` ``public`` / ``internal`` / ``personal``, ``choices`` (values, or
  ``{value, label, label_en}``) for ``enum`` items only, ``max_length`` for ``string``/``text``.
* **validity** — ``{}`` (long-term, 长期有效), ``{"years": n}``, ``{"months": n}`` or both.
* **layout** — the declared layout of the printable PDF form, as :mod:`dgov.licenses.pdf` draws
  it: ``size`` (A4/A5), ``orientation``, ``title``, ``subtitle``, ``items`` (item names, or
  ``{name, label}``, in print order), the holder rows' labels, ``font_size`` and the sizes of the
  seal and the QR code (``seal_mm``, ``qr_mm``), ``note``. An empty layout means the renderer's
  defaults (:func:`effective_layout`).

Who may change the catalogue: the CLI and other system actors, platform administrators and
officials of the provincial data administration (大数据局, kind ``DSJ``) for every type; officials of a
type's competent department (主管部门) for their own types. A change of items, validity or layout
bumps the type's ``version``; issued licences keep the ``type_version`` they were issued under.
While licences of a type exist its items cannot be removed or retyped and its holder kind is fixed
(their data and variations are checked against the current items).

Type codes take the form ``<competent department's USCC><3-digit serial>``; a catalogue file may
give ``serial: "001"`` instead of the code, and name the competent department by its code or by
its kind (``SCJG``), resolved to the province's department of that kind (like the shipped base
libraries' owners). :func:`load_types` loads a YAML/JSON file all or nothing (``dgov licences types
load``); ``data/types.yaml`` is the demo catalogue.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from dgov.kernel import dataload
from dgov.kernel.models import Organization
from dgov.kernel.services import audit
from dgov.kernel.services.organizations import find_department
from dgov.kernel.validators import validate_uscc
from dgov.licenses import access
from dgov.licenses.models import HolderKind, Licence, LicenceType
from dgov.licenses.services import ITEM_TYPES, _actor_label, _refuse
from dgov.registry.services import department_of, is_admin

__all__ = [
    "DEMO_TYPES",
    "CatalogueError",
    "LoadReport",
    "TypeSetError",
    "clean_items",
    "clean_layout",
    "clean_validity",
    "create_type",
    "effective_layout",
    "load_types",
    "may_manage_catalogue",
    "may_manage_type",
    "parse_type_set",
    "read_type_file",
    "update_type",
]

DEMO_TYPES = Path(__file__).parent / "data" / "types.yaml"
SENSITIVITIES = ("public", "internal", "personal")
SHARING_TYPES = ("unconditional", "conditional", "none")
# Column names of a bulk-issuance file and licence fields: not available as item names.
RESERVED_NAMES = frozenset(
    {"holder_name", "holder_id", "number", "identifier", "issuer", "issued_on", "valid_from", "valid_until"}
    | {"data", "status"}
)
MAX_ITEMS = 60
MAX_BYTES = dataload.MAX_BYTES

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_SERIAL = re.compile(r"^\d{3}$")
_CODE = re.compile(r"^[0-9A-Z]{18}\d{3}$")
_ITEM_KEYS = frozenset(
    {"name", "label", "label_en", "type", "required", "sensitivity", "choices", "max_length", "description"}
)
_ENTRY_KEYS = frozenset(
    {
        "code",
        "serial",
        "name",
        "name_en",
        "description",
        "department",
        "issuer_kind",
        "holder_kind",
        "items",
        "validity",
        "layout",
        "sharing_type",
        "status",
    }
)
VERSIONED = ("items", "validity", "layout")
EDITABLE = ("name", "name_en", "description", "department", "issuer_kind", "holder_kind", "sharing_type", "status")


class CatalogueError(ValidationError):
    """A licence type was refused because of its content; ``message_dict`` names every problem by field."""


class TypeSetError(ValueError):
    """A catalogue file that cannot be read at all (not YAML/JSON, wrong shape); the message says why."""


# --- permissions ----------------------------------------------------------------------------------


def _is_system(actor) -> bool:
    """The CLI or another system actor (a ``kind:label`` string)."""
    return isinstance(actor, str)


def _is_provincial_data_admin(actor) -> bool:
    """An official of the provincial 大数据局 (people only, not API clients)."""
    if not getattr(actor, "is_authenticated", False) or hasattr(actor, "client_id"):
        return False
    return access.is_provincial_data_admin(department_of(actor))


def may_manage_catalogue(actor) -> bool:
    """Whether the actor may create and change every licence type: system actors, admins, provincial DSJ officials."""
    return _is_system(actor) or is_admin(actor) or _is_provincial_data_admin(actor)


def may_manage_type(actor, department: Organization | None) -> bool:
    """Whether the actor may create or change a type whose competent department is ``department``."""
    if may_manage_catalogue(actor):
        return True
    if not getattr(actor, "is_authenticated", False) or hasattr(actor, "client_id") or department is None:
        return False
    own = department_of(actor)
    return own is not None and own.is_active and own.pk == department.pk


# --- validation -------------------------------------------------------------------------------------


def _is_int(value) -> bool:
    """A true integer (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _serial_text(serial) -> str:
    """A type serial as written in a catalogue entry (``1`` or ``"001"``) as text, to check against ``_SERIAL``."""
    return f"{serial:03d}" if _is_int(serial) else str(serial).strip()


def _text(value, limit: int) -> str | None:
    """A stripped string of at most ``limit`` characters, or None when it is not one."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    return text if len(text) <= limit else None


def _clean_choices(where: str, choices, problems: list[str]) -> list:
    """The choices of an enum item (values as strings, or {value, label, label_en})."""
    if not isinstance(choices, list) or not choices:
        problems.append(_("%(where)s.choices：枚举数据项应有取值列表") % {"where": where})
        return []
    cleaned: list = []
    seen: set[str] = set()
    for position, choice in enumerate(choices):
        spot = f"{where}.choices[{position}]"
        if isinstance(choice, Mapping):
            unknown = sorted(set(choice) - {"value", "label", "label_en"})
            value = choice.get("value")
            if unknown:
                problems.append(_("%(where)s：未知的键 %(keys)s") % {"where": spot, "keys": ", ".join(unknown)})
            if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
                problems.append(_("%(where)s：取值应为非空文本") % {"where": spot})
                continue
            label = choice.get("label", str(value))
            if _text(label, 100) in (None, ""):
                problems.append(_("%(where)s：标签应为 1–100 个字符的文本") % {"where": spot})
                continue
            entry = {"value": str(value).strip(), "label": label.strip()}
            if choice.get("label_en"):
                entry["label_en"] = str(choice["label_en"]).strip()
        elif isinstance(choice, str | int) and not isinstance(choice, bool) and str(choice).strip():
            entry = str(choice).strip()
        else:
            problems.append(_("%(where)s：取值应为非空文本") % {"where": spot})
            continue
        value = entry["value"] if isinstance(entry, dict) else entry
        if value in seen:
            problems.append(_("%(where)s：取值 %(value)s 重复") % {"where": spot, "value": value})
        seen.add(value)
        cleaned.append(entry)
    return cleaned


def clean_items(items) -> list[dict[str, Any]]:
    """The data items checked and normalized; raises :class:`CatalogueError` listing every problem (``items``)."""
    problems: list[str] = []
    if not isinstance(items, list):
        raise CatalogueError({"items": [_("数据项应为列表")]})
    if not items:
        raise CatalogueError({"items": [_("证照类型至少应有一个数据项")]})
    if len(items) > MAX_ITEMS:
        raise CatalogueError({"items": [_("数据项不能超过 %(n)d 个") % {"n": MAX_ITEMS}]})
    cleaned: list[dict[str, Any]] = []
    names: set[str] = set()
    for position, raw in enumerate(items):
        where = f"items[{position}]"
        if not isinstance(raw, Mapping):
            problems.append(_("%(where)s：数据项应为对象") % {"where": where})
            continue
        name = raw.get("name")
        if isinstance(name, str) and name:
            where = f"items[{position}]({name})"
        unknown = sorted(set(raw) - _ITEM_KEYS)
        if unknown:
            problems.append(_("%(where)s：未知的键 %(keys)s") % {"where": where, "keys": ", ".join(unknown)})
        if not isinstance(name, str) or not _NAME.match(name):
            problems.append(
                _("%(where)s.name：名称应为小写字母开头的字母、数字、下划线，最多 40 个字符") % {"where": where}
            )
        elif name in RESERVED_NAMES:
            problems.append(_("%(where)s.name：%(name)s 是保留名称") % {"where": where, "name": name})
        elif name in names:
            problems.append(_("%(where)s.name：名称 %(name)s 重复") % {"where": where, "name": name})
        else:
            names.add(name)
        label = _text(raw.get("label"), 100)
        if not label:
            problems.append(_("%(where)s.label：标签应为 1–100 个字符的文本") % {"where": where})
        kind = raw.get("type", "string")
        if kind not in ITEM_TYPES:
            problems.append(
                _("%(where)s.type：未知的数据项类型 %(kind)s（可用：%(kinds)s）")
                % {"where": where, "kind": kind, "kinds": ", ".join(ITEM_TYPES)}
            )
        required = raw.get("required", False)
        if not isinstance(required, bool):
            problems.append(_("%(where)s.required：应为 true 或 false") % {"where": where})
        sensitivity = raw.get("sensitivity", "public")
        if sensitivity not in SENSITIVITIES:
            problems.append(
                _("%(where)s.sensitivity：应为 %(values)s 之一") % {"where": where, "values": ", ".join(SENSITIVITIES)}
            )
        item: dict[str, Any] = {
            "name": name,
            "label": label or "",
            "type": kind,
            "required": bool(required),
            "sensitivity": sensitivity,
        }
        for key in ("label_en", "description"):
            if raw.get(key) not in (None, ""):
                text = _text(raw[key], 200 if key == "label_en" else 1000)
                if text is None:
                    problems.append(_("%(where)s.%(key)s：应为文本") % {"where": where, "key": key})
                else:
                    item[key] = text
        if kind == "enum":
            item["choices"] = _clean_choices(where, raw.get("choices"), problems)
        elif "choices" in raw:
            problems.append(_("%(where)s.choices：只有枚举数据项可以有取值列表") % {"where": where})
        if "max_length" in raw:
            limit = raw["max_length"]
            if kind not in ("string", "text"):
                problems.append(_("%(where)s.max_length：只有文本数据项可以限定长度") % {"where": where})
            elif not _is_int(limit) or not 1 <= limit <= 10000:
                problems.append(_("%(where)s.max_length：应为 1–10000 的整数") % {"where": where})
            else:
                item["max_length"] = limit
        cleaned.append(item)
    if problems:
        raise CatalogueError({"items": problems})
    return cleaned


def clean_validity(rule) -> dict[str, int]:
    """The validity rule checked: ``{}`` (long-term), ``{"years": n}``, ``{"months": n}`` (n ≥ 1)."""
    if rule in (None, ""):
        return {}
    if not isinstance(rule, Mapping):
        raise CatalogueError({"validity": [_('有效期规则应为对象，如 {"years": 5}')]})
    problems = []
    unknown = sorted(set(rule) - {"years", "months"})
    if unknown:
        problems.append(_("未知的键 %(keys)s（可用：years、months）") % {"keys": ", ".join(unknown)})
    cleaned: dict[str, int] = {}
    for key, limit in (("years", 100), ("months", 1200)):
        if key not in rule:
            continue
        value = rule[key]
        if not _is_int(value) or not 0 <= value <= limit:
            problems.append(_("%(key)s 应为 0–%(limit)d 的整数") % {"key": key, "limit": limit})
        elif value:
            cleaned[key] = value
    if problems:
        raise CatalogueError({"validity": problems})
    return cleaned


def clean_layout(layout, items: list[dict[str, Any]]) -> dict[str, Any]:
    """The layout checked against the type's items; ``{}`` stays ``{}`` (the renderer's defaults).

    The layout is the PDF form's (:mod:`dgov.licenses.pdf`, which draws it): its keys and ranges
    are checked by :func:`dgov.licenses.pdf.layout_problems`, so what the catalogue accepts is
    exactly what the rendering uses.
    """
    if layout in (None, "") or layout == {}:
        return {}
    from dgov.licenses import pdf

    problems = pdf.layout_problems(layout, items)
    if problems:
        raise CatalogueError({"layout": [str(problem) for problem in problems]})
    return dict(layout)


def effective_layout(licence_type: LicenceType) -> dict[str, Any]:
    """The layout a rendering uses: the type's declared layout over the defaults (page, texts, item order)."""
    from dgov.licenses import pdf

    resolved = pdf.resolve_layout(licence_type)
    return {
        "size": resolved.size,
        "orientation": resolved.orientation,
        "title": resolved.title,
        "subtitle": resolved.subtitle,
        "items": [{"name": name, "label": label} for name, label in resolved.items],
        "holder_label": resolved.holder_label,
        "holder_id_label": resolved.holder_id_label,
        "show_holder_id": resolved.show_holder_id,
        "font_size": resolved.font_size,
        "seal_mm": resolved.seal_mm,
        "qr_mm": resolved.qr_mm,
        "note": resolved.note,
    }


def clean_code(code, department: Organization | None) -> str:
    """A type code: an 18-character USCC (normally the competent department's) and a 3-digit serial."""
    text = str(code or "").strip().upper()
    if not _CODE.match(text):
        raise CatalogueError({"code": [_("证照类型代码应为统一社会信用代码加三位序号（21 位）")]})
    try:
        validate_uscc(text[:18])
    except ValidationError:
        raise CatalogueError({"code": [_("证照类型代码的前 18 位不是有效的统一社会信用代码")]}) from None
    return text


# --- the type set ---------------------------------------------------------------------------------------


@dataclass
class _Draft:
    """A checked catalogue entry: the values to store."""

    code: str
    values: dict[str, Any]


def _resolve_department(value, province_code: str) -> Organization | None:
    """An organization by code, else the province's active department of that kind."""
    if isinstance(value, Organization):
        return value
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    return Organization.objects.filter(code=text, is_active=True).first() or find_department(province_code, text)


def _clean_entry(raw, *, existing: LicenceType | None, province_code: str, partial: bool) -> tuple[_Draft | None, dict]:
    """Check one type definition; (draft, {field: [messages]}). ``partial``: only the given keys change."""
    errors: dict[str, list[str]] = {}

    def fail(key: str, message) -> None:
        errors.setdefault(key, []).append(str(message))

    if not isinstance(raw, Mapping):
        return None, {"__all__": [_("证照类型定义应为对象")]}
    unknown = sorted(set(raw) - _ENTRY_KEYS)
    if unknown:
        fail("__all__", _("未知的键 %(keys)s") % {"keys": ", ".join(unknown)})

    def given(key: str) -> bool:
        return key in raw or not partial

    values: dict[str, Any] = {}
    department = existing.department if existing is not None else None
    if given("department"):
        department = _resolve_department(raw.get("department"), province_code)
        if department is None:
            fail(
                "department",
                _("主管部门 %(value)s 不存在：写部门编码，或本省省级部门的类别（如 SCJG）")
                % {"value": raw.get("department") or "—"},
            )
        values["department"] = department
    if given("name"):
        name = _text(raw.get("name"), 100)
        if not name:
            fail("name", _("证照名称应为 1–100 个字符的文本"))
        values["name"] = name or ""
    for key, limit in (("name_en", 200), ("description", 2000)):
        if key in raw:
            text = _text(raw[key] if raw[key] is not None else "", limit)
            if text is None:
                fail(key, _("应为不超过 %(n)d 个字符的文本") % {"n": limit})
            values[key] = text or ""
    if given("holder_kind"):
        holder_kind = raw.get("holder_kind")
        if holder_kind not in HolderKind.values:
            fail("holder_kind", _("持证主体类型应为 person 或 enterprise"))
        values["holder_kind"] = holder_kind
    if "issuer_kind" in raw:
        kind = raw.get("issuer_kind") or ""
        if not isinstance(kind, str) or len(kind) > 32 or (kind and not re.match(r"^[A-Z][A-Z0-9_]*$", kind)):
            fail("issuer_kind", _("签发机构类型应为部门类别代码，如 SCJG"))
        values["issuer_kind"] = kind if isinstance(kind, str) else ""
    if given("sharing_type"):
        sharing = raw.get("sharing_type", "conditional") if not partial else raw.get("sharing_type")
        if sharing not in SHARING_TYPES:
            fail("sharing_type", _("共享类型应为 %(values)s 之一") % {"values": ", ".join(SHARING_TYPES)})
        values["sharing_type"] = sharing
    if "status" in raw:
        if raw["status"] not in LicenceType.Status.values:
            fail("status", _("状态应为 active 或 retired"))
        values["status"] = raw["status"]
    items = existing.items if existing is not None else []
    if given("items"):
        try:
            items = clean_items(raw.get("items"))
            values["items"] = items
        except CatalogueError as exc:
            errors.setdefault("items", []).extend(exc.message_dict["items"])
            items = None
    if given("validity"):
        try:
            values["validity"] = clean_validity(raw.get("validity"))
        except CatalogueError as exc:
            errors.setdefault("validity", []).extend(exc.message_dict["validity"])
    check_layout = given("layout") or ("items" in values and existing is not None and existing.layout)
    if check_layout and items is not None:
        try:
            values["layout"] = clean_layout(raw.get("layout", existing.layout if existing else {}), items)
        except CatalogueError as exc:
            errors.setdefault("layout", []).extend(exc.message_dict["layout"])
    # The code: given, or the department's USCC and a serial; never changed once stored.
    code = existing.code if existing is not None else ""
    if existing is None:
        serial = raw.get("serial")
        if raw.get("code"):
            try:
                code = clean_code(raw["code"], department)
            except CatalogueError as exc:
                errors.setdefault("code", []).extend(exc.message_dict["code"])
        elif serial is not None:
            serial = _serial_text(serial)
            if not _SERIAL.match(serial):
                fail("serial", _("序号应为三位数字，如 001"))
            elif department is not None:
                code = f"{department.uscc}{serial}"
        else:
            fail("code", _("缺少证照类型代码（code），或主管部门内的三位序号（serial）"))
    elif raw.get("code") and str(raw["code"]).strip().upper() != existing.code:
        fail("code", _("证照类型代码不能修改"))
    if existing is not None and Licence.objects.filter(licence_type=existing).exists():
        _check_evolution(existing, values, fail)
    if errors:
        return None, errors
    return _Draft(code=code, values=values), {}


def _check_evolution(existing: LicenceType, values: dict[str, Any], fail) -> None:
    """Refuse changes that licences already issued cannot follow: removed or retyped items, another holder kind."""
    if "holder_kind" in values and values["holder_kind"] != existing.holder_kind:
        fail("holder_kind", _("已有该类型的证照，不能修改持证主体类型"))
    if "items" in values:
        new = {item["name"]: item for item in values["items"]}
        for item in existing.items or []:
            successor = new.get(item["name"])
            if successor is None:
                fail("items", _("已有该类型的证照，不能删除数据项 %(name)s") % {"name": item["name"]})
            elif successor.get("type", "string") != item.get("type", "string"):
                fail("items", _("已有该类型的证照，不能修改数据项 %(name)s 的类型") % {"name": item["name"]})


def _changes(stored: LicenceType, values: dict[str, Any]) -> list[str]:
    """The names of the values that differ from the stored type."""
    changed = []
    for key, value in values.items():
        current = getattr(stored, key)
        if key == "department":
            if value is None or current.pk != value.pk:
                changed.append(key)
        elif _canonical(current) != _canonical(value):
            changed.append(key)
    return sorted(changed)


def _canonical(value) -> str:
    """A stable text form of a value, for comparison."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _detail(licence_type: LicenceType, changed: list[str] | None = None) -> dict[str, Any]:
    """The audit detail of a type change."""
    detail = {
        "code": licence_type.code,
        "name": licence_type.name,
        "department": licence_type.department.code,
        "version": licence_type.version,
    }
    if changed is not None:
        detail["changed"] = changed
    return detail


def _apply(stored: LicenceType, values: dict[str, Any]) -> list[str]:
    """Set changed values on a stored type, bumping its version when items, validity or layout change."""
    changed = _changes(stored, values)
    for key in changed:
        setattr(stored, key, values[key])
    if set(changed) & set(VERSIONED):
        stored.version += 1
    return changed


def create_type(values: Mapping[str, Any], *, actor, province_code: str | None = None) -> LicenceType:
    """Create a licence type from its definition (see the module docstring); audited."""
    province_code = province_code or settings.DEMO_PROVINCE_CODE
    department = _resolve_department(values.get("department"), province_code) if isinstance(values, Mapping) else None
    if not may_manage_type(actor, department):
        raise _refuse(
            "licenses.type.create",
            actor=actor,
            target=str(values.get("code") or values.get("name") or "") if isinstance(values, Mapping) else None,
            message=_("无权维护该证照类型"),
        )
    draft, errors = _clean_entry(values, existing=None, province_code=province_code, partial=False)
    if errors:
        raise CatalogueError(errors)
    with transaction.atomic():
        if LicenceType.objects.filter(code=draft.code).exists():
            raise CatalogueError({"code": [_("证照类型代码 %(code)s 已存在") % {"code": draft.code}]})
        licence_type = LicenceType.objects.create(code=draft.code, created_by=_actor_label(actor), **draft.values)
        audit.record("licenses.type.create", actor=actor, target=licence_type, detail=_detail(licence_type))
    return licence_type


def update_type(
    licence_type: LicenceType, changes: Mapping[str, Any], *, actor, province_code: str | None = None
) -> LicenceType:
    """Change a licence type (only the given keys); items/validity/layout changes bump its version. Audited."""
    province_code = province_code or settings.DEMO_PROVINCE_CODE
    if not may_manage_type(actor, licence_type.department):
        raise _refuse("licenses.type.update", actor=actor, target=licence_type, message=_("无权维护该证照类型"))
    if isinstance(changes, Mapping) and "department" in changes and not may_manage_catalogue(actor):
        new = _resolve_department(changes.get("department"), province_code)
        if new is None or new.pk != licence_type.department_id:
            raise _refuse(
                "licenses.type.update", actor=actor, target=licence_type, message=_("只有数据管理员可以更换主管部门")
            )
    with transaction.atomic():
        stored = (
            LicenceType.objects.select_for_update(of=("self",)).select_related("department").get(pk=licence_type.pk)
        )
        draft, errors = _clean_entry(changes, existing=stored, province_code=province_code, partial=True)
        if errors:
            raise CatalogueError(errors)
        changed = _apply(stored, draft.values)
        if changed:
            stored.save()
            audit.record("licenses.type.update", actor=actor, target=stored, detail=_detail(stored, changed))
    return stored


# --- loading a catalogue file --------------------------------------------------------------------------


class LoadReport(dataload.LoadReport):
    """What a load did or would do: types created, updated, unchanged, and every bad entry with its problems."""

    rejected_text = gettext_noop("证照目录有 %(n)d 个类型不正确，未做任何修改：")
    entry_text = gettext_noop("第 %(index)d 个（%(code)s）：%(messages)s")
    summary_text = gettext_noop("新增 %(created)d 个、更新 %(updated)d 个、未变 %(unchanged)d 个证照类型。")


def _flatten(errors: Mapping[str, list[str]]) -> list[str]:
    """``{field: [messages]}`` as ``field：message`` lines."""
    lines = []
    for key, messages in errors.items():
        for message in messages:
            lines.append(message if key in ("__all__", "items", "layout") else f"{key}：{message}")
    return lines


def load_types(
    entries, *, actor, source: str = "", dry_run: bool = False, province_code: str | None = None
) -> LoadReport:
    """Check every entry of a catalogue and, only when all are good, create or update the types (by code).

    Returns a :class:`LoadReport` naming each bad entry with all its problems; nothing is written
    then. Types not in the set are left as they are (``status: retired`` retires one). Entries for
    types of another department are refused for officials of a competent department (reported;
    the attempt is audited).
    """
    province_code = province_code or settings.DEMO_PROVINCE_CODE
    if not may_manage_catalogue(actor) and department_of(actor) is None:
        raise _refuse("licenses.types.load", actor=actor, target=source or None, message=_("无权维护证照目录"))
    report = LoadReport(source=source)
    if not isinstance(entries, list):
        report.errors.append((0, "", [_("证照目录应为类型列表")]))
        return report
    codes = [raw.get("code") for raw in entries if isinstance(raw, Mapping) and isinstance(raw.get("code"), str)]
    existing = {t.code: t for t in LicenceType.objects.select_related("department").filter(code__in=codes)}
    drafts: list[tuple[_Draft, LicenceType | None]] = []
    seen: dict[str, int] = {}
    refused = False
    for index, raw in enumerate(entries, start=1):
        code = str(raw.get("code") or "").strip().upper() if isinstance(raw, Mapping) else ""
        stored = existing.get(code)
        if stored is None and isinstance(raw, Mapping) and not code and raw.get("serial") is not None:
            # A serial names the code once the department is known: look it up as stored, if it is.
            department = _resolve_department(raw.get("department"), province_code)
            serial = _serial_text(raw["serial"])
            if department is not None and _SERIAL.match(serial):
                code = f"{department.uscc}{serial}"
                stored = LicenceType.objects.select_related("department").filter(code=code).first()
        if stored is not None:
            raw = {k: v for k, v in raw.items() if k not in ("serial",)}
        draft, errors = _clean_entry(raw, existing=stored, province_code=province_code, partial=stored is not None)
        problems = _flatten(errors)
        if draft is not None:
            code = draft.code
            department = draft.values.get("department", stored.department if stored else None)
            if not may_manage_type(actor, department) or (
                stored is not None and not may_manage_type(actor, stored.department)
            ):
                problems.append(_("无权维护该证照类型"))
                refused = True
        if code and code in seen:
            problems.append(_("证照类型代码与第 %(index)d 个重复") % {"index": seen[code]})
        if code:
            seen.setdefault(code, index)
        if problems:
            report.errors.append((index, code, problems))
        elif draft is not None:
            drafts.append((draft, stored))
    if refused:
        with transaction.atomic():
            audit.record(
                "licenses.types.load",
                actor=actor,
                target=source or None,
                outcome="denied",
                detail={"reason": "types of another department"},
            )
    if report.errors or dry_run:
        for draft, stored in drafts:
            bucket = report.created if stored is None else report.updated if _changes(stored, draft.values) else None
            (bucket if bucket is not None else report.unchanged).append(draft.code)
        return report
    label = _actor_label(actor)
    with transaction.atomic():
        for draft, stored in drafts:
            if stored is None:
                licence_type = LicenceType.objects.create(code=draft.code, created_by=label, **draft.values)
                audit.record("licenses.type.create", actor=actor, target=licence_type, detail=_detail(licence_type))
                report.created.append(draft.code)
                continue
            locked = LicenceType.objects.select_for_update(of=("self",)).select_related("department").get(pk=stored.pk)
            changed = _apply(locked, draft.values)
            if not changed:
                report.unchanged.append(draft.code)
                continue
            locked.save()
            audit.record("licenses.type.update", actor=actor, target=locked, detail=_detail(locked, changed))
            report.updated.append(draft.code)
        audit.record(
            "licenses.types.load",
            actor=actor,
            target=source or None,
            detail={"created": len(report.created), "updated": len(report.updated), "unchanged": len(report.unchanged)},
        )
    return report


def parse_type_set(text: str, *, fmt: str = "") -> list:
    """The type entries of a YAML or JSON text: a list, or ``{"types": [...]}``."""
    data = dataload.parse_document(text, fmt=fmt, error=TypeSetError)
    if isinstance(data, dict):
        if set(data) != {"types"}:
            raise TypeSetError(_("证照目录应为类型列表，或只含 types 列表的对象"))
        data = data["types"]
    if not isinstance(data, list):
        raise TypeSetError(_("证照目录应为类型列表"))
    return data


def read_type_file(path: str | Path) -> list:
    """The type entries of a ``.yaml``/``.yml`` or ``.json`` file (UTF-8, BOM allowed)."""
    text = dataload.read_text(
        path,
        error=TypeSetError,
        too_large=_("证照目录文件过大（上限 4 MiB）"),
        not_utf8=_("证照目录文件应为 UTF-8 编码"),
    )
    return parse_type_set(text, fmt=dataload.format_of(path))
