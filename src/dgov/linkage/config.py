"""Settings of a linkage run and the ``dgov link`` config file (YAML) that carries them.

A run links the records of two or more tables (``mode: link``), deduplicates one table
(``mode: dedupe``) or both at once (``mode: link_and_dedupe``). Each table maps some of its columns
to *roles* (:data:`ROLES`); the engine compares roles, never column names, so tables with different
headers link without renaming. The file format is documented in ``docs/linkage.md``; every mistake
in it raises :class:`LinkageConfigError` with a message that names the offending key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.utils.translation import gettext as _

from dgov.linkage.normalize import IDENTIFIER_KINDS

ROLES: dict[str, str] = {
    "full_name": "姓名（全名）或单位名称",
    "family_name": "姓",
    "given_name": "名",
    "birth_date": "出生日期",
    "identifier": "证件号码（居民身份证号码或统一社会信用代码）",
    "sex": "性别",
    "address": "地址（可由多列组成）",
    "postcode": "邮政编码",
    "city": "城市",
    "phone": "电话",
    "text": "其他文本（可由多列组成）",
}
# Roles that several columns of one table may share: their values are joined in column order.
MULTI_COLUMN_ROLES = frozenset({"address", "text"})
NAME_ROLES = frozenset({"full_name", "family_name", "given_name"})

MODES = ("link", "dedupe", "link_and_dedupe")
ENTITIES = ("person", "organization")

# Blocking keys: name → roles that provide it (any one of them suffices).
BLOCKING_KEYS: dict[str, frozenset[str]] = {
    "identifier": frozenset({"identifier"}),
    "birth_date": frozenset({"birth_date", "identifier"}),
    "birth_year": frozenset({"birth_date", "identifier"}),
    "birth_month": frozenset({"birth_date", "identifier"}),
    "birth_monthday": frozenset({"birth_date", "identifier"}),
    "name": NAME_ROLES,
    "name_pinyin": NAME_ROLES,
    "family_pinyin": NAME_ROLES,
    "given_pinyin": NAME_ROLES,
    "phone": frozenset({"phone"}),
    "postcode": frozenset({"postcode"}),
    "city": frozenset({"city"}),
    "address": frozenset({"address"}),
}
PERSON_ONLY_KEYS = frozenset({"family_pinyin", "given_pinyin"})

# Each rule is specific enough for a million records (about a million candidate pairs in all on the
# synthetic benchmark), and together they miss a match only when its identifier, its phone and its
# name or birth date are all wrong or missing (see docs/linkage.md).
DEFAULT_BLOCKING_PERSON: tuple[tuple[str, ...], ...] = (
    ("phone",),
    ("name_pinyin", "birth_year"),
    ("name_pinyin", "birth_monthday"),
    ("birth_date", "family_pinyin"),
    ("birth_date", "given_pinyin"),
)
# Default rules that run only while they stay small: a key as coarse as the name alone is worth its
# pairs on tens of thousands of records, not on millions (the engine counts the pairs first).
OPTIONAL_BLOCKING_PERSON: tuple[tuple[str, ...], ...] = (("name_pinyin",),)
OPTIONAL_PAIR_BUDGET = 2_000_000
DEFAULT_BLOCKING_ORGANIZATION: tuple[tuple[str, ...], ...] = (
    ("name",),
    ("name_pinyin",),
    ("phone",),
    ("address",),
)


class LinkageConfigError(ValueError):
    """A linkage config or table that cannot be used; the message says which key or column and why."""


@dataclass
class TableSpec:
    """One input table: a CSV file (``path``) or in-memory rows, and its column → role mapping."""

    name: str
    columns: dict[str, str]
    path: Path | None = None
    rows: Sequence[Mapping[str, Any]] | None = None
    id_column: str | None = None
    encoding: str = "auto"
    delimiter: str = ","

    def role_columns(self) -> dict[str, list[str]]:
        """Role → the table's columns mapped to it, in mapping order."""
        result: dict[str, list[str]] = {}
        for column, role in self.columns.items():
            result.setdefault(role, []).append(column)
        return result


