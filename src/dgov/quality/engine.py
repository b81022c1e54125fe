"""The evaluation engine (评估引擎): every rule of a table in one DuckDB query.

``evaluate(source, rules)`` takes a DuckDB relation (or a table name and its connection) and rules
(:class:`~dgov.quality.rules.RuleSpec` or already compiled :class:`~dgov.quality.rules.Check`) and
answers, per rule, how many rows were checked, how many failed and up to ``samples`` failing rows
(the key and the values of the rule's fields, as text, the first ones by ``order``). It knows
nothing of Django models: the platform's runner (:mod:`dgov.quality.services`) loads a registry
into DuckDB, calls it, masks the samples and stores the results; a benchmark can call it directly
on any table::

    con = duckdb.connect()
    con.execute("CREATE TABLE persons AS FROM 'persons.parquet'")
    result = evaluate(con.table("persons"), [RuleSpec("r1", "id_number", ("id_number",))])
    result.outcomes["r1"].failed

The query has the shape::

    WITH <shared code lists>,
         _dq_base AS (SELECT r.*, <shared per-row values>, <window columns>, <custom SQL marks>
                      FROM records r LEFT JOIN …),
         _dq_flags AS (SELECT *, <applies_i> AS a_i, coalesce(<fails_i>, TRUE) AS x_i FROM _dq_base)
    SELECT count(*), count_if(a_i), count_if(x_i) FILTER (WHERE a_i),
           min(<order>, N) FILTER (WHERE a_i::INTEGER * x_i::INTEGER = 1), …, <table-level aggregates>
    FROM _dq_flags

so the table is scanned once whatever the number of rules (custom SQL, duplicate and reference
checks read their own inputs besides). The pass keeps only the order keys of each rule's first N
failing rows; the sample values are then fetched with one small filtered read of those rows —
building a sample value for every failing row would double the cost of a rule that fails often.
A failing cast counts as a failure of the rule, never as an error of the run.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dgov.quality.rules import SOURCE, Check, Column, Context, RuleSpec, compile_rule, quote

__all__ = ["EngineError", "Evaluation", "Outcome", "build_query", "columns_of", "evaluate"]


class EngineError(Exception):
    """The query could not run (a source that cannot be read, a rule DuckDB refuses); the message says why."""


@dataclass
class Outcome:
    """One rule's figures: rows checked, rows failed, sample failing rows ``{"key", "values"}``."""

    checked: int = 0
    failed: int = 0
    samples: list[dict] = field(default_factory=list)

    @property
    def pass_rate(self) -> float | None:
        """Passed / checked as a percentage, or None when nothing was checked."""
        if not self.checked:
            return None
        return 100.0 * (self.checked - self.failed) / self.checked


@dataclass
class Evaluation:
    """The answer of :func:`evaluate`: row count, outcomes by rule code, seconds, the SQL that ran."""

    rows: int
    outcomes: dict[str, Outcome]
    seconds: float
    sql: str = ""


_DUCK_TYPES = (
    ("TIMESTAMP", "datetime"),
    ("DATE", "date"),
    ("BIGINT", "integer"),
    ("INTEGER", "integer"),
    ("SMALLINT", "integer"),
    ("TINYINT", "integer"),
    ("HUGEINT", "integer"),
    ("DECIMAL", "decimal"),
    ("DOUBLE", "decimal"),
    ("FLOAT", "decimal"),
    ("BOOLEAN", "boolean"),
)


def columns_of(relation) -> dict[str, Column]:
    """The relation's columns as :class:`Column` (types mapped from DuckDB's, text otherwise)."""
    out = {}
    for name, duck_type in zip(relation.columns, relation.types, strict=True):
        text = str(duck_type).upper()
        kind = next((ours for prefix, ours in _DUCK_TYPES if text.startswith(prefix)), "string")
        out[name] = Column(name, kind)
    return out


def build_query(
    checks: Sequence[Check], *, key: str, order: str, samples: int
) -> tuple[str, list[tuple[str, int, Check]]]:
    """The single SQL statement for ``checks`` and the layout of its one result row.

    The layout lists ``("row", index, check)`` for row-level checks (3 columns each when samples
    are kept, else 2) and ``("table", index, check)`` for table-level aggregates (1 column).
    """
    ctes: dict[str, str] = {}
    base_columns = ["_dq_r.*"]
    joins = []
    flags = []
    selects = ["count(*)"]
    layout: list[tuple[str, int, Check]] = []
    derived: dict[str, str] = {}
    for check in checks:
        for name, sql in check.ctes:
            ctes.setdefault(name, sql)
        for alias, sql in check.derived:
            if alias not in derived:
                derived[alias] = sql
                base_columns.append(f"{sql} AS {quote(alias)}")
        for alias, sql in check.windows:
            base_columns.append(f"{sql} AS {quote(alias)}")
        for alias, sql in check.joins:
            joins.append(
                f"LEFT JOIN ({sql}) AS {quote(alias + '_j')} "
                f"ON CAST(_dq_r.{quote(key)} AS VARCHAR) = {quote(alias + '_j')}.k"
            )
            base_columns.append(f"{quote(alias + '_j')}.k AS {quote(alias)}")
    index = 0
    for check in checks:
        if check.external:
            continue
        if check.aggregate:
            selects.append(f"{check.aggregate} AS _dq_g{index}")
            layout.append(("table", index, check))
            index += 1
            continue
        # ``fails`` is a column of its own, combined with ``applies`` by FILTER and arithmetic, never by
        # AND or CASE: DuckDB inlines the column into such an expression and then evaluates it lazily,
        # without sharing its repeated sub-expressions (an ID checksum's digits), three times slower.
        flags.append(f"({check.applies}) AS _dq_a{index}")
        flags.append(f"coalesce(({check.fails}), TRUE) AS _dq_x{index}")
        selects.append(f"count_if(_dq_a{index})")
        selects.append(f"count_if(_dq_x{index}) FILTER (WHERE _dq_a{index})")
        if samples > 0:
            # Only the order keys of the first failing rows: a bounded heap of scalars per rule. Their
            # values are fetched afterwards by key (:func:`_sample_rows`), never built for every row.
            selects.append(
                f"min({quote(order)}, {int(samples)}) FILTER (WHERE _dq_a{index}::INTEGER * _dq_x{index}::INTEGER = 1)"
            )
        layout.append(("row", index, check))
        index += 1
    parts = [f"{quote(name)} AS ({sql})" for name, sql in ctes.items()]
    parts.append(f"_dq_base AS (SELECT {', '.join(base_columns)} FROM {SOURCE} AS _dq_r {' '.join(joins)})")
    parts.append(f"_dq_flags AS (SELECT *{''.join(', ' + flag for flag in flags)} FROM _dq_base)")
    sql = f"WITH {', '.join(parts)} SELECT {', '.join(selects)} FROM _dq_flags"
    return sql, layout


