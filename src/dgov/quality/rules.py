"""The built-in quality rule types (规则类型库) and their compilation into DuckDB SQL.

A rule is data — ``RuleSpec(code, type, fields, params, sql)`` — and every type turns it into a
:class:`Check`: SQL fragments that :mod:`dgov.quality.engine` puts into **one** query per table.
A row-level check is two boolean expressions over a row: ``applies`` (the row is checked: e.g. the
value is present) and ``fails`` (the row breaks the rule; NULL counts as a failure, so a value
that cannot even be cast fails). Checks may add window columns (duplicates), shared common table
expressions (code lists), joined sub-queries (custom SQL) or, for table-level rules (freshness of
the whole table), an aggregate that Python judges. ``accessible`` is evaluated outside the query
(``external``): it reads the catalogue and the exchange log, not the rows.

Identifier checks follow the kernel validators exactly (``dgov.kernel.validators``: GB 11643 ID
numbers, GB 32100 USCCs, GB/T 2260 division codes): the SQL is generated from the kernel's own
weights, check-character tables, authority table and the loc.dat code list, and tests hold the SQL
and the Python validators together on generated values. Stored values are judged as stored: an ID
number with surrounding spaces or a lower-case ``x`` is not conformant (the registry stores the
normalized form).

Every type refuses unknown parameter keys, so a typo cannot silently weaken a rule.
"""

from __future__ import annotations

import datetime
import hashlib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

__all__ = [
    "CYCLE_DAYS",
    "RULE_TYPES",
    "Check",
    "Column",
    "Context",
    "RuleError",
    "RuleSpec",
    "RuleType",
    "compile_rule",
    "quote",
    "resident_id_sql",
    "uscc_sql",
    "division_code_sql",
]

# Days a resource may go without an update for each declared update cycle (catalogue 更新周期).
SOURCE = "records"  # how rules (and custom SQL) name the evaluated table
CYCLE_DAYS = {
    "realtime": 1,
    "daily": 1,
    "weekly": 7,
    "monthly": 31,
    "quarterly": 92,
    "half_yearly": 183,
    "yearly": 366,
}
DEFAULT_SEX_CODES = {"male": ("1", "M", "男"), "female": ("2", "F", "女")}
REGION_DIGITS = {"province": 2, "city": 4, "county": 6}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class RuleError(ValueError):
    """A rule that cannot be compiled: unknown type or field, bad parameters. ``messages`` lists why (Chinese)."""

    def __init__(self, messages: str | Sequence[str]):
        self.messages = [messages] if isinstance(messages, str) else [str(m) for m in messages]
        super().__init__("；".join(self.messages))


@dataclass(frozen=True)
class Column:
    """A column of the evaluated table: name, registry field type (``string`` when unknown), personal or not."""

    name: str
    type: str = "string"
    personal: bool = False
    choices: tuple[str, ...] = ()
    label: str = ""


@dataclass(frozen=True)
class RuleSpec:
    """A rule as data: its code, type, the fields it reads, its parameters and (type ``sql``) its query."""

    code: str
    type: str
    fields: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    sql: str = ""


@dataclass
class Context:
    """What compiling needs besides the rule: the table's columns, the time, code lists, reference tables.

    ``columns`` None accepts any column name (a bench table without metadata). ``reference`` maps
    ``(registry code, field)`` to the name of a one-column table ``v`` holding that field's values
    (the runner loads it; None: references cannot be compiled). ``update_cycle`` is the declared
    cycle of the catalogue resource a rule targets (freshness default).
    """

    columns: dict[str, Column] | None = None
    now: datetime.datetime | None = None
    today: datetime.date | None = None
    key: str = "_uid"
    updated_column: str = "_updated_at"
    reference: Callable[[str, str], str] | None = None
    update_cycle: str = ""
    id_regions: Callable[[], Sequence[str]] | None = None
    current_divisions: Callable[[], Sequence[str]] | None = None
    all_divisions: Callable[[], Sequence[str]] | None = None

    def __post_init__(self):
        if self.now is None:
            self.now = datetime.datetime.now(datetime.UTC)
        if self.today is None:
            self.today = self.now.date()


@dataclass(frozen=True)
class Check:
    """A compiled rule: SQL fragments for the engine's single query (see the module docstring)."""

    code: str
    applies: str = "TRUE"
    fails: str = "FALSE"
    columns: tuple[str, ...] = ()
    derived: tuple[tuple[str, str], ...] = ()  # (alias, SQL) per-row values shared by rules, computed once
    windows: tuple[tuple[str, str], ...] = ()
    ctes: tuple[tuple[str, str], ...] = ()
    joins: tuple[tuple[str, str], ...] = ()  # (alias, SELECT k …): the alias column holds k or NULL
    aggregate: str = ""
    judge: Callable[[Any], tuple[int, int, list[dict]]] | None = None
    external: bool = False
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RuleType:
    """A built-in rule type: name, label, default dimension, how many fields, allowed parameters, compiler."""

    name: str
    label: Any
    dimension: str
    min_fields: int
    max_fields: int | None
    params: tuple[str, ...]
    compile: Callable[[RuleSpec, Context, str], Check]
    description: Any = ""