@dataclass
class LinkSettings:
    """Everything the engine needs: the tables and the model's knobs (see docs/linkage.md)."""

    tables: list[TableSpec]
    mode: str = "link"
    entity: str = "person"
    identifier_kind: str = "any"
    blocking: list[list[str]] | None = None
    threshold: float = 0.9
    one_to_one: bool = False
    u_sample_size: int = 100_000
    max_em_iterations: int = 60
    term_frequency: bool = True
    seed: int = 1

    def validate(self) -> None:
        """Check the settings before any data is read; raises :class:`LinkageConfigError`."""
        if self.mode not in MODES:
            raise LinkageConfigError(
                _("mode：应为 %(choices)s 之一（实际为“%(value)s”）")
                % {"choices": "、".join(MODES), "value": self.mode}
            )
        if self.entity not in ENTITIES:
            raise LinkageConfigError(
                _("entity：应为 %(choices)s 之一（实际为“%(value)s”）")
                % {"choices": "、".join(ENTITIES), "value": self.entity}
            )
        if self.identifier_kind not in IDENTIFIER_KINDS:
            raise LinkageConfigError(
                _("identifier_kind：应为 %(choices)s 之一（实际为“%(value)s”）")
                % {"choices": "、".join(IDENTIFIER_KINDS), "value": self.identifier_kind}
            )
        if self.mode == "dedupe" and len(self.tables) != 1:
            raise LinkageConfigError(
                _("tables：mode 为 dedupe 时应恰好有 1 张表（实际 %(count)d 张）") % {"count": len(self.tables)}
            )
        if self.mode == "link" and len(self.tables) < 2:
            raise LinkageConfigError(
                _("tables：mode 为 link 时至少需要 2 张表（实际 %(count)d 张）") % {"count": len(self.tables)}
            )
        if not self.tables:
            raise LinkageConfigError(_("tables：至少需要 1 张表"))
        names = [t.name for t in self.tables]
        if len(set(names)) != len(names):
            raise LinkageConfigError(_("tables：表名 name 不能重复"))
        if not 0.0 < self.threshold < 1.0:
            raise LinkageConfigError(_("threshold：应为 0 与 1 之间的匹配概率（不含 0 和 1）"))
        if self.u_sample_size < 1000:
            raise LinkageConfigError(_("u_sample_size：至少为 1000"))
        for table in self.tables:
            self._validate_table(table)
        for rule in self.blocking_rules():
            self._validate_rule(rule)

    def _validate_table(self, table: TableSpec) -> None:
        """Roles exist, single-column roles are mapped once, a name role is present."""
        where = _("表 %(table)s") % {"table": table.name}
        if not table.name or not str(table.name).strip():
            raise LinkageConfigError(_("tables：每张表都需要 name"))
        if table.path is None and table.rows is None:
            raise LinkageConfigError(_("%(where)s：缺少 path（CSV 文件路径）") % {"where": where})
        if not table.columns:
            raise LinkageConfigError(_("%(where)s：columns 至少要把一列映射到角色") % {"where": where})
        for column, role in table.columns.items():
            if role not in ROLES:
                raise LinkageConfigError(
                    _("%(where)s：列“%(column)s”的角色“%(role)s”无效，可用角色：%(roles)s")
                    % {"where": where, "column": column, "role": role, "roles": "、".join(ROLES)}
                )
        for role, columns in table.role_columns().items():
            if len(columns) > 1 and role not in MULTI_COLUMN_ROLES:
                raise LinkageConfigError(
                    _("%(where)s：角色“%(role)s”只能映射一列（实际映射了 %(columns)s）")
                    % {"where": where, "role": role, "columns": "、".join(columns)}
                )
        if not NAME_ROLES & set(table.columns.values()) and "identifier" not in table.columns.values():
            raise LinkageConfigError(
                _("%(where)s：至少要映射一个姓名角色（full_name、family_name、given_name）或 identifier")
                % {"where": where}
            )

    def shared_roles(self) -> set[str]:
        """Roles that every table maps (only those can be compared)."""
        roles = [set(t.columns.values()) for t in self.tables]
        return set.intersection(*roles) if roles else set()

    def key_available(self, key: str) -> bool:
        """True when every table maps a role that provides blocking key ``key``."""
        providers = BLOCKING_KEYS[key]
        return all(providers & set(t.columns.values()) for t in self.tables)

    def blocking_rules(self) -> list[tuple[str, ...]]:
        """The configured rules, or the defaults for the entity whose keys every table provides."""
        if self.blocking is not None:
            return [tuple(rule) for rule in self.blocking]
        defaults = DEFAULT_BLOCKING_PERSON if self.entity == "person" else DEFAULT_BLOCKING_ORGANIZATION
        return [rule for rule in defaults if all(self.key_available(k) for k in rule)]

    def optional_blocking_rules(self) -> list[tuple[str, ...]]:
        """Default rules the engine adds when their pair count stays within :data:`OPTIONAL_PAIR_BUDGET`."""
        if self.blocking is not None or self.entity != "person":
            return []
        return [rule for rule in OPTIONAL_BLOCKING_PERSON if all(self.key_available(k) for k in rule)]

    def _validate_rule(self, rule: tuple[str, ...]) -> None:
        """Every key of a configured rule exists and is provided by every table."""
        if not rule:
            raise LinkageConfigError(_("blocking：每条规则至少要有一个键"))
        for key in rule:
            if key not in BLOCKING_KEYS:
                raise LinkageConfigError(
                    _("blocking：键“%(key)s”无效，可用键：%(keys)s") % {"key": key, "keys": "、".join(BLOCKING_KEYS)}
                )
            if self.entity != "person" and key in PERSON_ONLY_KEYS:
                raise LinkageConfigError(_("blocking：键“%(key)s”只适用于 entity: person") % {"key": key})
            if not self.key_available(key):
                raise LinkageConfigError(
                    _("blocking：键“%(key)s”需要每张表都映射以下角色之一：%(roles)s")
                    % {"key": key, "roles": "、".join(sorted(BLOCKING_KEYS[key]))}
                )


