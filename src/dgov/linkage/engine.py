"""The linkage engine: DuckDB for the set work, Python for Chinese-aware normalization, numpy for the model.

A run goes through these steps (``docs/linkage.md`` explains the choices):

1. **Load** each table into DuckDB (CSV read by DuckDB in parallel; GB18030 files transcoded first)
   and check that the mapped columns and the id column exist and the ids are unique.
2. **Prepare**: every *distinct* value of each role goes once through :mod:`dgov.linkage.normalize`
   (NFKC, pinyin, look-alike canonical forms, date and phone parsing, ID validation with the kernel
   validators) and the results are joined back, giving one row of comparison columns per record.
   A valid resident ID supplies the birth date and sex where the record has none.
3. **Deterministic pass**: pairs with equal *valid* identifiers are matches outright.
4. **Blocking**: each rule is an equi-join on its keys; a pair found by an earlier rule is not
   produced again, so the candidate set has no duplicates and needs no ``DISTINCT``. The comparison
   levels (:mod:`dgov.linkage.comparisons`) are computed in the same statement.
5. **Training** (:mod:`dgov.linkage.model`): u from random pairs and exact value counts, m and λ by
   EM over the distinct comparison patterns.
6. **Scoring**: one SQL expression turns the levels into a match weight; pairs at or above the
   threshold (and all deterministic pairs) are accepted, optionally one-to-one.
7. **Clustering**: connected components of the accepted pairs by union-find.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
from django.utils.translation import gettext as _

from dgov.linkage import model, normalize
from dgov.linkage.comparisons import ORGANIZATION_COMPARISONS, PERSON_COMPARISONS, REPLACES, Comparison
from dgov.linkage.config import (
    MULTI_COLUMN_ROLES,
    NAME_ROLES,
    OPTIONAL_PAIR_BUDGET,
    LinkageConfigError,
    LinkSettings,
    TableSpec,
)

Progress = Callable[[str, int, int], None]

# Prepared column → the roles that can supply it (any one).
COLUMN_PROVIDERS: dict[str, frozenset[str]] = {
    "fam": NAME_ROLES,
    "giv": NAME_ROLES,
    "oname": NAME_ROLES,
    "birth": frozenset({"birth_date", "identifier"}),
    "ident": frozenset({"identifier"}),
    "sex": frozenset({"sex", "identifier"}),
    "phone": frozenset({"phone"}),
    "addr": frozenset({"address"}),
    "postcode": frozenset({"postcode"}),
    "city": frozenset({"city"}),
    "txt": frozenset({"text"}),
}

# Blocking key → prepared column (person, organization).
KEY_COLUMNS: dict[str, tuple[str, str | None]] = {
    "identifier": ("ident", "ident"),
    "birth_date": ("birth", None),
    "birth_year": ("birth_y", None),
    "birth_month": ("birth_ym", None),
    "birth_monthday": ("birth_md", None),
    "name": ("name_full", "ocore"),
    "name_pinyin": ("name_py", "opy"),
    "family_pinyin": ("fam_py", None),
    "given_pinyin": ("giv_py", None),
    "phone": ("phone", "phone"),
    "postcode": ("postcode", "postcode"),
    "city": ("city", "city"),
    "address": ("addr", "addr"),
}

ROLE_ORDER = ("full_name", "family_name", "given_name", "birth_date", "identifier", "sex", "address")
ROLE_ORDER += ("postcode", "city", "phone", "text")


class LinkageInputError(ValueError):
    """A table that cannot be read or does not fit its mapping (missing file, column, duplicate id)."""


def _quote(identifier: str) -> str:
    """A SQL identifier in double quotes."""
    return '"' + identifier.replace('"', '""') + '"'


def _literal(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


@dataclass
class LinkResult:
    """The outcome of a run: accepted pairs, clusters, the trained model, counts and timings.

    It keeps the DuckDB connection that holds the scored pairs, so large outputs are written by
    DuckDB itself (:meth:`write_pairs`, :meth:`write_clusters`); call :meth:`close` (or use it as a
    context manager) when done.
    """

    settings: LinkSettings
    table_names: list[str]
    comparisons: list[Comparison]
    parameters: model.Parameters
    threshold_weight: float
    left: np.ndarray
    right: np.ndarray
    weight: np.ndarray
    deterministic: np.ndarray
    labels: np.ndarray
    counts: dict[str, int]
    timings: dict[str, float]
    rules: list[tuple[str, ...]]
    con: duckdb.DuckDBPyConnection = field(repr=False)
    tempdir: Path = field(repr=False)
    skipped_rules: list[tuple[str, ...]] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Remove the temporary files even if the caller forgets :meth:`close`."""
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.tempdir, True)

    def __enter__(self) -> LinkResult:
        """Use as a context manager."""
        return self

    def __exit__(self, *exc_info) -> None:
        """Close on exit."""
        self.close()

    def close(self) -> None:
        """Close the DuckDB connection and remove the run's temporary files."""
        try:
            self.con.close()
        finally:
            self._cleanup()

    @property
    def probability(self) -> np.ndarray:
        """Match probability of every accepted pair (1 for deterministic pairs)."""
        return np.where(self.deterministic, 1.0, model.probability(self.weight))

    def _keys(self, rids: np.ndarray) -> list[tuple[str, str]]:
        """(table name, row id) of record ids."""
        if len(rids) == 0:
            return []
        wanted = np.unique(rids).astype(np.int64)
        self.con.register("_wanted", {"rid": wanted})
        try:
            rows = self.con.execute(
                "SELECT rec.src, rec.row_id FROM _wanted w JOIN rec ON rec.rid = w.rid ORDER BY w.rid"
            ).fetchall()
        finally:
            self.con.unregister("_wanted")
        by_rid = dict(zip(wanted.tolist(), rows, strict=True))
        return [(self.table_names[by_rid[r][0]], by_rid[r][1]) for r in rids.tolist()]

    def pairs(self) -> list[tuple[tuple[str, str], tuple[str, str], float, bool]]:
        """Accepted pairs as ((left table, row id), (right table, row id), probability, deterministic)."""
        lefts = self._keys(self.left)
        rights = self._keys(self.right)
        probabilities = self.probability.tolist()
        return [(a, b, p, bool(d)) for a, b, p, d in zip(lefts, rights, probabilities, self.deterministic, strict=True)]

    def pair_ids(self) -> list[tuple[str, str]]:
        """Accepted pairs as (left row id, right row id), for evaluation against a truth file."""
        return [(a[1], b[1]) for a, b, _p, _d in self.pairs()]

    def clusters(self) -> dict[int, list[tuple[str, str]]]:
        """Cluster id → members as (table name, row id); every record is in exactly one cluster."""
        rows = self.con.execute("SELECT rid, src, row_id FROM rec ORDER BY rid").fetchall()
        result: dict[int, list[tuple[str, str]]] = {}
        for rid, src, row_id in rows:
            result.setdefault(int(self.labels[rid]), []).append((self.table_names[src], row_id))
        return result

    def record_values(self, roles: Iterable[str]) -> dict[tuple[str, str], dict[str, str | None]]:
        """(table name, row id) → raw value per role (as read, multi-column roles joined)."""
        roles = [r for r in ROLE_ORDER if r in set(roles)]
        columns = ", ".join(_quote("role_" + r) for r in roles)
        rows = self.con.execute(f"SELECT src, row_id{', ' + columns if roles else ''} FROM raw ORDER BY rid").fetchall()
        return {(self.table_names[row[0]], row[1]): dict(zip(roles, row[2:], strict=True)) for row in rows}

    def write_pairs(self, path: str | Path, *, min_probability: float | None = None) -> int:
        """Write scored pairs as CSV; returns the number of rows.

        Written are the accepted pairs and, when ``min_probability`` is below the threshold, also
        the candidate pairs with at least that probability (``accepted`` tells them apart).
        Columns: left_table, left_id, right_table, right_id, match_probability, match_weight,
        method, accepted, then one column per comparison with the agreement level's label.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        floor = self.threshold_weight
        if min_probability is not None:
            floor = (
                -math.inf
                if min_probability <= 0
                else min(floor, model.weight_for_probability(min(min_probability, 1 - 1e-12)))
            )
        self.con.register("_accepted", {"l": self.left.astype(np.int64), "r": self.right.astype(np.int64)})
        self.con.register(
            "_tables", {"src": np.arange(len(self.table_names)), "name": np.array(self.table_names, dtype=object)}
        )
        levels = []
        for comparison in self.comparisons:
            labels = comparison.labels()
            cases = " ".join(f"WHEN {g} THEN {_literal(label)}" for g, label in enumerate(labels))
            levels.append(f"CASE s.g_{comparison.name} {cases} ELSE '' END AS {_quote(comparison.name)}")
        condition = "TRUE" if floor == -math.inf else f"s.det OR a.l IS NOT NULL OR s.w >= {floor!r}"
        query = f"""
            SELECT tl.name AS left_table, lr.row_id AS left_id, tr.name AS right_table, rr.row_id AS right_id,
                   CASE WHEN s.det THEN 1.0 ELSE round(1.0 / (1.0 + pow(2.0, -s.w)), 6) END AS match_probability,
                   round(s.w, 3) AS match_weight,
                   CASE WHEN s.det THEN 'deterministic' ELSE 'probabilistic' END AS method,
                   a.l IS NOT NULL AS accepted,
                   {", ".join(levels) if levels else "NULL AS no_comparison"}
            FROM scored s
            JOIN rec lr ON lr.rid = s.l JOIN rec rr ON rr.rid = s.r
            JOIN _tables tl ON tl.src = lr.src JOIN _tables tr ON tr.src = rr.src
            LEFT JOIN _accepted a ON a.l = s.l AND a.r = s.r
            WHERE {condition}
            ORDER BY s.det DESC, s.w DESC, s.l, s.r
        """
        try:
            count = self.con.execute(f"COPY ({query}) TO {_literal(str(path))} (HEADER, DELIMITER ',')").fetchone()[0]
        finally:
            self.con.unregister("_accepted")
            self.con.unregister("_tables")
        return int(count)

    def write_clusters(self, path: str | Path) -> int:
        """Write every record's cluster as CSV (cluster_id, table, row_id, cluster_size); returns the row count."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.con.register("_labels", {"rid": np.arange(len(self.labels)), "cluster_id": self.labels.astype(np.int64)})
        self.con.register(
            "_tables", {"src": np.arange(len(self.table_names)), "name": np.array(self.table_names, dtype=object)}
        )
        try:
            self.con.execute(
                f"""COPY (
                    SELECT c.cluster_id, t.name AS "table", rec.row_id,
                           count(*) OVER (PARTITION BY c.cluster_id) AS cluster_size
                    FROM rec JOIN _labels c ON c.rid = rec.rid JOIN _tables t ON t.src = rec.src
                    ORDER BY c.cluster_id, rec.rid
                ) TO {_literal(str(path))} (HEADER, DELIMITER ',')"""
            )
        finally:
            self.con.unregister("_labels")
            self.con.unregister("_tables")
        return len(self.labels)

    def summary(self) -> dict:
        """Counts, timings, blocking rules and the trained model as a JSON-friendly dict."""
        return {
            "counts": dict(self.counts),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "blocking": [list(rule) for rule in self.rules],
            "blocking_skipped": [list(rule) for rule in self.skipped_rules],
            "threshold": self.settings.threshold,
            "model": self.parameters.as_dict([c.labels() for c in self.comparisons]),
        }