# --- SQL helpers ------------------------------------------------------------------------------------


def quote(name: str) -> str:
    """A SQL identifier, double-quoted (any column name is safe)."""
    return '"' + str(name).replace('"', '""') + '"'


def literal(value: Any) -> str:
    """A SQL string literal (quotes doubled; backslashes are literal in DuckDB strings)."""
    return "'" + str(value).replace("'", "''") + "'"


def _text(column: str) -> str:
    """The column as text."""
    return f"CAST({quote(column)} AS VARCHAR)"


def _empty(column: str) -> str:
    """NULL or blank text."""
    return f"({quote(column)} IS NULL OR trim({_text(column)}) = '')"


def _present(column: str) -> str:
    """A value that is neither NULL nor blank."""
    return f"NOT {_empty(column)}"


def _derived(kind: str, column: str, sql: str) -> tuple[str, tuple[str, str]]:
    """A per-row value the engine computes once for every rule that uses it: (reference, (alias, SQL)).

    Rules' conditions sit inside AND/CASE, which DuckDB evaluates lazily and so never shares
    between rules (nor within one); computed once as a column of the base projection, a presence
    test or an ID number's shape costs one evaluation per row however many rules read it.
    """
    alias = f"_dq_{kind}_{hashlib.sha1(column.encode('utf-8'), usedforsecurity=False).hexdigest()[:10]}"
    return quote(alias), (alias, sql)


def _presence(column: str) -> tuple[str, tuple[str, str]]:
    """The column has a value (neither NULL nor blank), as a shared per-row value."""
    return _derived("present", column, _present(column))


def _shape(column: str) -> tuple[str, tuple[str, str]]:
    """The ID number column has 18 characters with digits where the birth date and sequence are (shared)."""
    return _derived("idshape", column, _id_shape(column))


def _encoded_birth(column: str) -> tuple[str, tuple[str, str]]:
    """The birth date written in the ID number column (NULL when it is not a date), as a shared per-row value."""
    return _derived("idbirth", column, _birth_date(_text(column)))


def _list_cte(name: str, values: Sequence[str]) -> tuple[str, str]:
    """A one-column CTE ``code`` listing code ``values`` (digits: no commas), empty list → empty table.

    One string literal split in the query: DuckDB parses a list of thousands of literals about
    twenty times slower.
    """
    if any("," in value for value in values):
        raise ValueError("code lists must not contain commas")
    if not values:
        return name, "SELECT CAST(NULL AS VARCHAR) AS code WHERE FALSE"
    return name, f"SELECT unnest(string_split({literal(','.join(values))}, ',')) AS code"


def _in_list(expr: str, values: Sequence[str]) -> str:
    """``expr IN ('a', 'b', …)`` (FALSE for an empty list)."""
    if not values:
        return "FALSE"
    return f"{expr} IN ({', '.join(literal(v) for v in values)})"


# --- Identifier validity in SQL (generated from the kernel's tables) --------------------------------


def _birth_date(expr: str) -> str:
    """The date written at positions 7–14 (YYYYMMDD) of ``expr``, NULL when it is not a date."""
    return f"CAST(try_strptime(substr({expr}, 7, 8), '%Y%m%d') AS DATE)"


def resident_id_sql(
    expr: str, regions: str, today: datetime.date, *, shape: str | None = None, birth: str | None = None
) -> str:
    """SQL: ``expr`` (text) is a valid resident ID number per :func:`dgov.kernel.validators.validate_resident_id`.

    ``regions`` is a CTE of the address codes the kernel accepts (loc.dat, every period, and the
    database's current divisions). The birth date lies between 1900-01-01 and ``today``. The
    check character's weighted sum takes the 17 digits as one integer and each digit by integer
    division, about twice as fast as 17 substrings; it comes first because most bad numbers fail
    it, and a non-numeric value only makes it NULL (the shape test then makes the whole FALSE).
    ``shape`` and ``birth`` may name already computed values of ``expr``'s 18-character shape
    test and encoded birth date (the engine's shared per-row values).
    """
    from dgov.kernel.validators import _ID_CHECK, _ID_WEIGHTS

    number = f"TRY_CAST(substr({expr}, 1, 17) AS BIGINT)"
    total = " + ".join(f"(({number} // {10 ** (16 - i)}) % 10) * {w}" for i, w in enumerate(_ID_WEIGHTS))
    shape = shape or f"regexp_full_match({expr}, '[0-9]{{17}}[0-9X]')"
    birth = birth or _birth_date(expr)
    return (
        f"(substr({literal(_ID_CHECK)}, (({total}) % 11) + 1, 1) = substr({expr}, 18, 1)"
        f" AND length({expr}) = 18 AND {shape}"
        f" AND substr({expr}, 1, 6) IN (SELECT code FROM {regions})"
        f" AND {birth} BETWEEN DATE '1900-01-01' AND DATE {literal(today.isoformat())})"
    )


