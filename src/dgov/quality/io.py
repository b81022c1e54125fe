"""Reading rule sets (规则集) from YAML or JSON, and the load report.

A rule set is a list of rules, or an object ``{"registry": …, "resource": …, "rules": [...]}`` whose
``registry``/``resource`` apply to the rules that name neither. Keys of a rule are documented in
docs/quality.md. The file is parsed here; every rule is checked by
:func:`dgov.quality.services.load_rules`, which writes nothing unless all of them are good.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.utils.translation import gettext as _

__all__ = ["LoadReport", "RuleSetError", "parse_rule_set", "read_rule_file"]

MAX_BYTES = 4 * 1024 * 1024


class RuleSetError(ValueError):
    """A rule set that cannot be read at all (not YAML/JSON, wrong shape); the message says why."""


@dataclass
class LoadReport:
    """What a load did or would do: rules created, updated, unchanged, and every bad rule with its problems."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    errors: list[tuple[int, str, list[str]]] = field(default_factory=list)
    source: str = ""

    @property
    def ok(self) -> bool:
        """True when every rule was good (and the set was written, unless a dry run)."""
        return not self.errors

    def to_text(self) -> str:
        """The report for people (Chinese), one line per bad rule."""
        if self.errors:
            lines = [_("规则集有 %(n)d 条规则不正确，未做任何修改：") % {"n": len(self.errors)}]
            for index, code, messages in self.errors:
                lines.append(
                    _("第 %(index)d 条（%(code)s）：%(messages)s")
                    % {"index": index, "code": code or "—", "messages": "；".join(messages)}
                )
            return "\n".join(lines)
        return _("新增 %(created)d 条、更新 %(updated)d 条、未变 %(unchanged)d 条规则。") % {
            "created": len(self.created),
            "updated": len(self.updated),
            "unchanged": len(self.unchanged),
        }

    def as_dict(self) -> dict:
        """JSON-able form."""
        return {
            "ok": self.ok,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "errors": [{"index": i, "code": c, "messages": m} for i, c, m in self.errors],
        }


def parse_rule_set(text: str, *, fmt: str = "") -> list[dict[str, Any]]:
    """The rules of a YAML or JSON text (``fmt`` "yaml"/"json", else guessed), defaults applied."""
    import yaml

    if fmt == "json" or (not fmt and text.lstrip()[:1] in ("[", "{")):
        try:
            data = json.loads(text)
        except ValueError as exc:
            if fmt == "json":
                raise RuleSetError(_("不是有效的 JSON：%(error)s") % {"error": exc}) from None
            data = None
        if data is not None:
            return _rules_of(data)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleSetError(_("不是有效的 YAML/JSON：%(error)s") % {"error": str(exc).splitlines()[0]}) from None
    return _rules_of(data)


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
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RuleSetError(_("无法读取文件 %(path)s：%(error)s") % {"path": path, "error": exc.strerror}) from None
    if len(raw) > MAX_BYTES:
        raise RuleSetError(_("规则文件过大（上限 4 MiB）"))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RuleSetError(_("规则文件应为 UTF-8 编码")) from None
    suffix = path.suffix.lower()
    fmt = "json" if suffix == ".json" else "yaml" if suffix in (".yaml", ".yml") else ""
    return parse_rule_set(text, fmt=fmt)