@dataclass
class GoldenSpec:
    """Golden-record output of a ``dgov link`` run: the authoritative table per role and two CSV paths."""

    authority: dict[str, str]
    records: Path | None = None
    conflicts: Path | None = None


@dataclass
class LinkJob:
    """A parsed ``dgov link`` config: the settings plus where to write the results."""

    settings: LinkSettings
    pairs_path: Path | None = None
    clusters_path: Path | None = None
    pairs_min_probability: float | None = None
    golden: GoldenSpec | None = None
    source: Path | None = field(default=None, repr=False)


_TOP_KEYS = frozenset(
    {
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
        "output",
        "golden",
    }
)
_TABLE_KEYS = frozenset({"name", "path", "columns", "id_column", "encoding", "delimiter"})


def load_config(path: str | Path) -> LinkJob:
    """Read and validate a ``dgov link`` YAML config; relative paths are relative to the file."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LinkageConfigError(_("配置文件 %(path)s 不存在") % {"path": path}) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LinkageConfigError(_("无法读取配置文件 %(path)s：%(error)s") % {"path": path, "error": exc}) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise LinkageConfigError(
            _("配置文件 %(path)s 不是有效的 YAML：%(error)s") % {"path": path, "error": exc}
        ) from None
    return parse_config(data, base=path.parent, source=path)


def _mapping(value: Any, where: str) -> dict:
    """``value`` if it is a mapping, else a config error naming ``where``."""
    if not isinstance(value, dict):
        raise LinkageConfigError(_("%(where)s：应为键值映射") % {"where": where})
    return value


def _unknown_keys(data: dict, allowed: frozenset[str], where: str) -> None:
    """Refuse keys the format does not define (a typo would otherwise be silently ignored)."""
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise LinkageConfigError(
            _("%(where)s：未知的键 %(keys)s（可用：%(allowed)s）")
            % {"where": where, "keys": "、".join(unknown), "allowed": "、".join(sorted(allowed))}
        )


def _number(data: dict, key: str, kind: type, default):
    """An int or float setting, with a clear error when it has another type."""
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise LinkageConfigError(_("%(key)s：应为数字（实际为“%(value)s”）") % {"key": key, "value": value})
    return kind(value)


def _flag(data: dict, key: str, default: bool) -> bool:
    """A boolean setting."""
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise LinkageConfigError(_("%(key)s：应为 true 或 false") % {"key": key})
    return value


def _settings(data: dict, tables: list[TableSpec]) -> LinkSettings:
    """The validated model settings of a run (mode, blocking, thresholds …) over ``tables``.

    Shared by ``dgov link`` configurations (CSV tables) and platform runs over registries
    (:mod:`dgov.linkage.registry_config`).
    """
    blocking = data.get("blocking")
    if blocking is not None:
        if not isinstance(blocking, list) or not all(
            isinstance(rule, (list, str)) and (isinstance(rule, str) or all(isinstance(k, str) for k in rule))
            for rule in blocking
        ):
            raise LinkageConfigError(_("blocking：应为规则列表，每条规则是一个键或键的列表"))
        blocking = [[rule] if isinstance(rule, str) else list(rule) for rule in blocking]
    settings = LinkSettings(
        tables=tables,
        mode=str(data.get("mode", "link" if len(tables) > 1 else "dedupe")),
        entity=str(data.get("entity", "person")),
        identifier_kind=str(data.get("identifier_kind", "any")),
        blocking=blocking,
        threshold=_number(data, "threshold", float, 0.9),
        one_to_one=_flag(data, "one_to_one", False),
        u_sample_size=_number(data, "u_sample_size", int, 100_000),
        max_em_iterations=_number(data, "max_em_iterations", int, 60),
        term_frequency=_flag(data, "term_frequency", True),
        seed=_number(data, "seed", int, 1),
    )
    settings.validate()
    return settings


def parse_config(data: Any, *, base: Path, source: Path | None = None) -> LinkJob:
    """Turn the loaded YAML into a validated :class:`LinkJob` (see :func:`load_config`)."""
    data = _mapping(data, _("配置文件"))
    _unknown_keys(data, _TOP_KEYS, _("配置文件"))
    tables_data = data.get("tables")
    if not isinstance(tables_data, list) or not tables_data:
        raise LinkageConfigError(_("tables：应为非空列表，每项描述一张表"))
    tables = []
    for index, table_data in enumerate(tables_data, start=1):
        where = _("tables 第 %(index)d 项") % {"index": index}
        table_data = _mapping(table_data, where)
        _unknown_keys(table_data, _TABLE_KEYS, where)
        name = table_data.get("name")
        if not isinstance(name, str) or not name.strip():
            raise LinkageConfigError(_("%(where)s：缺少表名 name") % {"where": where})
        path = table_data.get("path")
        if not isinstance(path, str) or not path.strip():
            raise LinkageConfigError(_("%(where)s：缺少 path（CSV 文件路径）") % {"where": where})
        columns = _mapping(table_data.get("columns"), _("%(where)s 的 columns") % {"where": where})
        id_column = table_data.get("id_column")
        if id_column is not None and not isinstance(id_column, str):
            raise LinkageConfigError(_("%(where)s：id_column 应为列名") % {"where": where})
        delimiter = str(table_data.get("delimiter", ","))
        if len(delimiter) != 1:
            raise LinkageConfigError(_("%(where)s：delimiter 应为单个字符") % {"where": where})
        tables.append(
            TableSpec(
                name=name.strip(),
                path=(base / path).resolve(),
                columns={str(k): str(v) for k, v in columns.items()},
                id_column=id_column,
                encoding=str(table_data.get("encoding", "auto")),
                delimiter=delimiter,
            )
        )
    settings = _settings(data, tables)
    output = _mapping(data.get("output", {}), "output")
    _unknown_keys(output, frozenset({"pairs", "clusters", "pairs_min_probability"}), "output")
    if not output.get("pairs") and not output.get("clusters"):
        raise LinkageConfigError(_("output：至少要给出 pairs 或 clusters 的输出路径"))
    pairs_min = output.get("pairs_min_probability")
    if pairs_min is not None:
        pairs_min = _number(output, "pairs_min_probability", float, None)
        if not 0.0 <= pairs_min <= 1.0:
            raise LinkageConfigError(_("output.pairs_min_probability：应在 0 与 1 之间"))
    golden = _parse_golden(data.get("golden"), settings, base)
    return LinkJob(
        settings=settings,
        pairs_path=(base / output["pairs"]).resolve() if output.get("pairs") else None,
        clusters_path=(base / output["clusters"]).resolve() if output.get("clusters") else None,
        pairs_min_probability=pairs_min,
        golden=golden,
        source=source,
    )


def _parse_golden(data: Any, settings: LinkSettings, base: Path) -> GoldenSpec | None:
    """The optional ``golden`` section: authority per role and the two output paths."""
    if data is None:
        return None
    data = _mapping(data, "golden")
    _unknown_keys(data, frozenset({"authority", "records", "conflicts"}), "golden")
    authority = _mapping(data.get("authority"), "golden.authority")
    tables = {t.name: t for t in settings.tables}
    for role, table_name in authority.items():
        if role not in ROLES:
            raise LinkageConfigError(
                _("golden.authority：角色“%(role)s”无效，可用角色：%(roles)s")
                % {"role": role, "roles": "、".join(ROLES)}
            )
        table = tables.get(table_name)
        if table is None:
            raise LinkageConfigError(
                _("golden.authority：角色“%(role)s”的权威来源“%(table)s”不是 tables 中的表")
                % {"role": role, "table": table_name}
            )
        if role not in table.columns.values():
            raise LinkageConfigError(
                _("golden.authority：权威来源表 %(table)s 没有映射角色“%(role)s”") % {"role": role, "table": table_name}
            )
    if not data.get("records"):
        raise LinkageConfigError(_("golden：缺少 records（黄金记录输出路径）"))
    return GoldenSpec(
        authority={str(k): str(v) for k, v in authority.items()},
        records=(base / data["records"]).resolve(),
        conflicts=(base / data["conflicts"]).resolve() if data.get("conflicts") else None,
    )
