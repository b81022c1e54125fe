"""Registry schemas defined by data: field definitions, their evolution, value cleaning and masking.

A registry's fields are plain dicts stored in ``RegistrySchema.fields`` (see the model's docstring);
:func:`parse_fields` turns them into frozen :class:`FieldDef` objects and refuses bad definitions
with a :class:`SchemaError` naming the field and the reason. :func:`check_evolution` enforces the
rule that a new version may only *add* fields (or relax labels, descriptions, choices…): removing a
field or changing its type would orphan the values that records of older versions hold.

:func:`clean_values` validates and coerces a dict of values, from Python values or from strings (a
CSV cell): dates become ISO strings (``2020-01-02``, also accepted as ``20200102`` and
``2020/1/2``), integers ``int``, decimals canonical strings (JSON has no exact decimal), booleans
``True``/``False`` (from 是/否, true/false, 1/0, yes/no). Every problem is collected per field in a
:class:`RecordValidationError` (``.errors``: field → list of Chinese messages). The cleaner of a
field list is compiled once and cached, because imports call it a million times.

Reference fields are only checked for form (a UUID) here; whether the record exists is checked by
the services, in bulk.

Enum choices are codes (stored values), each written either as the bare code (``"1"``) or as an
object naming it: ``{"value": "1", "label": "男", "label_en": "Male"}``. Pages show the labels,
the data API and the database keep the codes; an import may also give the exact Chinese label
(``compile_cleaner(..., accept_labels=True)``), which becomes the code through one dict lookup.

One enum field of a schema may carry ``authority_by_value`` (conditional authority, 按类别确定
权威来源): ``{"birth": "WJ", "death": "WJ|GA", …}``. For a record whose value of that field has a
rule, every field whose ``authority`` lists more than one source is narrowed to the departments
that match both the field's authority and the rule (the services enforce it; see
docs/registry-engine.md).
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import json
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from dgov.kernel.masking import mask_address, mask_id_number, mask_name, mask_phone, mask_uscc
from dgov.kernel.validators import (
    id_check_digit,
    loc_entries,
    validate_division_code,
    validate_resident_id,
    validate_uscc,
)

__all__ = [
    "FIELD_TYPES",
    "KEY_PURPOSE_TYPES",
    "MASKS",
    "SENSITIVITY",
    "FieldDef",
    "RecordValidationError",
    "SchemaError",
    "authority_rule_field",
    "check_evolution",
    "clean_value",
    "clean_values",
    "compile_cleaner",
    "field_map",
    "fields_to_dicts",
    "is_key_field",
    "key_purpose",
    "mask_value",
    "parse_fields",
]

FIELD_TYPES = (
    "string",
    "text",
    "integer",
    "decimal",
    "boolean",
    "date",
    "datetime",
    "enum",
    "resident_id",
    "uscc",
    "division_code",
    "phone",
    "email",
    "geojson",
    "reference",
    "json",
)
SENSITIVITY = ("public", "internal", "personal")
MASKS = ("id_number", "phone", "name", "address", "uscc", "full", "partial")
# Blind indexes of these types use the type as purpose, so one person's ID number (or phone, or a
# company's USCC) has the same digest in every registry and reads can be traced across libraries.
KEY_PURPOSE_TYPES = frozenset({"resident_id", "uscc", "phone"})
GEOJSON_TYPES = frozenset(
    {
        "Point",
        "MultiPoint",
        "LineString",
        "MultiLineString",
        "Polygon",
        "MultiPolygon",
        "GeometryCollection",
        "Feature",
        "FeatureCollection",
    }
)
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_TEXT_TYPES = frozenset({"string", "text", "enum", "phone", "email", "resident_id", "uscc", "division_code"})
_NUMERIC_TYPES = frozenset({"integer", "decimal"})


@dataclass(frozen=True)
class FieldDef:
    """One field of a registry schema (see RegistrySchema's docstring for the meaning of each key)."""

    name: str
    label: str
    label_en: str = ""
    type: str = "string"
    required: bool = False
    unique: bool = False
    lookup: bool = False
    sensitivity: str = "public"
    authority: str = ""
    choices: tuple = ()
    ref: str = ""
    max_length: int | None = None
    min: Any = None
    max: Any = None
    pattern: str = ""
    mask: str = ""
    description: str = ""
    # Enum choices' labels, parallel to ``choices``: ((label, label_en), …), empty when no choice has one.
    choice_labels: tuple = ()
    # Conditional authority on the discriminator field: ((value, "WJ|GA"), …) in choice order.
    authority_by_value: tuple = ()

    @property
    def is_personal(self) -> bool:
        """Whether values are sealed (encrypted) and masked on output."""
        return self.sensitivity == "personal"

    @property
    def authorities(self) -> tuple[str, ...]:
        """The department kinds or codes that are authoritative for this field."""
        return tuple(token.strip() for token in self.authority.split("|") if token.strip())

    def choice_label(self, value: Any) -> str:
        """The label of an enum code in the active language (English label when there is one), else the code."""
        text = str(value)
        if self.choice_labels:
            try:
                label, label_en = self.choice_labels[self.choices.index(text)]
            except ValueError:
                return text
            if label_en and (get_language() or "").startswith("en"):
                return label_en
            return label or text
        return text

    def label_codes(self) -> dict[str, str]:
        """Chinese choice label → code, for imports that name choices by their labels."""
        return {label: code for code, (label, _en) in zip(self.choices, self.choice_labels, strict=True) if label}

    def authority_rules(self) -> dict[str, tuple[str, ...]]:
        """Conditional authority of a discriminator field: value → the authority tokens of its records."""
        return {value: tuple(tokens.split("|")) for value, tokens in self.authority_by_value}

    def as_dict(self) -> dict:
        """The definition as a JSON-able dict, without keys left at their defaults (except the basics)."""
        out: dict[str, Any] = {}
        for spec in dataclasses.fields(self):
            if spec.name in _DERIVED_KEYS:
                continue
            value = getattr(self, spec.name)
            if spec.name in ("name", "label", "type") or value != spec.default:
                out[spec.name] = list(value) if isinstance(value, tuple) else value
        if self.choice_labels:
            out["choices"] = [
                _choice_dict(code, label, label_en) if label or label_en else code
                for code, (label, label_en) in zip(self.choices, self.choice_labels, strict=True)
            ]
        if self.authority_by_value:
            out["authority_by_value"] = dict(self.authority_by_value)
        return out


def _choice_dict(code: str, label: str, label_en: str) -> dict:
    """A labelled enum choice as stored in a schema definition."""
    return {"value": code, "label": label, "label_en": label_en} if label_en else {"value": code, "label": label}


# Keys of FieldDef that are not definition keys of their own (``choice_labels`` comes from ``choices``).
_DERIVED_KEYS = frozenset({"choice_labels"})
_FIELD_KEYS = frozenset(spec.name for spec in dataclasses.fields(FieldDef)) - _DERIVED_KEYS
_CHOICE_KEYS = frozenset({"value", "label", "label_en"})


class SchemaError(ValidationError):
    """A bad field definition or schema change; the message names the field and the reason (Chinese)."""


class RecordValidationError(ValidationError):
    """Values that fail validation; ``.errors`` maps each field (or ``row N: field``) to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = {key: [str(message) for message in messages] for key, messages in errors.items()}
        super().__init__({key: list(messages) for key, messages in self.errors.items()})

    def __str__(self) -> str:
        return "; ".join(f"{key}: {'；'.join(messages)}" for key, messages in self.errors.items())


# --- Definitions ---------------------------------------------------------------------------------------


def _schema_error(field: str, reason: str) -> SchemaError:
    """A SchemaError naming the field and the reason."""
    return SchemaError(_("字段“%(field)s”：%(reason)s") % {"field": field, "reason": reason}, code="schema")


def _parse_one(raw: Any, position: int, identifier: str) -> FieldDef:
    """Check and convert one field definition dict."""
    if not isinstance(raw, dict):
        raise _schema_error(f"#{position}", _("定义应为对象"))
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _schema_error(
            str(name) if name else f"#{position}", _("名称应为小写字母开头的字母、数字、下划线，至多 64 位")
        )
    unknown = sorted(set(raw) - _FIELD_KEYS)
    if unknown:
        raise _schema_error(name, _("未知的定义项 %(keys)s") % {"keys": "、".join(unknown)})
    label = raw.get("label")
    if not isinstance(label, str) or not label.strip():
        raise _schema_error(name, _("缺少中文名称（label）"))
    ftype = raw.get("type", "string")
    if ftype not in FIELD_TYPES:
        raise _schema_error(name, _("未知的类型“%(type)s”") % {"type": ftype})
    sensitivity = raw.get("sensitivity", "public")
    if sensitivity not in SENSITIVITY:
        raise _schema_error(name, _("未知的敏感级别“%(value)s”") % {"value": sensitivity})
    if ftype == "resident_id" and sensitivity != "personal":
        raise _schema_error(name, _("居民身份证号码属于个人信息，敏感级别应为 personal"))
    for flag in ("required", "unique", "lookup"):
        if not isinstance(raw.get(flag, False), bool):
            raise _schema_error(name, _("%(key)s 应为 true 或 false") % {"key": flag})
    for text_key in ("label_en", "authority", "ref", "pattern", "mask", "description"):
        if not isinstance(raw.get(text_key, ""), str):
            raise _schema_error(name, _("%(key)s 应为字符串") % {"key": text_key})
    choices, choice_labels = _parse_choices(name, raw.get("choices", ()))
    if ftype == "enum" and not choices:
        raise _schema_error(name, _("枚举类型须列出可选值（choices）"))
    if ftype != "enum" and choices:
        raise _schema_error(name, _("只有枚举类型可以有 choices"))
    ref = raw.get("ref", "")
    if ftype == "reference" and not ref:
        raise _schema_error(name, _("引用类型须指明被引用的信息库（ref）"))
    if ftype != "reference" and ref:
        raise _schema_error(name, _("只有引用类型可以有 ref"))
    max_length = raw.get("max_length")
    if max_length is not None:
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            raise _schema_error(name, _("max_length 应为正整数"))
        if ftype not in _TEXT_TYPES:
            raise _schema_error(name, _("该类型不能设置 max_length"))
    bounds = {}
    for bound in ("min", "max"):
        value = raw.get(bound)
        if value is None:
            bounds[bound] = None
            continue
        if ftype not in _NUMERIC_TYPES:
            raise _schema_error(name, _("只有整数、小数类型可以设置 %(key)s") % {"key": bound})
        try:
            bounds[bound] = (
                int(value) if ftype == "integer" and not isinstance(value, bool) else decimal.Decimal(str(value))
            )
        except (ValueError, TypeError, decimal.InvalidOperation):
            raise _schema_error(name, _("%(key)s 应为数值") % {"key": bound}) from None
        if ftype == "integer" and (isinstance(value, bool) or bounds[bound] != decimal.Decimal(str(value))):
            raise _schema_error(name, _("%(key)s 应为整数") % {"key": bound})
        if ftype == "decimal":
            bounds[bound] = str(bounds[bound])
    low, high = bounds["min"], bounds["max"]
    if low is not None and high is not None and decimal.Decimal(str(low)) > decimal.Decimal(str(high)):
        raise _schema_error(name, _("min 大于 max"))
    pattern = raw.get("pattern", "")
    if pattern:
        if ftype not in _TEXT_TYPES:
            raise _schema_error(name, _("该类型不能设置 pattern"))
        try:
            re.compile(pattern)
        except re.error as exc:
            raise _schema_error(name, _("pattern 不是有效的正则表达式：%(error)s") % {"error": exc}) from None
    mask = raw.get("mask", "")
    if mask and mask not in MASKS:
        raise _schema_error(name, _("未知的脱敏规则“%(mask)s”") % {"mask": mask})
    authority = raw.get("authority", "")
    if any(not token.strip() for token in authority.split("|")) and authority:
        raise _schema_error(name, _("权威来源格式应为“部门类别或编码|…”"))
    authority_by_value = _parse_authority_rules(name, raw.get("authority_by_value"), ftype, choices)
    required, unique, lookup = raw.get("required", False), raw.get("unique", False), raw.get("lookup", False)
    if name == identifier:
        required = unique = lookup = True
    if (unique or lookup) and ftype in ("geojson", "json", "text"):
        raise _schema_error(name, _("该类型不能作为唯一键或检索键"))
    return FieldDef(
        name=name,
        label=label.strip(),
        label_en=raw.get("label_en", ""),
        type=ftype,
        required=required,
        unique=unique,
        lookup=lookup,
        sensitivity=sensitivity,
        authority="|".join(token.strip() for token in authority.split("|") if token.strip()),
        choices=choices,
        choice_labels=choice_labels,
        ref=ref,
        max_length=max_length,
        min=bounds["min"],
        max=bounds["max"],
        pattern=pattern,
        mask=mask,
        description=raw.get("description", ""),
        authority_by_value=authority_by_value,
    )


def _parse_choices(name: str, raw: Any) -> tuple[tuple[str, ...], tuple]:
    """Enum choices as (codes, labels): each a code string or {"value", "label", "label_en"}."""
    if not isinstance(raw, list | tuple):
        raise _schema_error(name, _("choices 应为列表"))
    codes: list[str] = []
    labels: list[tuple[str, str]] = []
    for item in raw:
        if isinstance(item, str) and item:
            codes.append(item)
            labels.append(("", ""))
            continue
        if not isinstance(item, dict):
            raise _schema_error(name, _("choices 的每一项应为非空字符串，或含 value、label 的对象"))
        unknown = sorted(set(item) - _CHOICE_KEYS)
        if unknown:
            raise _schema_error(name, _("choices 中有未知的定义项 %(keys)s") % {"keys": "、".join(unknown)})
        value, label, label_en = item.get("value"), item.get("label", ""), item.get("label_en", "")
        if not isinstance(value, str) or not value:
            raise _schema_error(name, _("choices 中对象的 value 应为非空字符串"))
        if not isinstance(label, str) or not label.strip() or not isinstance(label_en, str):
            raise _schema_error(name, _("可选值“%(value)s”缺少中文名称（label）") % {"value": value})
        codes.append(value)
        labels.append((label.strip(), label_en.strip()))
    if len(set(codes)) != len(codes):
        raise _schema_error(name, _("choices 有重复值"))
    named = [label for label, _en in labels if label]
    if len(set(named)) != len(named):
        raise _schema_error(name, _("choices 的中文名称有重复"))
    for code, (label, _en) in zip(codes, labels, strict=True):
        # An import maps a label to its code: a label that is another choice's code would be ambiguous.
        if label and label != code and label in codes:
            raise _schema_error(name, _("可选值“%(value)s”的名称与另一可选值的代码相同") % {"value": code})
    return tuple(codes), (tuple(labels) if named else ())


def _parse_authority_rules(name: str, raw: Any, ftype: str, choices: tuple[str, ...]) -> tuple:
    """``authority_by_value`` as ((value, "TOKEN|TOKEN"), …) in choice order; checked against the choices."""
    if raw is None or raw == {}:
        return ()
    if ftype != "enum":
        raise _schema_error(name, _("只有枚举类型可以按取值确定权威来源（authority_by_value）"))
    if not isinstance(raw, dict):
        raise _schema_error(name, _("authority_by_value 应为“取值: 权威来源”的对象"))
    unknown = sorted(str(key) for key in raw if key not in choices)
    if unknown:
        raise _schema_error(name, _("authority_by_value 的键 %(keys)s 不是可选值") % {"keys": "、".join(unknown)})
    rules = []
    for value in choices:
        if value not in raw:
            continue
        tokens = raw[value]
        parts = [token.strip() for token in tokens.split("|")] if isinstance(tokens, str) else []
        if not parts or not all(parts):
            raise _schema_error(name, _("取值“%(value)s”的权威来源格式应为“部门类别或编码|…”") % {"value": value})
        rules.append((value, "|".join(parts)))
    return tuple(rules)


def authority_rule_field(fields: Iterable[FieldDef]) -> FieldDef | None:
    """The field whose value decides the authority of a record (``authority_by_value``), if any."""
    return next((field for field in fields if field.authority_by_value), None)


def parse_fields(defs: Iterable[dict], *, identifier: str = "") -> list[FieldDef]:
    """Check field definition dicts and return FieldDefs; the ``identifier`` field becomes required+unique+lookup."""
    if isinstance(defs, dict | str) or not isinstance(defs, Iterable):
        raise SchemaError(_("字段定义应为列表"), code="schema")
    fields: list[FieldDef] = []
    seen: set[str] = set()
    for position, raw in enumerate(defs, start=1):
        field = raw if isinstance(raw, FieldDef) else _parse_one(raw, position, identifier)
        if field.name in seen:
            raise _schema_error(field.name, _("名称重复"))
        seen.add(field.name)
        fields.append(field)
    if not fields:
        raise SchemaError(_("至少需要一个字段"), code="schema")
    if identifier and identifier not in seen:
        raise _schema_error(identifier, _("标识字段不在字段定义中"))
    ruled = [field.name for field in fields if field.authority_by_value]
    if len(ruled) > 1:
        raise _schema_error(ruled[1], _("只能有一个字段按取值确定权威来源（authority_by_value）"))
    return fields


def fields_to_dicts(fields: Iterable[FieldDef]) -> list[dict]:
    """FieldDefs as the JSON dicts stored in RegistrySchema.fields."""
    return [field.as_dict() for field in fields]


def field_map(fields: Iterable[FieldDef]) -> dict[str, FieldDef]:
    """Fields by name."""
    return {field.name: field for field in fields}


def check_evolution(old: list[FieldDef], new: list[FieldDef]) -> None:
    """Refuse a new version that removes or retypes a field, or makes personal data less protected."""
    new_by_name = field_map(new)
    for field in old:
        successor = new_by_name.get(field.name)
        if successor is None:
            raise _schema_error(field.name, _("新版本不能删除已有字段（已有记录仍使用它）"))
        if successor.type != field.type:
            raise _schema_error(
                field.name,
                _("新版本不能修改字段类型（%(old)s → %(new)s）") % {"old": field.type, "new": successor.type},
            )
        if (successor.sensitivity == "personal") != (field.sensitivity == "personal"):
            # Personal values live in the sealed column; moving them would need a re-encryption pass.
            raise _schema_error(field.name, _("新版本不能改变字段是否属于个人信息"))
        if successor.ref != field.ref:
            raise _schema_error(field.name, _("新版本不能修改引用的信息库"))


def is_key_field(field: FieldDef) -> bool:
    """Whether the field gets RecordKey rows (identifier, unique or lookup)."""
    return field.unique or field.lookup


def key_purpose(registry_code: str, field: FieldDef) -> str:
    """The blind-index purpose of a key field (shared across registries for IDs, USCCs and phones)."""
    if field.type in KEY_PURPOSE_TYPES:
        return field.type
    return f"{registry_code}.{field.name}"


# --- Cleaning values -----------------------------------------------------------------------------------


class _Invalid(Exception):
    """A value that fails its field's rules (message already names the reason)."""


_TRUE = frozenset({"true", "1", "yes", "y", "t", "是", "真", "对"})
_FALSE = frozenset({"false", "0", "no", "n", "f", "否", "假", "错"})
_DATE_FORMATS = (
    re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
    re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$"),
    re.compile(r"^(\d{4})\.(\d{1,2})\.(\d{1,2})$"),
)
_MOBILE = re.compile(r"^(?:\+?86)?1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{2,3}-?\d{7,8}(?:-\d{1,6})?$")
_SPACES = re.compile(r"\s+")


def _to_date(value: Any) -> str:
    """A date as an ISO string."""
    if isinstance(value, datetime.datetime):
        return value.date().isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    text = str(value).strip()
    for pattern in _DATE_FORMATS:
        match = pattern.match(text)
        if match:
            try:
                return datetime.date(*(int(part) for part in match.groups())).isoformat()
            except ValueError:
                break
    raise _Invalid(_("“%(value)s”不是有效日期（应为 2020-01-02、20200102 或 2020/01/02）") % {"value": text[:40]})


def _to_datetime(value: Any) -> str:
    """A moment as an ISO string with its UTC offset (naive values are in the platform time zone)."""
    if isinstance(value, datetime.datetime):
        moment = value
    elif isinstance(value, datetime.date):
        moment = datetime.datetime.combine(value, datetime.time())
    else:
        text = str(value).strip().replace("/", "-")
        try:
            moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise _Invalid(
                _("“%(value)s”不是有效时间（应为 2020-01-02T08:30:00+08:00）") % {"value": text[:40]}
            ) from None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment.isoformat()


def _to_bool(value: Any) -> bool:
    """A boolean from a bool, 1/0 or 是/否, true/false, yes/no."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _Invalid(_("“%(value)s”不是是/否值") % {"value": str(value)[:40]})


def _to_int(value: Any) -> int:
    """An integer from an int or its decimal text (``12``, ``12.0``)."""
    if isinstance(value, bool):
        raise _Invalid(_("应为整数"))
    if isinstance(value, int):
        return value
    try:
        number = decimal.Decimal(str(value).strip().replace(",", ""))
    except decimal.InvalidOperation:
        raise _Invalid(_("“%(value)s”不是整数") % {"value": str(value)[:40]}) from None
    if not number.is_finite() or number != number.to_integral_value():
        raise _Invalid(_("“%(value)s”不是整数") % {"value": str(value)[:40]})
    return int(number)


def _to_decimal(value: Any) -> decimal.Decimal:
    """A finite decimal from a number or its text."""
    if isinstance(value, bool):
        raise _Invalid(_("应为数值"))
    try:
        number = decimal.Decimal(str(value).strip().replace(",", ""))
    except decimal.InvalidOperation:
        raise _Invalid(_("“%(value)s”不是数值") % {"value": str(value)[:40]}) from None
    if not number.is_finite():
        raise _Invalid(_("“%(value)s”不是数值") % {"value": str(value)[:40]})
    return number


def _decimal_text(number: decimal.Decimal) -> str:
    """A decimal as plain text without exponent or trailing zeros (``1E+2`` → ``100``, ``1.50`` → ``1.5``)."""
    text = format(number.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _check_geojson(value: Any, depth: int = 0) -> None:
    """Raise _Invalid unless ``value`` is a GeoJSON object with a valid type and members."""
    if not isinstance(value, dict):
        raise _Invalid(_("应为 GeoJSON 对象"))
    kind = value.get("type")
    if kind not in GEOJSON_TYPES:
        raise _Invalid(_("GeoJSON 类型“%(type)s”无效") % {"type": str(kind)[:40]})
    if depth > 8:
        raise _Invalid(_("GeoJSON 嵌套过深"))
    if kind == "FeatureCollection":
        features = value.get("features")
        if not isinstance(features, list):
            raise _Invalid(_("FeatureCollection 缺少 features 列表"))
        for feature in features:
            if not isinstance(feature, dict) or feature.get("type") != "Feature":
                raise _Invalid(_("FeatureCollection 的成员应为 Feature"))
            _check_geojson(feature, depth + 1)
    elif kind == "Feature":
        geometry = value.get("geometry")
        if geometry is not None:
            _check_geojson(geometry, depth + 1)
            if geometry.get("type") in ("Feature", "FeatureCollection"):
                raise _Invalid(_("Feature 的 geometry 应为几何对象"))
    elif kind == "GeometryCollection":
        geometries = value.get("geometries")
        if not isinstance(geometries, list):
            raise _Invalid(_("GeometryCollection 缺少 geometries 列表"))
        for geometry in geometries:
            _check_geojson(geometry, depth + 1)
    else:
        coordinates = value.get("coordinates")
        if not isinstance(coordinates, list) or not _numeric_nested(coordinates):
            raise _Invalid(_("%(type)s 的 coordinates 应为数值数组") % {"type": kind})
        if kind == "Point" and not 2 <= len(coordinates) <= 3:
            raise _Invalid(_("Point 的 coordinates 应为 [经度, 纬度]"))


def _numeric_nested(value: Any) -> bool:
    """Whether ``value`` is a (nested) list of numbers with at least one number at the bottom."""
    if isinstance(value, list):
        return bool(value) and all(_numeric_nested(item) for item in value)
    return isinstance(value, int | float) and not isinstance(value, bool)


_ID_SHAPE = re.compile(r"^\d{17}[\dX]$")
_today_cache: list = [0.0, None]


def _recent_today() -> datetime.date:
    """Today's local date, refreshed every minute (a stale value is only ever stricter)."""
    now = time.monotonic()
    if _today_cache[1] is None or now - _today_cache[0] > 60:
        _today_cache[:] = [now, timezone.localdate()]
    return _today_cache[1]


def _clean_resident_id(value: Any, label: str) -> str:
    """A resident ID number, normalized; the kernel validator decides (and words the error) unless plainly valid.

    The fast path accepts only numbers that pass every rule of
    :func:`dgov.kernel.validators.validate_resident_id` (shape, GB/T 2260 address code from
    loc.dat, birth date from 1900 to today, check character); anything else, including address
    codes known only to the database, goes through the kernel validator. It exists because the
    validator looks up the time zone for every call, which is a measurable share of an import.
    """
    text = str(value if value is not None else "").strip().upper()
    if (
        len(text) == 18
        and _ID_SHAPE.match(text)
        and text[:6] in loc_entries()
        and id_check_digit(text[:17]) == text[17]
    ):
        try:
            born = datetime.date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
        except ValueError:
            born = None
        if born is not None and born.year >= 1900 and born <= _recent_today():
            return text
    return validate_resident_id(value, label)


def _build_cleaner(field: FieldDef, accept_labels: bool = False) -> Callable[[Any], Any]:
    """A function cleaning one value of ``field`` (raising _Invalid or ValidationError)."""
    ftype = field.type
    label = field.label
    pattern = re.compile(field.pattern) if field.pattern else None
    max_length = field.max_length
    choices = frozenset(field.choices)

    def text_checks(text: str) -> str:
        if max_length is not None and len(text) > max_length:
            raise _Invalid(
                _("长度不能超过 %(max)d 个字符（实际 %(length)d）") % {"max": max_length, "length": len(text)}
            )
        if pattern is not None and not pattern.fullmatch(text):
            raise _Invalid(_("格式不符合要求"))
        return text

    checked = max_length is not None or pattern is not None

    def with_checks(clean: Callable[[Any], str]) -> Callable[[Any], str]:
        # Most fields have neither max_length nor pattern: skip the extra call per value then.
        return (lambda value: text_checks(clean(value))) if checked else clean

    if ftype == "string":
        return with_checks(lambda value: (value if value.__class__ is str else str(value)).strip())
    if ftype == "text":
        return with_checks(str)
    if ftype == "enum":
        # Imports may name a choice by its Chinese label: one precomputed dict lookup, only for non-codes.
        by_label = field.label_codes() if accept_labels and field.choice_labels else {}

        def clean_enum(value):
            text = str(value).strip()
            if text not in choices:
                code = by_label.get(text)
                if code is None:
                    raise _Invalid(
                        _("“%(value)s”不是可选值（%(choices)s）") % {"value": text[:40], "choices": _choice_list(field)}
                    )
                text = code
            return text_checks(text)

        return clean_enum
    if ftype == "resident_id":
        return with_checks(lambda value: _clean_resident_id(value, label))
    if ftype == "uscc":
        return with_checks(lambda value: validate_uscc(value, label))
    if ftype == "division_code":
        return with_checks(lambda value: validate_division_code(value, label))
    if ftype == "phone":

        def clean_phone(value):
            text = _SPACES.sub("", str(value))
            digits = text.replace("-", "")
            if _MOBILE.match(digits):
                # Mobile numbers are stored without separators so that their blind index matches.
                return text_checks(digits)
            if not _LANDLINE.match(text):
                raise _Invalid(_("“%(value)s”不是有效的电话号码") % {"value": text[:40]})
            return text_checks(text)

        return clean_phone
    if ftype == "email":

        def clean_email(value):
            text = str(value).strip()
            try:
                validate_email(text)
            except ValidationError:
                raise _Invalid(_("“%(value)s”不是有效的电子邮箱") % {"value": text[:60]}) from None
            return text_checks(text)

        return clean_email
    if ftype == "integer":
        low, high = field.min, field.max

        def clean_int(value):
            number = _to_int(value)
            if low is not None and number < low:
                raise _Invalid(_("不能小于 %(min)s") % {"min": low})
            if high is not None and number > high:
                raise _Invalid(_("不能大于 %(max)s") % {"max": high})
            return number

        return clean_int
    if ftype == "decimal":
        low = decimal.Decimal(field.min) if field.min is not None else None
        high = decimal.Decimal(field.max) if field.max is not None else None

        def clean_decimal(value):
            number = _to_decimal(value)
            if low is not None and number < low:
                raise _Invalid(_("不能小于 %(min)s") % {"min": field.min})
            if high is not None and number > high:
                raise _Invalid(_("不能大于 %(max)s") % {"max": field.max})
            return _decimal_text(number)

        return clean_decimal
    if ftype == "boolean":
        return _to_bool
    if ftype == "date":
        return _to_date
    if ftype == "datetime":
        return _to_datetime
    if ftype == "reference":

        def clean_reference(value):
            try:
                return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value).strip()))
            except ValueError:
                raise _Invalid(_("“%(value)s”不是有效的记录标识") % {"value": str(value)[:40]}) from None

        return clean_reference
    if ftype == "geojson":

        def clean_geojson(value):
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError:
                    raise _Invalid(_("不是有效的 JSON")) from None
            _check_geojson(value)
            return value

        return clean_geojson
    # json: any JSON value; text is parsed so that CSV cells can carry objects.

    def clean_json(value):
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise _Invalid(_("不是有效的 JSON")) from None
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            raise _Invalid(_("不是可序列化为 JSON 的值")) from None
        return value

    return clean_json