def uscc_sql(expr: str, provinces: Sequence[str]) -> str:
    """SQL: ``expr`` (text) is a valid USCC per :func:`dgov.kernel.validators.validate_uscc`."""
    from dgov.kernel.validators import _ORG_WEIGHTS, _USCC_WEIGHTS, USCC_ALPHABET, USCC_AUTHORITIES

    pairs = sorted(authority + kind for authority, (_n, kinds) in USCC_AUTHORITIES.items() for kind in kinds)
    alphabet = literal(USCC_ALPHABET)
    charset = "[" + USCC_ALPHABET + "]"  # digits and capitals only: nothing to escape
    org_terms = []
    for offset, weight in enumerate(_ORG_WEIGHTS):
        char = f"substr({expr}, {9 + offset}, 1)"
        value = f"(CASE WHEN {char} BETWEEN '0' AND '9' THEN ascii({char}) - 48 ELSE ascii({char}) - 55 END)"
        org_terms.append(f"{value} * {weight}")
    org_rest = f"(11 - (({' + '.join(org_terms)}) % 11))"
    org_check = f"(CASE {org_rest} WHEN 10 THEN 'X' WHEN 11 THEN '0' ELSE CAST({org_rest} AS VARCHAR) END)"
    terms = " + ".join(
        f"(instr({alphabet}, substr({expr}, {i + 1}, 1)) - 1) * {w}" for i, w in enumerate(_USCC_WEIGHTS)
    )
    check = f"substr({alphabet}, ((31 - (({terms}) % 31)) % 31) + 1, 1)"
    return (
        f"(length({expr}) = 18 AND regexp_full_match({expr}, {literal(charset + '{18}')})"
        f" AND {_in_list(f'substr({expr}, 1, 2)', pairs)}"
        f" AND regexp_full_match(substr({expr}, 3, 6), '[0-9]{{6}}')"
        f" AND (substr({expr}, 3, 2) = '10' OR {_in_list(f'substr({expr}, 3, 2)', provinces)})"
        f" AND {org_check} = substr({expr}, 17, 1)"
        f" AND {check} = substr({expr}, 18, 1))"
    )


def division_code_sql(expr: str, current: str, exact: str = "") -> str:
    """SQL: ``expr`` is a valid division code per :func:`dgov.kernel.validators.validate_division_code`.

    ``current`` is a CTE of the 6-digit codes in force; with ``exact`` (a CTE of every current
    division of the platform) a 9- or 12-digit code must itself exist there.
    """
    sql = (
        f"(regexp_full_match({expr}, '[0-9]{{6}}([0-9]{{3}}){{0,2}}') AND substr({expr}, 1, 6) <> '000000'"
        f" AND NOT (length({expr}) >= 9 AND substr({expr}, 7, 3) = '000')"
        f" AND NOT (length({expr}) = 12 AND substr({expr}, 10, 3) = '000')"
        f" AND substr({expr}, 1, 6) IN (SELECT code FROM {current})"
    )
    if exact:
        sql += f" AND (length({expr}) = 6 OR {expr} IN (SELECT code FROM {exact}))"
    return sql + ")"


# --- Code lists -------------------------------------------------------------------------------------


def _database_divisions() -> frozenset[str]:
    """Current division codes in the database (empty without a database)."""
    try:
        from dgov.kernel.services.divisions import known_division_codes

        return known_division_codes()
    except Exception:  # noqa: BLE001 - a bench or script without a database: loc.dat alone decides
        return frozenset()


@lru_cache(maxsize=1)
def _loc_codes() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(every loc.dat code, loc.dat codes in force, 2-digit province prefixes) — read once."""
    from dgov.kernel.validators import loc_entries

    entries = loc_entries()
    every = tuple(sorted(entries))
    current = tuple(sorted(code for code, entry in entries.items() if entry.current_name is not None))
    provinces = tuple(sorted({code[:2] for code in entries if code.endswith("0000")}))
    return every, current, provinces


def default_id_regions() -> list[str]:
    """Address codes an ID number may carry: any loc.dat code, or a current division in the database."""
    return sorted(set(_loc_codes()[0]) | {code for code in _database_divisions() if len(code) == 6})


def default_current_divisions() -> list[str]:
    """6-digit codes in force: loc.dat's current codes and the database's current divisions."""
    return sorted(set(_loc_codes()[1]) | {code for code in _database_divisions() if len(code) == 6})


def default_all_divisions() -> list[str]:
    """Every current division code of the platform's database (any length)."""
    return sorted(_database_divisions())


# --- Parameter checking -----------------------------------------------------------------------------


