"""Validation of application forms against an item's ``form_schema`` (a JSON Schema 2020-12 subset).

Supported: a top-level ``object`` with ``properties`` and ``required``; per property ``type``
(string, integer, number, boolean), ``title``, ``enum``, ``minLength``/``maxLength``, ``pattern``,
``minimum``/``maximum`` and ``format`` (``date``, ``email``, ``cn-ric`` resident ID number,
``cn-uscc`` unified social credit code, ``phone``). Unknown properties are refused. Messages are
Chinese (gettext) and keyed by field so pages and problem+json can show them beside the field.
"""

from __future__ import annotations

import datetime
import re

from django.utils.translation import gettext as _

from dgov.kernel.validators import is_valid_resident_id, is_valid_uscc

__all__ = ["validate_form", "fields_of", "FORMATS", "ORDER_KEY"]

#: Schema keyword listing the property names in display order (an extension, like ``x-source``).
ORDER_KEY = "x-order"

#: The string formats a form field may declare; the catalogue refuses any other at load time.
FORMATS = ("date", "email", "phone", "cn-ric", "cn-uscc")

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^1[3-9]\d{9}$")


def fields_of(schema: dict) -> list[tuple[str, dict, bool]]:
    """``(name, property schema, required)`` for each property of ``schema``, in declaration order.

    The order is ``x-order`` when the schema has it (the catalogue stores it, since PostgreSQL's
    jsonb does not keep object key order), else the order of ``properties``.
    """
    schema = schema or {}
    required = set(schema.get("required") or [])
    properties = schema.get("properties") or {}
    order = [name for name in schema.get(ORDER_KEY) or () if name in properties]
    names = order + [name for name in properties if name not in order]
    return [(name, properties[name] or {}, name in required) for name in names]


def _format_ok(fmt: str, value: str) -> bool:
    """Whether a string matches one of the supported formats (unknown formats are not checked)."""
    if fmt == "date":
        try:
            datetime.date.fromisoformat(value)
        except ValueError:
            return False
        return True
    if fmt == "email":
        return bool(_EMAIL.match(value))
    if fmt == "phone":
        return bool(_PHONE.match(value))
    if fmt == "cn-ric":
        return is_valid_resident_id(value)
    if fmt == "cn-uscc":
        return is_valid_uscc(value)
    return True


def _coerce(prop: dict, value):
    """Convert form strings to the declared type; returns (value, error message or None)."""
    kind = prop.get("type", "string")
    if kind == "boolean":
        if isinstance(value, bool):
            return value, None
        if isinstance(value, str) and value.lower() in {"true", "on", "1", "yes"}:
            return True, None
        if isinstance(value, str) and value.lower() in {"false", "off", "0", "no", ""}:
            return False, None
        return value, _("请选择“是”或“否”。")
    if kind in {"integer", "number"}:
        if isinstance(value, bool):
            return value, _("请输入数字。")
        if isinstance(value, str):
            try:
                value = int(value) if kind == "integer" else float(value)
            except ValueError:
                return value, _("请输入整数。") if kind == "integer" else _("请输入数字。")
        if kind == "integer" and not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value), None
            return value, _("请输入整数。")
        if not isinstance(value, int | float):
            return value, _("请输入数字。")
        return value, None
    if not isinstance(value, str):
        return value, _("请输入文字。")
    return value.strip(), None


def validate_form(schema: dict, data) -> tuple[dict, dict[str, list[str]]]:
    """Check ``data`` against ``schema``: ``(cleaned data, {field: [messages]})``; no errors means valid."""
    errors: dict[str, list[str]] = {}
    if not isinstance(data, dict):
        return {}, {"__all__": [_("表单数据必须是对象。")]}
    props = {name: (prop, req) for name, prop, req in fields_of(schema)}
    cleaned: dict = {}
    for name in data:
        if name not in props:
            errors.setdefault(name, []).append(_("表单中没有这一项。"))
    for name, (prop, required) in props.items():
        raw = data.get(name)
        if raw is None or (isinstance(raw, str) and not raw.strip() and prop.get("type", "string") != "boolean"):
            if required:
                errors.setdefault(name, []).append(_("此项为必填项。"))
            continue
        value, problem = _coerce(prop, raw)
        if problem:
            errors.setdefault(name, []).append(problem)
            continue
        msgs = []
        if "enum" in prop and value not in prop["enum"]:
            msgs.append(_("请从给定选项中选择。"))
        if isinstance(value, str):
            if "minLength" in prop and len(value) < prop["minLength"]:
                msgs.append(_("至少 %(n)d 个字符。") % {"n": prop["minLength"]})
            if "maxLength" in prop and len(value) > prop["maxLength"]:
                msgs.append(_("最多 %(n)d 个字符。") % {"n": prop["maxLength"]})
            if "pattern" in prop and not re.search(prop["pattern"], value):
                msgs.append(_("格式不正确。"))
            if "format" in prop and not _format_ok(prop["format"], value):
                msgs.append(_("格式不正确。"))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            if "minimum" in prop and value < prop["minimum"]:
                msgs.append(_("不能小于 %(n)s。") % {"n": prop["minimum"]})
            if "maximum" in prop and value > prop["maximum"]:
                msgs.append(_("不能大于 %(n)s。") % {"n": prop["maximum"]})
        if msgs:
            errors[name] = msgs
        else:
            cleaned[name] = value
    return cleaned, errors