def _choice_list(field: FieldDef) -> str:
    """The choices of an enum for a message: ``1 男、2 女`` (codes with their labels)."""
    if not field.choice_labels:
        return "、".join(field.choices)
    return "、".join(
        f"{code} {label}" if label and label != code else code
        for code, (label, _en) in zip(field.choices, field.choice_labels, strict=True)
    )


def _message(field: FieldDef, exc: Exception) -> str:
    """A Chinese message naming the field for a cleaning failure."""
    if isinstance(exc, ValidationError):
        # The kernel validators already name the field (we pass the label).
        return "；".join(str(m) for m in exc.messages)
    return _("%(field)s：%(reason)s") % {"field": field.label, "reason": exc}


def _empty(value: Any) -> bool:
    """None, blank text and empty containers count as "no value"."""
    return (
        value is None
        or (isinstance(value, str) and not value.strip())
        or (isinstance(value, list | dict) and not value)
    )


_PLAIN = frozenset({str, int, float, bool, list, dict, type(None)})


@lru_cache(maxsize=256)
def compile_cleaner(fields: tuple[FieldDef, ...], accept_labels: bool = False) -> Callable[[dict, bool], dict]:
    """A function ``clean(values, partial)`` for this field list (cached: FieldDefs are immutable).

    With ``accept_labels`` (imports) an enum value may also be the exact Chinese label of a choice;
    it is stored as the choice's code.
    """
    cleaners = {field.name: (field, _build_cleaner(field, accept_labels)) for field in fields}
    required = tuple(field for field in fields if field.required)

    def clean(values: dict, partial: bool) -> dict:
        if not isinstance(values, dict):
            raise RecordValidationError({"__all__": [_("数据应为对象")]})
        out: dict[str, Any] = {}
        errors: dict[str, list[str]] = {}
        for name, value in values.items():
            entry = cleaners.get(name)
            if entry is None:
                errors[str(name)] = [_("未知字段“%(field)s”") % {"field": name}]
                continue
            field, cleaner = entry
            kind = value.__class__
            # Inlined _empty(): this loop runs for every cell of million-row imports.
            if (
                value is None
                or (kind is str and (not value or value.isspace()))
                or (kind in (list, dict) and not value)
                or (kind not in _PLAIN and _empty(value))
            ):
                if partial:
                    if field.required:
                        errors[name] = [_("%(field)s：必填，不能清空") % {"field": field.label}]
                    else:
                        out[name] = None
                continue
            try:
                out[name] = cleaner(value)
            except (_Invalid, ValidationError) as exc:
                errors[name] = [_message(field, exc)]
        if not partial:
            for field in required:
                if field.name not in out and field.name not in errors:
                    errors[field.name] = [_("%(field)s：必填") % {"field": field.label}]
        if errors:
            raise RecordValidationError(errors)
        return out

    return clean