class Linker:
    """Runs one linkage or deduplication described by :class:`LinkSettings`."""

    def __init__(self, settings: LinkSettings) -> None:
        """Validate the settings; nothing is read yet."""
        settings.validate()
        self.settings = settings
        self.person = settings.entity == "person"
        self.timings: dict[str, float] = {}

    # --- the run --------------------------------------------------------------------------------

    def run(self, progress: Progress | None = None) -> LinkResult:
        """Load, prepare, block, train, score and cluster; returns the :class:`LinkResult`."""
        tempdir = Path(tempfile.mkdtemp(prefix="dgov-link-"))
        con = duckdb.connect(config={"temp_directory": str(tempdir / "duckdb"), "preserve_insertion_order": True})
        try:
            return self._run(con, tempdir, progress or (lambda _d, _c, _t: None))
        except BaseException:
            con.close()
            shutil.rmtree(tempdir, ignore_errors=True)
            raise

    def _step(self, name: str, started: float) -> float:
        """Record the duration of a step; returns the new start time."""
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + now - started
        return now

    def _run(self, con: duckdb.DuckDBPyConnection, tempdir: Path, progress: Progress) -> LinkResult:
        """The steps of :meth:`run` on an open connection (see the module docstring)."""
        settings = self.settings
        self.timings = {}
        rules = self._rules()
        comparisons = self._comparisons()
        optional = settings.optional_blocking_rules()
        total_steps = len(settings.tables) + 3 + len(rules) + len(optional) + 4
        step = 0

        def advance(description: str) -> None:
            nonlocal step
            progress(description, step, total_steps)
            step += 1

        started = time.perf_counter()
        sizes = []
        for index, table in enumerate(settings.tables):
            advance(_("读取 %(table)s") % {"table": table.name})
            sizes.append(self._load_table(con, tempdir, index, table, offset=sum(sizes)))
        self._union_raw(con)
        started = self._step("load", started)
        advance(_("规范化姓名"))
        self._prepare(con, advance)
        started = self._step("prepare", started)

        total_pairs = self._total_pairs(sizes)
        skipped = []
        for rule in optional:
            if self._rule_pairs(con, rule) <= OPTIONAL_PAIR_BUDGET:
                rules.append(rule)
            else:
                skipped.append(rule)
        if not rules:
            raise LinkageConfigError(
                _("blocking：默认分块规则 %(rules)s 会产生过多记录对，请在配置中给出更具体的规则")
                % {"rules": "、".join(" + ".join(rule) for rule in skipped)}
            )
        # Candidate pairs rule by rule (cheap equi-joins), then the comparison levels of all of them in
        # one statement: the long CASE expressions are planned and run once.
        con.execute("CREATE TABLE cand (l INTEGER, r INTEGER, rule TINYINT)")
        earlier: list[tuple[str, ...]] = []
        for index, rule in enumerate(rules):
            advance(_("分块规则 %(rule)s") % {"rule": " + ".join(rule)})
            con.execute(
                f"INSERT INTO cand SELECT l.rid, r.rid, {index} FROM rec l JOIN rec r ON "
                + " AND ".join(f"l.{self._key_column(k)} = r.{self._key_column(k)}" for k in rule)
                + f" WHERE {self._pair_condition()}"
                + "".join(f" AND NOT coalesce({self._rule_match(e)}, FALSE)" for e in earlier)
            )
            earlier.append(rule)
        con.execute(
            f"CREATE TABLE gam AS SELECT c.l, c.r, c.rule, {self._gamma_columns(comparisons)} "
            "FROM cand c JOIN rec l ON l.rid = c.l JOIN rec r ON r.rid = c.r"
        )
        con.execute("DROP TABLE cand")
        started = self._step("blocking", started)

        advance(_("估计 u 概率（随机记录对）"))
        u = self._estimate_u(con, comparisons, sizes, total_pairs)
        started = self._step("u", started)

        advance(_("训练 m 概率（EM）"))
        pattern_rows = con.execute(
            "SELECT " + "".join(f"g_{c.name}, " for c in comparisons) + "det, count(*) FROM gam GROUP BY ALL"
        ).fetchall()
        patterns = np.array([row[: len(comparisons)] for row in pattern_rows], dtype=np.int8).reshape(
            len(pattern_rows), len(comparisons)
        )
        known = np.array([bool(row[-2]) for row in pattern_rows], dtype=bool)
        pattern_counts = np.array([row[-1] for row in pattern_rows], dtype=float)
        names = [c.name for c in comparisons]
        # γ = 0 of the identifier comparison means both identifiers are valid and differ.
        known_non_matches = patterns[:, names.index("identifier")] == 0 if "identifier" in names else None
        parameters = model.expectation_maximization(
            patterns,
            pattern_counts,
            known,
            u,
            float(total_pairs),
            names=names,
            known_non_matches=known_non_matches,
            max_iterations=settings.max_em_iterations,
        )
        started = self._step("em", started)

        advance(_("计算匹配权重"))
        con.execute(f"CREATE TABLE scored AS SELECT *, {self._weight_sql(comparisons, parameters)} AS w FROM gam")
        con.execute("DROP TABLE gam")
        threshold_weight = model.weight_for_probability(settings.threshold)
        accepted = con.execute(
            f"SELECT l, r, det, w FROM scored WHERE det OR w >= {threshold_weight!r} ORDER BY det DESC, w DESC, l, r"
        ).fetchnumpy()
        left = np.asarray(accepted["l"], dtype=np.int64)
        right = np.asarray(accepted["r"], dtype=np.int64)
        det = np.asarray(accepted["det"], dtype=bool)
        weight = np.asarray(accepted["w"], dtype=float)
        if settings.one_to_one:
            keep = one_to_one(left, right)
            left, right, det, weight = left[keep], right[keep], det[keep], weight[keep]
        started = self._step("score", started)

        advance(_("聚类"))
        labels = connected_components(sum(sizes), left, right)
        self._step("cluster", started)
        candidate_count = sum(int(c) for c in pattern_counts)
        counts = {
            "records": sum(sizes),
            **{f"records_{t.name}": n for t, n in zip(settings.tables, sizes, strict=True)},
            "comparison_space": int(total_pairs),
            "candidate_pairs": candidate_count,
            "deterministic_pairs": int(det.sum()),
            "accepted_pairs": len(left),
            "clusters": int(labels.max()) + 1 if len(labels) else 0,
            "patterns": len(pattern_rows),
        }
        progress(_("完成"), total_steps, total_steps)
        return LinkResult(
            settings=settings,
            table_names=[t.name for t in settings.tables],
            comparisons=comparisons,
            parameters=parameters,
            threshold_weight=threshold_weight,
            left=left,
            right=right,
            weight=weight,
            deterministic=det,
            labels=labels,
            counts=counts,
            timings=dict(self.timings),
            rules=rules,
            con=con,
            tempdir=tempdir,
            skipped_rules=skipped,
        )

    # --- loading --------------------------------------------------------------------------------

    def _load_table(self, con, tempdir: Path, index: int, table: TableSpec, *, offset: int) -> int:
        """Create ``src_<index>`` from the table's CSV or rows and check columns and ids; returns the row count."""
        name = f"src_{index}"
        wanted = list(dict.fromkeys([*table.columns, *([table.id_column] if table.id_column else [])]))
        if table.rows is not None:
            self._load_rows(con, name, table, wanted)
        else:
            path = self._utf8_path(table, tempdir, index)
            try:
                con.execute(
                    f"CREATE TABLE {name} AS SELECT * FROM read_csv({_literal(str(path))}, header = true, "
                    f"all_varchar = true, delim = {_literal(table.delimiter)}, quote = '\"', escape = '\"')"
                )
            except duckdb.Error as exc:
                raise LinkageInputError(
                    _("表 %(table)s：无法读取 CSV 文件 %(path)s：%(error)s")
                    % {"table": table.name, "path": table.path, "error": str(exc).splitlines()[0]}
                ) from None
        present = [row[0] for row in con.execute(f"DESCRIBE {name}").fetchall()]
        missing = [c for c in wanted if c not in present]
        if missing:
            raise LinkageInputError(
                _("表 %(table)s：找不到列 %(missing)s（文件中的列：%(present)s）")
                % {"table": table.name, "missing": "、".join(missing), "present": "、".join(present)}
            )
        count = con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
        id_sql = f"trim({_quote(table.id_column)})" if table.id_column else "CAST(rowid + 1 AS VARCHAR)"
        role_columns = table.role_columns()
        role_sql = []
        for role in ROLE_ORDER:
            columns = role_columns.get(role)
            if not columns:
                expression = "CAST(NULL AS VARCHAR)"
            elif len(columns) == 1 or role not in MULTI_COLUMN_ROLES:
                expression = _quote(columns[0])
            else:
                expression = "nullif(concat_ws('', " + ", ".join(_quote(c) for c in columns) + "), '')"
            role_sql.append(f"{expression} AS role_{role}")
        con.execute(
            f"CREATE TABLE raw_{index} AS SELECT CAST(rowid + {offset} AS INTEGER) AS rid, "
            f"CAST({index} AS TINYINT) AS src, {id_sql} AS row_id, {', '.join(role_sql)} FROM {name} ORDER BY rowid"
        )
        con.execute(f"DROP TABLE {name}")
        if table.id_column:
            blank = con.execute(f"SELECT count(*) FROM raw_{index} WHERE row_id IS NULL OR row_id = ''").fetchone()[0]
            if blank:
                raise LinkageInputError(
                    _("表 %(table)s：id 列“%(column)s”有 %(count)d 行为空")
                    % {"table": table.name, "column": table.id_column, "count": blank}
                )
            duplicates = con.execute(
                f"SELECT row_id FROM raw_{index} GROUP BY row_id HAVING count(*) > 1 ORDER BY row_id LIMIT 5"
            ).fetchall()
            if duplicates:
                raise LinkageInputError(
                    _("表 %(table)s：id 列“%(column)s”的值重复，例如 %(values)s")
                    % {"table": table.name, "column": table.id_column, "values": "、".join(r[0] for r in duplicates)}
                )
        return int(count)

    @staticmethod
    def _load_rows(con, name: str, table: TableSpec, wanted: list[str]) -> None:
        """Create a table from in-memory rows (each a mapping column → value)."""
        rows = list(table.rows or [])
        present = set().union(*(row.keys() for row in rows)) if rows else set(wanted)
        columns = [c for c in wanted if c in present]
        data = {
            c: np.array([None if row.get(c) is None else str(row.get(c)) for row in rows], dtype=object)
            for c in columns
        }
        if not columns:
            con.execute(f"CREATE TABLE {name} (_empty VARCHAR)")
            return
        con.register("_rows", data)
        try:
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM _rows")
        finally:
            con.unregister("_rows")

    @staticmethod
    def _utf8_path(table: TableSpec, tempdir: Path, index: int) -> Path:
        """The table's CSV as a UTF-8 file: the original, or a transcoded copy of a GB18030 file."""
        path = Path(table.path)
        if not path.is_file():
            raise LinkageInputError(_("表 %(table)s：文件 %(path)s 不存在") % {"table": table.name, "path": path})
        encoding = table.encoding.lower()
        if encoding == "auto":
            with path.open("rb") as handle:
                head = handle.read(1 << 20)
            try:
                head.decode("utf-8")
                encoding = "utf-8"
            except UnicodeDecodeError as exc:
                # A cut multi-byte character at the end of the sample is still UTF-8.
                encoding = "utf-8" if exc.start >= len(head) - 3 and len(head) == 1 << 20 else "gb18030"
        if encoding.replace("-", "").replace("_", "") in {"utf8", "utf8sig"}:
            return path
        target = tempdir / f"table_{index}.csv"
        try:
            with (
                path.open(encoding=encoding, newline="") as source,
                target.open("w", encoding="utf-8", newline="") as out,
            ):
                shutil.copyfileobj(source, out, 1 << 20)
        except (LookupError, UnicodeDecodeError) as exc:
            raise LinkageInputError(
                _("表 %(table)s：无法按 %(encoding)s 编码读取 %(path)s：%(error)s")
                % {"table": table.name, "encoding": encoding, "path": path, "error": exc}
            ) from None
        return target

    def _union_raw(self, con) -> None:
        """All tables' raw role values in one ``raw`` table."""
        parts = " UNION ALL ".join(f"SELECT * FROM raw_{i}" for i in range(len(self.settings.tables)))
        con.execute(f"CREATE TABLE raw AS {parts}")
        for index in range(len(self.settings.tables)):
            con.execute(f"DROP TABLE raw_{index}")

    # --- preparation ----------------------------------------------------------------------------

    @staticmethod
    def _map_distinct(con, name: str, keys: list[str], function, outputs: list[tuple[str, str]]) -> None:
        """Create table ``name``: each distinct combination of ``keys`` in ``raw`` with ``function``'s outputs.

        ``function`` takes the key values and returns a tuple of output values; ``outputs`` are
        (column, DuckDB type). Keys are stored coalesced to '' so they join without NULL semantics.
        """
        key_sql = ", ".join(f"coalesce(role_{k}, '') AS k_{k}" for k in keys)
        where = " OR ".join(f"role_{k} IS NOT NULL" for k in keys)
        distinct = con.execute(f"SELECT DISTINCT {key_sql} FROM raw WHERE {where}").fetchall()
        results = [function(*row) for row in distinct]
        data = {f"k_{k}": np.array([row[i] for row in distinct], dtype=object) for i, k in enumerate(keys)}
        for position, (column, kind) in enumerate(outputs):
            values = [row[position] for row in results]
            data[column] = np.array(values, dtype=bool if kind == "BOOLEAN" else object)
        con.register("_map", data)
        try:
            casts = ", ".join([*(f"k_{k}" for k in keys), *(f"CAST({c} AS {kind}) AS {c}" for c, kind in outputs)])
            con.execute(f"CREATE TABLE {name} AS SELECT {casts} FROM _map")
        finally:
            con.unregister("_map")

    def _prepare(self, con, advance: Callable[[str], None]) -> None:
        """Build ``rec``: one row of normalized comparison columns per record (see the module docstring)."""
        kind = self.settings.identifier_kind
        varchar = "VARCHAR"
        if self.person:
            self._map_distinct(
                con,
                "m_name",
                ["full_name", "family_name", "given_name"],
                lambda full, family, given: tuple(
                    normalize.name_parts(full or None, family or None, given or None).__dict__.values()
                ),
                [
                    ("fam", varchar),
                    ("giv", varchar),
                    ("fam_py", varchar),
                    ("giv_py", varchar),
                    ("fam_cn", varchar),
                    ("giv_cn", varchar),
                    ("giv_fz", varchar),
                ],
            )
        else:
            self._map_distinct(
                con,
                "m_name",
                ["full_name", "family_name", "given_name"],
                lambda full, family, given: tuple(
                    normalize.org_name(full or (family + given) or None).__dict__.values()
                ),
                [("oname", varchar), ("ocore", varchar), ("ocn", varchar), ("opy", varchar)],
            )
        advance(_("规范化证件号码与日期"))
        self._map_distinct(
            con,
            "m_ident",
            ["identifier"],
            lambda value: tuple(normalize.identifier(value or None, kind).__dict__.values()),
            [("ident", varchar), ("ident_valid", "BOOLEAN"), ("id_birth", varchar), ("id_sex", varchar)],
        )
        self._map_distinct(con, "m_birth", ["birth_date"], lambda v: (normalize.birth_date(v),), [("birth", varchar)])
        self._map_distinct(con, "m_sex", ["sex"], lambda v: (normalize.sex(v),), [("sex", varchar)])
        advance(_("规范化地址与电话"))
        self._map_distinct(
            con, "m_addr", ["address"], lambda v: normalize.address(v), [("addr", varchar), ("addr_detail", varchar)]
        )
        for role, column, function in (
            ("phone", "phone", normalize.phone),
            ("postcode", "postcode", normalize.postcode),
            ("city", "city", normalize.city),
            ("text", "txt", normalize.compact_text),
        ):
            self._map_distinct(con, f"m_{role}", [role], lambda v, f=function: (f(v),), [(column, varchar)])

        def join(table: str, alias: str, keys: list[str]) -> str:
            condition = " AND ".join(f"{alias}.k_{k} = coalesce(raw.role_{k}, '')" for k in keys)
            return f"LEFT JOIN {table} {alias} ON {condition}"

        if self.person:
            name_columns = (
                "n.fam, n.giv, n.fam_py, n.giv_py, n.fam_cn, n.giv_cn, n.giv_fz, "
                "nullif(concat(n.fam, n.giv), '') AS name_full, nullif(concat(n.fam_py, n.giv_py), '') AS name_py, "
                "coalesce(b.birth, i.id_birth) AS birth, coalesce(s.sex, i.id_sex) AS sex"
            )
        else:
            name_columns = "n.oname, n.ocore, n.ocn, n.opy, b.birth, s.sex"
        joins = " ".join(
            join(table, alias, keys)
            for table, alias, keys in (
                ("m_name", "n", ["full_name", "family_name", "given_name"]),
                ("m_ident", "i", ["identifier"]),
                ("m_birth", "b", ["birth_date"]),
                ("m_sex", "s", ["sex"]),
                ("m_addr", "a", ["address"]),
                ("m_phone", "p", ["phone"]),
                ("m_postcode", "pc", ["postcode"]),
                ("m_city", "c", ["city"]),
                ("m_text", "t", ["text"]),
            )
        )
        con.execute(
            f"""CREATE TABLE rec0 AS SELECT raw.rid, raw.src, raw.row_id, {name_columns},
                   i.ident, coalesce(i.ident_valid, FALSE) AS ident_valid,
                   a.addr, a.addr_detail, p.phone, pc.postcode, c.city, t.txt
            FROM raw {joins}"""
        )
        tf = (
            "CAST(count(fam) OVER (PARTITION BY fam) AS DOUBLE) / greatest(count(fam) OVER (), 1) AS fam_tf, "
            "CAST(count(giv) OVER (PARTITION BY giv) AS DOUBLE) / greatest(count(giv) OVER (), 1) AS giv_tf, "
            "left(birth, 4) AS birth_y, left(birth, 6) AS birth_ym, substr(birth, 5, 4) AS birth_md"
            if self.person
            else "CAST(count(oname) OVER (PARTITION BY oname) AS DOUBLE) / greatest(count(oname) OVER (), 1) "
            "AS oname_tf"
        )
        con.execute(f"CREATE TABLE rec AS SELECT *, {tf} FROM rec0 ORDER BY rid")
        con.execute("DROP TABLE rec0")
        for table in ("m_name", "m_ident", "m_birth", "m_sex", "m_addr", "m_phone", "m_postcode", "m_city", "m_text"):
            con.execute(f"DROP TABLE {table}")

    # --- model pieces ---------------------------------------------------------------------------

    def _provides(self, column: str) -> bool:
        """True when every table maps a role that supplies prepared column ``column``."""
        providers = COLUMN_PROVIDERS[column]
        if column in {"birth", "sex"} and not self.person:
            providers = providers - {"identifier"}
        return all(providers & set(t.columns.values()) for t in self.settings.tables)

    def _comparisons(self) -> list[Comparison]:
        """The comparisons every table can take part in."""
        candidates = PERSON_COMPARISONS if self.person else ORGANIZATION_COMPARISONS
        chosen = [c for c in candidates if all(self._provides(col) for col in c.columns)]
        replaced = {part for c in chosen for part in REPLACES.get(c.name, ())}
        return [c for c in chosen if c.name not in replaced]

    def _rules(self) -> list[tuple[str, ...]]:
        """Blocking rules, the deterministic identifier rule first when identifiers are mapped."""
        rules = self.settings.blocking_rules()
        if self._provides("ident"):
            rules = [("identifier",), *(r for r in rules if r != ("identifier",))]
        if not rules and not self.settings.optional_blocking_rules():
            raise LinkageConfigError(_("blocking：没有可用的分块规则（各表共有的角色不足）"))
        return rules

    def _rule_pairs(self, con, rule: tuple[str, ...]) -> int:
        """How many pairs ``rule`` would produce at most (all pairs within each block)."""
        keys = ", ".join(self._key_column(k) for k in rule)
        present = " AND ".join(f"{self._key_column(k)} IS NOT NULL" for k in rule)
        return int(
            con.execute(
                f"SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM (SELECT count(*) AS n FROM rec WHERE {present} "
                f"GROUP BY {keys})"
            ).fetchone()[0]
        )

    def _key_column(self, key: str) -> str:
        """The prepared column a blocking key joins on."""
        person, organization = KEY_COLUMNS[key]
        column = person if self.person else organization
        if column is None:
            raise LinkageConfigError(_("blocking：键“%(key)s”只适用于 entity: person") % {"key": key})
        return column

    def _rule_match(self, rule: tuple[str, ...]) -> str:
        """SQL that is true when a pair satisfies ``rule`` (NULL when a key is missing)."""
        return "(" + " AND ".join(f"l.{self._key_column(k)} = r.{self._key_column(k)}" for k in rule) + ")"

    def _pair_condition(self) -> str:
        """Which ordered pairs belong to the comparison space."""
        return "l.src < r.src" if self.settings.mode == "link" else "l.rid < r.rid"

    def _uses_tf(self, comparison: Comparison) -> bool:
        """Term-frequency adjustment applies to this comparison."""
        return self.settings.term_frequency and comparison.tf_column is not None

    def _gamma_columns(self, comparisons: list[Comparison]) -> str:
        """SELECT list after (l, r, rule): the deterministic flag, the γ of each comparison, tf values."""
        parts = [
            (
                "coalesce(l.ident_valid AND r.ident_valid AND l.ident = r.ident, FALSE)"
                if self._provides("ident")
                else "FALSE"
            )
            + " AS det"
        ]
        parts += [f"{c.gamma_sql()} AS g_{c.name}" for c in comparisons]
        parts += [f"{c.tf_sql()} AS tf_{c.name}" for c in comparisons if self._uses_tf(c)]
        return ", ".join(parts)

    def _total_pairs(self, sizes: list[int]) -> int:
        """Size of the comparison space."""
        if self.settings.mode == "link":
            return sum(a * b for i, a in enumerate(sizes) for b in sizes[i + 1 :])
        total = sum(sizes)
        return total * (total - 1) // 2

    def _estimate_u(self, con, comparisons: list[Comparison], sizes: list[int], total_pairs: int) -> list[np.ndarray]:
        """u of every comparison: sampled level frequencies, exact agreement counted from values."""
        sample = self.settings.u_sample_size
        gammas = ", ".join(f"{c.gamma_sql()} AS g_{c.name}" for c in comparisons) or "0 AS g_none"
        det = (
            "coalesce(l.ident_valid AND r.ident_valid AND l.ident = r.ident, FALSE)"
            if self._provides("ident")
            else "FALSE"
        )
        if total_pairs <= sample:
            query = f"SELECT {det} AS det, {gammas} FROM rec l JOIN rec r ON {self._pair_condition()}"
        else:
            left, right = self._random_pairs(sizes, sample)
            con.register("_rnd", {"l": left, "r": right})
            query = f"SELECT {det} AS det, {gammas} FROM _rnd JOIN rec l ON l.rid = _rnd.l JOIN rec r ON r.rid = _rnd.r"
        try:
            rows = con.execute(query).fetchnumpy()
        finally:
            if total_pairs > sample:
                con.unregister("_rnd")
        not_det = ~np.asarray(rows["det"], dtype=bool)
        u = []
        for comparison in comparisons:
            column = np.asarray(rows[f"g_{comparison.name}"], dtype=np.int64)[not_det]
            present_fraction = float((column >= 0).mean()) if len(column) else 0.0
            column = column[column >= 0]
            level_counts = np.bincount(column, minlength=comparison.top + 1)
            exact = (
                self._exact_probability(con, comparison, total_pairs, present_fraction)
                if comparison.exact_columns
                else None
            )
            u.append(model.u_from_counts(level_counts, exact))
        return u

    def _random_pairs(self, sizes: list[int], count: int) -> tuple[np.ndarray, np.ndarray]:
        """``count`` pairs drawn uniformly from the comparison space (with replacement)."""
        rng = np.random.default_rng(self.settings.seed)
        offsets = np.cumsum([0, *sizes])
        if self.settings.mode == "link":
            table_pairs = [(i, j) for i in range(len(sizes)) for j in range(i + 1, len(sizes))]
            weights = np.array([sizes[i] * sizes[j] for i, j in table_pairs], dtype=float)
            chosen = rng.choice(len(table_pairs), size=count, p=weights / weights.sum())
            left = np.empty(count, dtype=np.int64)
            right = np.empty(count, dtype=np.int64)
            for index, (i, j) in enumerate(table_pairs):
                mask = chosen == index
                n = int(mask.sum())
                left[mask] = rng.integers(offsets[i], offsets[i + 1], n)
                right[mask] = rng.integers(offsets[j], offsets[j + 1], n)
            return left, right
        total = int(offsets[-1])
        a = rng.integers(0, total, count * 2)
        b = rng.integers(0, total, count * 2)
        keep = a != b
        a, b = a[keep][:count], b[keep][:count]
        return np.minimum(a, b), np.maximum(a, b)

    def _exact_probability(
        self, con, comparison: Comparison, total_pairs: int, present_fraction: float
    ) -> float | None:
        """P(two records agree exactly on the comparison's columns | the comparison has a value), counted.

        The numerator comes from value counts over the whole comparison space; the denominator is
        counted too for a single-column comparison, and estimated from the random pairs' share of
        pairs with a value otherwise. Pairs linked deterministically are left out of both.
        """
        columns = comparison.exact_columns
        key = ", ".join(columns)
        present = " AND ".join(f"{c} IS NOT NULL" for c in columns)
        if self.settings.mode == "link":
            same = " AND ".join(f"a.{c} = b.{c}" for c in columns)
            agree = con.execute(
                f"""WITH v AS (SELECT {key}, src, count(*) AS n FROM rec WHERE {present} GROUP BY ALL)
                    SELECT coalesce(sum(a.n * b.n), 0) FROM v a JOIN v b ON {same} AND a.src < b.src"""
            ).fetchone()[0]
        else:
            agree = con.execute(
                f"SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM "
                f"(SELECT count(*) AS n FROM rec WHERE {present} GROUP BY {key})"
            ).fetchone()[0]
        if len(columns) == 1 and comparison.null_sql is None:
            column = columns[0]
            if self.settings.mode == "link":
                per_table = [
                    row[1]
                    for row in con.execute(f"SELECT src, count({column}) FROM rec GROUP BY src ORDER BY src").fetchall()
                ]
                space = sum(a * b for i, a in enumerate(per_table) for b in per_table[i + 1 :])
            else:
                count = con.execute(f"SELECT count({column}) FROM rec").fetchone()[0]
                space = count * (count - 1) // 2
        else:
            space = total_pairs * present_fraction
        det_agree, det_present = con.execute(
            f"SELECT count(*) FILTER (WHERE g_{comparison.name} = {comparison.top}), "
            f"count(*) FILTER (WHERE g_{comparison.name} >= 0) FROM gam WHERE det"
        ).fetchone()
        space -= det_present
        if space <= 0:
            return None
        return max(float(agree) - det_agree, 0.0) / space

    def _weight_sql(self, comparisons: list[Comparison], parameters: model.Parameters) -> str:
        """SQL for a pair's match weight from its γ values (and tf values) with the trained parameters."""
        terms = [repr(parameters.prior_weight)]
        for index, comparison in enumerate(comparisons):
            weights = parameters.weights(index)
            cases = []
            for level, weight in enumerate(weights.tolist()):
                if level == comparison.top and self._uses_tf(comparison):
                    log_m = math.log2(float(parameters.m[index][level]))
                    cases.append(
                        f"WHEN {level} THEN least(greatest({log_m!r} - log2(greatest(coalesce(tf_{comparison.name}, "
                        f"{float(parameters.u[index][level])!r}), 1e-9)), {-model.WEIGHT_LIMIT}), {model.WEIGHT_LIMIT})"
                    )
                else:
                    cases.append(f"WHEN {level} THEN {weight!r}")
            terms.append(f"(CASE g_{comparison.name} {' '.join(cases)} ELSE 0.0 END)")
        return " + ".join(terms)


# --- post-processing -----------------------------------------------------------------------------


def one_to_one(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Greedy one-to-one selection: walk pairs best-first, keep a pair when neither record is taken yet.

    The pairs must already be sorted best-first (deterministic, then by weight). Returns a mask.
    """
    taken: set[int] = set()
    keep = np.zeros(len(left), dtype=bool)
    for index, (a, b) in enumerate(zip(left.tolist(), right.tolist(), strict=True)):
        if a not in taken and b not in taken:
            taken.add(a)
            taken.add(b)
            keep[index] = True
    return keep


def connected_components(size: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Cluster label (0…k-1, ordered by each cluster's smallest record) of every record, by union-find."""
    parent = list(range(size))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in zip(left.tolist(), right.tolist(), strict=True):
        root_a, root_b = find(a), find(b)
        if root_a != root_b:
            if root_a < root_b:
                parent[root_b] = root_a
            else:
                parent[root_a] = root_b
    roots = np.fromiter((find(x) for x in range(size)), dtype=np.int64, count=size)
    # Roots are each cluster's smallest record (unions keep the smaller root), so ranking them orders clusters.
    _unique, labels = np.unique(roots, return_inverse=True)
    return labels.astype(np.int64)