def _check_keys(spec: RuleSpec, allowed: Sequence[str]) -> None:
    """Refuse unknown parameter keys (a typo must not silently weaken a rule)."""
    unknown = sorted(set(spec.params) - set(allowed))
    if unknown:
        raise RuleError(_("未知的参数 %(keys)s") % {"keys": "、".join(unknown)})


def _number(value: Any, name: str) -> float:
    """A finite number parameter."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RuleError(_("参数 %(name)s 应为数值") % {"name": name})
    return float(value)


def _non_negative_int(value: Any, name: str) -> int:
    """A non-negative integer parameter."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RuleError(_("参数 %(name)s 应为非负整数") % {"name": name})
    return value


def _string_list(value: Any, name: str) -> tuple[str, ...]:
    """A non-empty list of strings (numbers are taken as their text)."""
    if not isinstance(value, list | tuple) or not value:
        raise RuleError(_("参数 %(name)s 应为非空列表") % {"name": name})
    out = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise RuleError(_("参数 %(name)s 的每一项应为字符串或数值") % {"name": name})
        out.append(str(item))
    return tuple(out)


def _column(ctx: Context, name: str) -> Column:
    """The column named ``name`` (RuleError naming it when the table has no such column)."""
    if ctx.columns is None:
        return Column(name)
    column = ctx.columns.get(name)
    if column is None:
        raise RuleError(_("字段“%(field)s”不存在") % {"field": name})
    return column


def _single(spec: RuleSpec, ctx: Context) -> Column:
    """The one field of a single-field rule."""
    return _column(ctx, spec.fields[0])


# --- Compilers --------------------------------------------------------------------------------------


def _compile_not_null(spec: RuleSpec, ctx: Context, ns: str) -> Check:
    """完整性: every listed field has a value (not NULL, not blank)."""
    _check_keys(spec, ())
    for name in spec.fields:
        _column(ctx, name)
    presences = [_presence(name) for name in spec.fields]
    fails = " OR ".join(f"NOT {ref}" for ref, _derived_value in presences)
    return Check(
        spec.code,
        applies="TRUE",
        fails=f"({fails})",
        columns=spec.fields,
        derived=tuple(derived for _ref, derived in presences),
    )


def _compile_unique(spec: RuleSpec, ctx: Context, ns: str) -> Check:
    """准确性: no two rows share the value (or the combination of values) of the fields.

    The duplicated keys are found by one GROUP BY over the table and the rows marked by a semi-join:
    two to three times faster in DuckDB than a window count over mostly unique values.
    """
    _check_keys(spec, ())
    for name in spec.fields:
        _column(ctx, name)
    if len(spec.fields) == 1:
        key = _text(spec.fields[0])
    else:
        key = "concat_ws(chr(31), " + ", ".join(_text(name) for name in spec.fields) + ")"
    present = " AND ".join(f"({_present(name)})" for name in spec.fields)
    presences = [_presence(name) for name in spec.fields]
    duplicates = f"{ns}_dup"
    return Check(
        spec.code,
        applies=" AND ".join(ref for ref, _derived_value in presences),
        fails=f"{key} IN (SELECT k FROM {quote(duplicates)})",
        columns=spec.fields,
        derived=tuple(derived for _ref, derived in presences),
        ctes=((duplicates, f"SELECT {key} AS k FROM {SOURCE} WHERE {present} GROUP BY 1 HAVING count(*) > 1"),),
    )


def _compile_pattern(spec: RuleSpec, ctx: Context, ns: str) -> Check:
    """规范性: the value matches a regular expression in full (RE2 syntax, as DuckDB runs it)."""
    _check_keys(spec, ("pattern",))
    column = _single(spec, ctx)
    pattern = spec.params.get("pattern")
    if not isinstance(pattern, str) or not pattern:
        raise RuleError(_("pattern 类型须给出参数 pattern（正则表达式）"))
    try:
        re.compile(pattern)
    except re.error as exc:
        raise RuleError(_("pattern 不是有效的正则表达式：%(error)s") % {"error": exc}) from None
    return Check(
        spec.code,
        applies=_presence(column.name)[0],
        derived=(_presence(column.name)[1],),
        fails=f"NOT regexp_full_match({_text(column.name)}, {literal(pattern)})",
        columns=spec.fields,
    )


def _compile_in_set(spec: RuleSpec, ctx: Context, ns: str) -> Check:
    """规范性: the value is one of a code list (``values``; an enum field's choices by default)."""
    _check_keys(spec, ("values",))
    column = _single(spec, ctx)
    if "values" in spec.params:
        values = _string_list(spec.params["values"], "values")
    elif column.choices:
        values = column.choices
    else:
        raise RuleError(_("in_set 类型须给出参数 values（代码表），或用于枚举字段"))
    return Check(
        spec.code,
        applies=_presence(column.name)[0],
        derived=(_presence(column.name)[1],),
        fails=f"NOT {_in_list(_text(column.name), values)}",
        columns=spec.fields,
    )