def clean_values(fields: list[FieldDef], values: dict, *, partial: bool = False) -> dict:
    """Validate and coerce ``values`` for ``fields``; raise RecordValidationError with every problem.

    With ``partial`` (an update) missing required fields are fine, and an empty value means
    "clear" (``None`` in the result) unless the field is required; without it empty values are
    dropped and every required field must be present.
    """
    return compile_cleaner(tuple(fields))(values, partial)


def clean_value(field: FieldDef, value: Any) -> Any:
    """Clean one value of ``field`` (None for an empty value); raise RecordValidationError."""
    return compile_cleaner((field,))({field.name: value}, True).get(field.name)


# --- Masking -------------------------------------------------------------------------------------------


def _mask_partial(text: str) -> str:
    """Keep the first and last character (a third each for long values), mask the rest."""
    if len(text) <= 2:
        return "*" * len(text)
    keep = max(1, len(text) // 4)
    return text[:keep] + "*" * (len(text) - 2 * keep) + text[-keep:]


def _mask_rule(field: FieldDef) -> str:
    """The masking rule of a field: its ``mask``, else one implied by its type or name."""
    if field.mask:
        return field.mask
    if field.type == "resident_id":
        return "id_number"
    if field.type == "uscc":
        return "uscc"
    if field.type == "phone":
        return "phone"
    if field.type in ("string", "text"):
        name = field.name
        if name == "name" or name.endswith("_name") or name.startswith("name_"):
            return "name"
        if "address" in name or name.endswith("_addr") or name == "addr":
            return "address"
    if field.type in ("geojson", "json", "boolean", "enum", "integer", "decimal", "date", "datetime"):
        return "full"
    return "partial"


def mask_value(field: FieldDef, value: Any) -> str:
    """``value`` masked (脱敏) by the field's rule: ID numbers, phones, names, addresses, USCCs, others."""
    if value is None or value == "":
        return ""
    rule = _mask_rule(field)
    if rule == "id_number":
        return mask_id_number(value)
    if rule == "phone":
        return mask_phone(value)
    if rule == "name":
        return mask_name(value)
    if rule == "address":
        return mask_address(value)
    if rule == "uscc":
        return mask_uscc(value)
    if rule == "full":
        return "****"
    return _mask_partial(str(value))
