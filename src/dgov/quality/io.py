"""Reading rule sets (规则集) from YAML or JSON, and the load report.

A rule set is a list of rules, or an object ``{"registry": …, "resource": …, "rules": [...]}`` whose
``registry``/``resource`` apply to the rules that name neither. Keys of a rule are documented in
docs/quality.md. The file is parsed here; every rule is checked by
:func:`dgov.quality.services.load_rules`, which writes nothing unless all of them are good.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from dgov.kernel import dataload

__all__ = ["LoadReport", "RuleSetError", "parse_rule_set", "read_rule_file"]

MAX_BYTES = dataload.MAX_BYTES


class RuleSetError(ValueError):
    """A rule set that cannot be read at all (not YAML/JSON, wrong shape); the message says why."""


class LoadReport(dataload.LoadReport):
    """What a load did or would do: rules created, updated, unchanged, and every bad rule with its problems."""

    rejected_text = gettext_noop("规则集有 %(n)d 条规则不正确，未做任何修改：")
    entry_text = gettext_noop("第 %(index)d 条（%(code)s）：%(messages)s")
    summary_text = gettext_noop("新增 %(created)d 条、更新 %(updated)d 条、未变 %(unchanged)d 条规则。")


def parse_rule_set(text: str, *, fmt: str = "") -> list[dict[str, Any]]:
    """The rules of a YAML or JSON text (``fmt`` "yaml"/"json", else guessed), defaults applied."""
    return _rules_of(dataload.parse_document(text, fmt=fmt, error=RuleSetError))


def _rules_of(data: Any) -> list[dict[str, Any]]:
    """The list of rule dicts of a parsed rule set (top-level registry/resource as defaults)."""
    defaults: dict[str, Any] = {}
    if isinstance(data, dict):
        unknown = sorted(set(data) - {"rules", "registry", "resource"})
        if unknown or "rules" not in data:
            raise RuleSetError(_("规则集应为规则列表，或含 rules 列表的对象（可带 registry、resource）"))
        defaults = {key: data[key] for key in ("registry", "resource") if data.get(key)}
        data = data["rules"]
    if not isinstance(data, list):
        raise RuleSetError(_("规则集应为规则列表"))
    rules = []
    for item in data:
        if isinstance(item, dict) and defaults and not ({"registry", "resource"} & set(item)):
            item = {**defaults, **item}
        rules.append(item)
    return rules


def read_rule_file(path: str | Path) -> list[dict[str, Any]]:
    """The rules of a ``.yaml``/``.yml``/``.json`` file (UTF-8, BOM allowed)."""
    text = dataload.read_text(
        path, error=RuleSetError, too_large=_("规则文件过大（上限 4 MiB）"), not_utf8=_("规则文件应为 UTF-8 编码")
    )
    return parse_rule_set(text, fmt=dataload.format_of(path))