def _bound(value: Any, name: str, ctx: Context, dates: bool) -> tuple[str, bool]:
    """A range bound as SQL and whether it is a date (ISO text or ``today``)."""
    if isinstance(value, str) and (value == "today" or _DATE.match(value)):
        if value == "today":
            day = ctx.today
        else:
            try:
                day = datetime.date.fromisoformat(value)
            except ValueError:
                raise RuleError(_("参数 %(name)s 不是有效日期") % {"name": name}) from None
        return f"DATE {literal(day.isoformat())}", True
    if dates:
        raise RuleError(_("日期字段的参数 %(name)s 应为 YYYY-MM-DD 或 today") % {"name": name})
    return repr(_number(value, name)), False


def _compile_range(spec: RuleSpec, ctx: Context, ns: str) -> Check:
    """规范性: the value lies within ``min``/``max`` (numbers, or dates as YYYY-MM-DD / ``today``)."""
    _check_keys(spec, ("min", "max"))
    column = _single(spec, ctx)
    if "min" not in spec.params and "max" not in spec.params:
        raise RuleError(_("range 类型须给出参数 min 或 max"))
    dates = column.type in ("date", "datetime")
    bounds = {key: _bound(spec.params[key], key, ctx, dates) for key in ("min", "max") if key in spec.params}
    kinds = {is_date for _sql, is_date in bounds.values()}
    if len(kinds) > 1:
        raise RuleError(_("min 与 max 应同为数值或同为日期"))
    is_date = kinds.pop()
    value = f"TRY_CAST({quote(column.name)} AS DATE)" if is_date else f"TRY_CAST({quote(column.name)} AS DOUBLE)"
    if is_date and column.type == "datetime":
        value = f"CAST(TRY_CAST({quote(column.name)} AS TIMESTAMPTZ) AS DATE)"
    conditions = [f"{value} IS NOT NULL"]
    if "min" in bounds:
        conditions.append(f"{value} >= {bounds['min'][0]}")
    if "max" in bounds:
        conditions.append(f"{value} <= {bounds['max'][0]}")
    if "min" in bounds and "max" in bounds and spec.params["min"] != "today" and spec.params["max"] != "today":
        low, high = spec.params["min"], spec.params["max"]
        if (str(low) > str(high)) if is_date else (float(low) > float(high)):
            raise RuleError(_("min 大于 max"))
    present, derived = _presence(column.name)
    return Check(
        spec.code,
        applies=present,
        fails=f"NOT ({' AND '.join(conditions)})",
        columns=spec.fields,
        derived=(derived,),
    )


def _compile_length(spec: RuleSpec, ctx: Context, ns: str) -> Check:
    """规范性: the text length (characters) lies within ``min``/``max``."""
    _check_keys(spec, ("min", "max"))
    column = _single(spec, ctx)
    if "min" not in spec.params and "max" not in spec.params:
        raise RuleError(_("length 类型须给出参数 min 或 max"))
    low = _non_negative_int(spec.params["min"], "min") if "min" in spec.params else None
    high = _non_negative_int(spec.params["max"], "max") if "max" in spec.params else None
    if low is not None and high is not None and low > high:
        raise RuleError(_("min 大于 max"))
    length = f"length({_text(column.name)})"
    conditions = []
    if low is not None:
        conditions.append(f"{length} >= {low}")
    if high is not None:
        conditions.append(f"{length} <= {high}")
    present, derived = _presence(column.name)
    return Check(
        spec.code,
        applies=present,
        fails=f"NOT ({' AND '.join(conditions)})",
        columns=spec.fields,
        derived=(derived,),
    )


def _regions_cte(ctx: Context) -> tuple[str, str]:
    """The CTE of address codes an ID number may carry."""
    return _list_cte("_dq_id_regions", (ctx.id_regions or default_id_regions)())


def _compile_id_number(spec: RuleSpec, ctx: Context, ns: str) -> Check:
    """规范性: a resident ID number valid per GB 11643 (length, birth date, address code, check character)."""
    _check_keys(spec, ())
    column = _single(spec, ctx)
    present, shape, birth = _presence(column.name), _shape(column.name), _encoded_birth(column.name)
    valid = resident_id_sql(_text(column.name), "_dq_id_regions", ctx.today, shape=shape[0], birth=birth[0])
    return Check(
        spec.code,
        applies=present[0],
        derived=(present[1], shape[1], birth[1]),
        fails=f"NOT {valid}",
        columns=spec.fields,
        ctes=(_regions_cte(ctx),),
    )


def _compile_uscc(spec: RuleSpec, ctx: Context, ns: str) -> Check:
    """规范性: a unified social credit code valid per GB 32100 (authority, type, region, both check characters)."""
    _check_keys(spec, ())
    column = _single(spec, ctx)
    return Check(
        spec.code,
        applies=_presence(column.name)[0],
        derived=(_presence(column.name)[1],),
        fails=f"NOT {uscc_sql(_text(column.name), _loc_codes()[2])}",
        columns=spec.fields,
    )