def _relation(source, connection):
    """The DuckDB relation to evaluate: ``source`` itself, or the table it names on ``connection``."""
    if isinstance(source, str):
        if connection is None:
            raise ValueError("a table name needs its DuckDB connection")
        return connection.table(source)
    return source


def _error_text(exc: Exception) -> str:
    """A DuckDB error as one readable paragraph (its first lines)."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return " ".join(lines[:3])[:2000]


def evaluate(
    source,
    rules: Iterable[Check | RuleSpec],
    *,
    connection=None,
    context: Context | None = None,
    samples: int = 20,
    key: str = "_uid",
    order: str | None = None,
    extra: Sequence[str] = (),
) -> Evaluation:
    """Evaluate ``rules`` over ``source`` (a DuckDB relation, or a table name with ``connection``) in one query.

    Rules given as :class:`RuleSpec` are compiled with ``context`` (default: the relation's columns,
    now). ``key`` identifies rows in samples (and joins custom SQL results); samples are the first
    failing rows by ``order`` (default ``key``), with the values of the rule's columns and of
    ``extra`` columns. External checks (``accessible``) are left out: they are not about rows.
    Raises :class:`EngineError` when DuckDB refuses the query or cannot read the source, and
    :class:`~dgov.quality.rules.RuleError` for a rule that does not compile.
    """
    import duckdb

    relation = _relation(source, connection)
    checks = []
    for rule in rules:
        if isinstance(rule, Check):
            checks.append(rule)
            continue
        if context is None:
            context = Context(columns=columns_of(relation), key=key)
        checks.append(compile_rule(rule, context))
    codes = [check.code for check in checks]
    if len(set(codes)) != len(codes):
        raise ValueError("rule codes must be unique within one evaluation")
    order = order or key
    sql, layout = build_query(checks, key=key, order=order, samples=samples)
    started = time.perf_counter()
    try:
        row = relation.query(SOURCE, sql).fetchall()[0]
    except duckdb.Error as exc:
        raise EngineError(_error_text(exc)) from exc
    outcomes: dict[str, Outcome] = {}
    wanted: dict[str, list] = {}
    position = 1
    for kind, _index, check in layout:
        if kind == "table":
            checked, failed, found = check.judge(row[position]) if check.judge else (0, 0, [])
            outcomes[check.code] = Outcome(checked, failed, found)
            position += 1
            continue
        checked, failed = int(row[position] or 0), int(row[position + 1] or 0)
        position += 2
        if samples > 0:
            wanted[check.code] = list(row[position] or [])
            position += 1
        outcomes[check.code] = Outcome(checked, failed)
    if any(wanted.values()):
        columns = [name for check in checks for name in (*check.columns, *extra)]
        rows = _sample_rows(relation, key=key, order=order, columns=columns, keys=wanted)
        for _kind, _index, check in layout:
            names = (*check.columns, *extra)
            for value in wanted.get(check.code, ()):
                found_row = rows.get(value)
                if found_row is not None:
                    outcomes[check.code].samples.append(
                        {"key": found_row[key], "values": {name: found_row[name] for name in names}}
                    )
    seconds = time.perf_counter() - started
    return Evaluation(rows=int(row[0] or 0), outcomes=outcomes, seconds=seconds, sql=sql)


def _sql_value(value: Any) -> str:
    """A sample's order key as a SQL literal (numbers as they are, anything else as text)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "'" + str(value).replace("'", "''") + "'"
    return repr(value)


def _sample_rows(relation, *, key: str, order: str, columns: Sequence[str], keys: dict[str, list]) -> dict:
    """The sample rows by order key: the key and the wanted columns as text (one small filtered read)."""
    import duckdb

    values = list(dict.fromkeys(v for found in keys.values() for v in found))
    names = list(dict.fromkeys((key, *columns)))
    projections = ", ".join(f"CAST({quote(name)} AS VARCHAR) AS {quote(name)}" for name in names)
    wanted = ", ".join(_sql_value(v) for v in values)
    sql = f"SELECT {quote(order)}, {projections} FROM {SOURCE} WHERE {quote(order)} IN ({wanted})"
    try:
        fetched = relation.query(SOURCE, sql).fetchall()
    except duckdb.Error as exc:
        raise EngineError(_error_text(exc)) from exc
    rows = {}
    for found in fetched:
        rows.setdefault(found[0], dict(zip(names, found[1:], strict=True)))
    return rows