def _compile_division_code(spec: RuleSpec, ctx: Context, ns: str) -> Check:
    """规范性: a GB/T 2260 division code in force (``exact``: a 9/12-digit code must exist in the platform)."""
    _check_keys(spec, ("exact",))
    column = _single(spec, ctx)
    exact = spec.params.get("exact", False)
    if not isinstance(exact, bool):
        raise RuleError(_("参数 exact 应为 true 或 false"))
    ctes = [_list_cte("_dq_current_divisions", (ctx.current_divisions or default_current_divisions)())]
    if exact:
        ctes.append(_list_cte("_dq_all_divisions", (ctx.all_divisions or default_all_divisions)()))
    sql = division_code_sql(_text(column.name), "_dq_current_divisions", "_dq_all_divisions" if exact else "")
    present, derived = _presence(column.name)
    return Check(
        spec.code, applies=present, fails=f"NOT {sql}", columns=spec.fields, ctes=tuple(ctes), derived=(derived,)
    )


def _id_shape(column: str) -> str:
    """The ID number column has 18 characters with digits where the birth date and sequence are."""
    return f"regexp_full_match({_text(column)}, '[0-9]{{17}}[0-9X]')"


def _compile_id_birth_date(spec: RuleSpec, ctx: Context, ns: str) -> Check:
    """一致性: the birth date field equals the birth date in the ID number (fields: ID number, birth date)."""
    _check_keys(spec, ())
    id_col, birth = (_column(ctx, name) for name in spec.fields)
    present, other, shape = _presence(id_col.name), _presence(birth.name), _shape(id_col.name)
    encoded, encoded_derived = _encoded_birth(id_col.name)
    value = f"TRY_CAST({quote(birth.name)} AS DATE)"
    if birth.type == "datetime":
        value = f"CAST(TRY_CAST({quote(birth.name)} AS TIMESTAMPTZ) AS DATE)"
    return Check(
        spec.code,
        applies=f"{present[0]} AND {other[0]} AND {shape[0]}",
        derived=(present[1], other[1], shape[1], encoded_derived),
        fails=f"{value} IS DISTINCT FROM {encoded}",
        columns=spec.fields,
    )


def _compile_id_sex(spec: RuleSpec, ctx: Context, ns: str) -> Check:
    """一致性: the sex field agrees with the ID number's 17th digit (odd male, even female)."""
    _check_keys(spec, ("male", "female"))
    id_col, sex = (_column(ctx, name) for name in spec.fields)
    present, other, shape = _presence(id_col.name), _presence(sex.name), _shape(id_col.name)
    male = _string_list(spec.params["male"], "male") if "male" in spec.params else DEFAULT_SEX_CODES["male"]
    female = _string_list(spec.params["female"], "female") if "female" in spec.params else DEFAULT_SEX_CODES["female"]
    if set(male) & set(female):
        raise RuleError(_("male 与 female 的代码不能重复"))
    odd = f"(TRY_CAST(substr({_text(id_col.name)}, 17, 1) AS INTEGER) % 2 = 1)"
    value = f"trim({_text(sex.name)})"
    return Check(
        spec.code,
        applies=f"{present[0]} AND {other[0]} AND {shape[0]}",
        derived=(present[1], other[1], shape[1]),
        fails=f"NOT (CASE WHEN {odd} THEN {_in_list(value, male)} ELSE {_in_list(value, female)} END)",
        columns=spec.fields,
    )


def _compile_id_region(spec: RuleSpec, ctx: Context, ns: str) -> Check:
    """一致性: the division field lies in the ID number's address region (``level`` province/city/county)."""
    _check_keys(spec, ("level",))
    id_col, division = (_column(ctx, name) for name in spec.fields)
    present, other, shape = _presence(id_col.name), _presence(division.name), _shape(id_col.name)
    level = spec.params.get("level", "city")
    if level not in REGION_DIGITS:
        raise RuleError(_("参数 level 应为 province、city 或 county"))
    digits = REGION_DIGITS[level]
    return Check(
        spec.code,
        applies=f"{present[0]} AND {other[0]} AND {shape[0]}",
        derived=(present[1], other[1], shape[1]),
        fails=f"substr({_text(id_col.name)}, 1, {digits}) <> substr({_text(division.name)}, 1, {digits})",
        columns=spec.fields,
        params={"level": level},
    )


def _allowance(spec: RuleSpec, ctx: Context) -> tuple[float, str]:
    """(days a value may age, the cycle it came from) of a freshness rule."""
    grace = _number(spec.params.get("grace_days", 0), "grace_days")
    if grace < 0:
        raise RuleError(_("参数 grace_days 不能为负"))
    if "max_age_days" in spec.params:
        days = _number(spec.params["max_age_days"], "max_age_days")
        if days <= 0:
            raise RuleError(_("参数 max_age_days 应大于 0"))
        return days + grace, ""
    cycle = spec.params.get("cycle") or ctx.update_cycle
    if not cycle:
        raise RuleError(_("freshness 类型须给出 cycle 或 max_age_days（或针对声明了更新周期的信息资源）"))
    if cycle == "irregular":
        raise RuleError(_("更新周期为“不定期”，无法评估时效性，请给出 max_age_days"))
    if cycle not in CYCLE_DAYS:
        raise RuleError(_("参数 cycle 应为 %(cycles)s 之一") % {"cycles": "、".join(CYCLE_DAYS)})
    return CYCLE_DAYS[cycle] + grace, cycle


def _compile_freshness(spec: RuleSpec, ctx: Context, ns: str) -> Check:
    """时效性: the table (or each row, ``per_row``) was updated within the declared cycle.

    The time read is the field given (a date or datetime), else the record's last update. Table
    mode: one check, failed when the newest update is older than the allowance.
    """
    _check_keys(spec, ("cycle", "max_age_days", "grace_days", "per_row"))
    allowance, cycle = _allowance(spec, ctx)
    per_row = spec.params.get("per_row", False)
    if not isinstance(per_row, bool):
        raise RuleError(_("参数 per_row 应为 true 或 false"))
    name = spec.fields[0] if spec.fields else ctx.updated_column
    if spec.fields:
        _column(ctx, name)
    moment = f"TRY_CAST({quote(name)} AS TIMESTAMPTZ)"
    limit = ctx.now - datetime.timedelta(days=allowance)
    limit_sql = f"TIMESTAMPTZ {literal(limit.isoformat())}"
    params = {"allowed_days": allowance, "cycle": cycle}
    if per_row:
        return Check(
            spec.code,
            applies=f"{quote(name)} IS NOT NULL",
            fails=f"{moment} < {limit_sql}",
            columns=(name,),
            params=params,
        )
    now = ctx.now

    def judge(newest: Any) -> tuple[int, int, list[dict]]:
        if newest is None:
            return 0, 0, []
        if isinstance(newest, datetime.datetime) and newest.tzinfo is None:
            newest = newest.replace(tzinfo=datetime.UTC)
        lag = (now - newest).total_seconds() / 86400
        failed = int(lag > allowance)
        sample = {
            "key": "",
            "values": {
                "last_updated": newest.isoformat(),
                "lag_days": round(lag, 2),
                "allowed_days": allowance,
            },
        }
        return 1, failed, [sample] if failed else []

    return Check(spec.code, aggregate=f"max({moment})", judge=judge, params=params)


def _compile_reference(spec: RuleSpec, ctx: Context, ns: str) -> Check:
    """一致性: the value exists in another registry's field (``registry``, ``field``; ``_uid`` for record ids)."""
    _check_keys(spec, ("registry", "field"))
    column = _single(spec, ctx)
    registry = spec.params.get("registry")
    target = spec.params.get("field", "_uid" if column.type == "reference" else "")
    if not isinstance(registry, str) or not registry:
        raise RuleError(_("reference 类型须给出参数 registry（被引用的信息库编码）"))
    if not isinstance(target, str) or not target:
        raise RuleError(_("reference 类型须给出参数 field（被引用信息库的字段）"))
    if ctx.reference is None:
        raise RuleError(_("当前环境无法加载被引用的信息库"))
    table = ctx.reference(registry, target)
    return Check(
        spec.code,
        applies=_presence(column.name)[0],
        derived=(_presence(column.name)[1],),
        fails=f"{_text(column.name)} NOT IN (SELECT v FROM {quote(table)})",
        columns=spec.fields,
        params={"registry": registry, "field": target},
    )


def _compile_accessible(spec: RuleSpec, ctx: Context, ns: str) -> Check:
    """可访问性: the resource is published and its exchange service answers (served vs failed calls)."""
    _check_keys(spec, ("days",))
    days = spec.params.get("days", 30)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 366:
        raise RuleError(_("参数 days 应为 1–366 的整数"))
    return Check(spec.code, external=True, params={"days": days})


def validate_select(sql: str) -> str:
    """The custom SQL as one SELECT statement (trailing semicolons removed); RuleError otherwise."""
    import duckdb

    text = (sql or "").strip().rstrip(";").strip()
    if not text:
        raise RuleError(_("sql 类型须给出 SQL 语句"))
    try:
        statements = duckdb.extract_statements(text)
    except duckdb.Error as exc:
        raise RuleError(_("SQL 无法解析：%(error)s") % {"error": str(exc).splitlines()[0]}) from None
    if len(statements) != 1:
        raise RuleError(_("SQL 只能是一条语句"))
    if statements[0].type != duckdb.StatementType.SELECT:
        raise RuleError(_("SQL 只能是 SELECT 查询（只读）"))
    return text


def _compile_sql(spec: RuleSpec, ctx: Context, ns: str) -> Check:
    """Custom SQL (administrators): a SELECT over ``records`` returning the failing rows' ``_uid``."""
    _check_keys(spec, ())
    for name in spec.fields:
        _column(ctx, name)
    text = validate_select(spec.sql)
    alias = f"{ns}_sql"
    subquery = f"SELECT DISTINCT CAST(_dq_custom._uid AS VARCHAR) AS k FROM ({text}) AS _dq_custom"
    return Check(
        spec.code,
        applies="TRUE",
        fails=f"{quote(alias)} IS NOT NULL",
        columns=spec.fields,
        joins=((alias, subquery),),
    )


RULE_TYPES: dict[str, RuleType] = {
    t.name: t
    for t in (
        RuleType("not_null", gettext_lazy("非空"), "completeness", 1, None, (), _compile_not_null),
        RuleType("unique", gettext_lazy("唯一（重复记录）"), "accuracy", 1, None, (), _compile_unique),
        RuleType("pattern", gettext_lazy("格式（正则）"), "conformity", 1, 1, ("pattern",), _compile_pattern),
        RuleType("in_set", gettext_lazy("代码表"), "conformity", 1, 1, ("values",), _compile_in_set),
        RuleType("range", gettext_lazy("取值范围"), "conformity", 1, 1, ("min", "max"), _compile_range),
        RuleType("length", gettext_lazy("长度"), "conformity", 1, 1, ("min", "max"), _compile_length),
        RuleType("id_number", gettext_lazy("身份证号码校验（GB 11643）"), "conformity", 1, 1, (), _compile_id_number),
        RuleType("uscc", gettext_lazy("统一社会信用代码校验（GB 32100）"), "conformity", 1, 1, (), _compile_uscc),
        RuleType(
            "division_code", gettext_lazy("行政区划代码有效"), "conformity", 1, 1, ("exact",), _compile_division_code
        ),
        RuleType(
            "id_birth_date", gettext_lazy("出生日期与身份证号码一致"), "consistency", 2, 2, (), _compile_id_birth_date
        ),
        RuleType(
            "id_sex", gettext_lazy("性别与身份证号码一致"), "consistency", 2, 2, ("male", "female"), _compile_id_sex
        ),
        RuleType(
            "id_region", gettext_lazy("住址区划与身份证地址码一致"), "consistency", 2, 2, ("level",), _compile_id_region
        ),
        RuleType(
            "freshness",
            gettext_lazy("更新及时（更新周期）"),
            "timeliness",
            0,
            1,
            ("cycle", "max_age_days", "grace_days", "per_row"),
            _compile_freshness,
        ),
        RuleType(
            "reference",
            gettext_lazy("引用存在（跨库）"),
            "consistency",
            1,
            1,
            ("registry", "field"),
            _compile_reference,
        ),
        RuleType("accessible", gettext_lazy("资源可访问"), "accessibility", 0, 0, ("days",), _compile_accessible),
        RuleType("sql", gettext_lazy("自定义 SQL"), "", 0, None, (), _compile_sql),
    )
}
ALIASES = {"required": "not_null", "duplicates": "unique", "regex": "pattern", "code_list": "in_set"}


def canonical_type(name: str) -> str:
    """The rule type's canonical name (``required`` → ``not_null`` …); unknown names unchanged."""
    return ALIASES.get(name, name)


def namespace(code: str) -> str:
    """A short identifier prefix unique to a rule code, for the columns its check adds."""
    return "_dq" + hashlib.sha1(code.encode("utf-8"), usedforsecurity=False).hexdigest()[:10]


def compile_rule(spec: RuleSpec, ctx: Context) -> Check:
    """Compile a rule into a :class:`Check`; RuleError (Chinese messages) for anything wrong with it."""
    rule_type = RULE_TYPES.get(canonical_type(spec.type))
    if rule_type is None:
        raise RuleError(
            _("未知的规则类型“%(type)s”（可用：%(types)s）") % {"type": spec.type, "types": "、".join(RULE_TYPES)}
        )
    count = len(spec.fields)
    if count < rule_type.min_fields or (rule_type.max_fields is not None and count > rule_type.max_fields):
        if rule_type.min_fields == rule_type.max_fields:
            raise RuleError(
                _("%(type)s 类型须指定 %(n)d 个字段（实际 %(count)d 个）")
                % {"type": rule_type.name, "n": rule_type.min_fields, "count": count}
            )
        raise RuleError(
            _("%(type)s 类型的字段数不符合要求（实际 %(count)d 个）") % {"type": rule_type.name, "count": count}
        )
    if not isinstance(spec.params, Mapping):
        raise RuleError(_("params 应为对象"))
    return rule_type.compile(spec, ctx, namespace(spec.code))
