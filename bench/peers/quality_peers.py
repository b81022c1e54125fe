"""The peers of the data quality benchmark (``bench/bench_quality.py``): the same 12 rules in other tools.

Run as ``python quality_peers.py TOOL --data persons.parquet --spec spec.json``; prints one JSON line with the
tool's version, row count, loading and checking seconds, failing rows per rule, rows checked where the tool
says, and the keys (``person_no``) of up to ``samples`` failing rows per rule.

* ``duckdb`` — one hand-written DuckDB query (the practical limit), run with dgov's interpreter (same DuckDB);
* ``soda`` — Soda Core 3 (SodaCL) on DuckDB, in the peers' virtualenv;
* ``gx`` — Great Expectations Core 1 on pandas, in the peers' virtualenv.

Every tool is given the plaintext rows as one Parquet file (all columns text); loading it (into DuckDB, or a
pandas DataFrame) is timed apart from the checks. The rule parameters (today, the freshness cut-off, the
GB/T 2260 code lists dgov uses, the phone pattern) come from the spec file, so every tool checks against the
same lists. Semantics follow dgov's rule types (docs/quality.md): a single-field rule checks only rows with a
value; the ID consistency rules only rows whose ID number has the 18-character shape; a value that cannot be
parsed fails the rule. The generated data has no blank strings, so "missing" is NULL for every tool.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Literal  # resolved by GX's pydantic models (annotations are strings here)

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"


# --- SQL (the hand-written query and Soda's failed-rows conditions) ------------------------------------------


def present(column: str) -> str:
    """A value that is neither NULL nor blank."""
    return f"({column} IS NOT NULL AND trim({column}) <> '')"


SHAPE = "regexp_full_match(id_number, '[0-9]{17}[0-9X]')"


def id_valid_sql(today: str) -> str:
    """The ID number is valid (GB 11643): shape, check character, address code, birth date 1900…today."""
    number = "TRY_CAST(substr(id_number, 1, 17) AS BIGINT)"
    total = " + ".join(f"(({number} // {10 ** (16 - i)}) % 10) * {w}" for i, w in enumerate(ID_WEIGHTS))
    return (
        f"({SHAPE} AND substr('{ID_CHECK}', (({total}) % 11) + 1, 1) = substr(id_number, 18, 1)"
        f" AND substr(id_number, 1, 6) IN (SELECT code FROM id_regions)"
        f" AND CAST(try_strptime(substr(id_number, 7, 8), '%Y%m%d') AS DATE)"
        f" BETWEEN DATE '1900-01-01' AND DATE '{today}')"
    )


def division_valid_sql() -> str:
    """A 6/9/12-digit division code whose county part is in force (GB/T 2260)."""
    return (
        "(regexp_full_match(division_code, '[0-9]{6}([0-9]{3}){0,2}') AND substr(division_code, 1, 6) <> '000000'"
        " AND NOT (length(division_code) >= 9 AND substr(division_code, 7, 3) = '000')"
        " AND NOT (length(division_code) = 12 AND substr(division_code, 10, 3) = '000')"
        " AND substr(division_code, 1, 6) IN (SELECT code FROM current_divisions))"
    )


def fail_conditions(spec: dict) -> dict[str, str]:
    """Each rule as one SQL condition that is TRUE for a failing row."""
    today, cutoff = spec["today"], spec["fresh_cutoff"]
    pattern = spec["phone_pattern"].replace("'", "''")
    return {
        "id_number.checksum": f"{present('id_number')} AND NOT coalesce({id_valid_sql(today)}, FALSE)",
        "id_number.unique": f"{present('id_number')} AND id_number IN (SELECT k FROM duplicates)",
        "name.required": f"NOT {present('name')}",
        "name.length": f"{present('name')} AND NOT (length(name) BETWEEN 2 AND 50)",
        "sex.code": f"{present('sex')} AND sex NOT IN ('1', '2')",
        "sex.id_number": (
            f"{present('id_number')} AND {present('sex')} AND {SHAPE}"
            " AND trim(sex) <> CASE WHEN CAST(substr(id_number, 17, 1) AS INTEGER) % 2 = 1 THEN '1' ELSE '2' END"
        ),
        "birth_date.id_number": (
            f"{present('id_number')} AND {present('birth_date')} AND {SHAPE}"
            " AND TRY_CAST(birth_date AS DATE)"
            " IS DISTINCT FROM CAST(try_strptime(substr(id_number, 7, 8), '%Y%m%d') AS DATE)"
        ),
        "birth_date.range": (
            f"{present('birth_date')}"
            f" AND NOT coalesce(TRY_CAST(birth_date AS DATE) BETWEEN DATE '1900-01-01' AND DATE '{today}', FALSE)"
        ),
        "division.valid": f"{present('division_code')} AND NOT coalesce({division_valid_sql()}, FALSE)",
        "division.id_region": (
            f"{present('id_number')} AND {present('division_code')} AND {SHAPE}"
            " AND substr(id_number, 1, 2) <> substr(division_code, 1, 2)"
        ),
        "phone.format": f"{present('phone')} AND NOT regexp_full_match(phone, '{pattern}')",
        "verified_at.fresh": (
            f"verified_at IS NOT NULL AND NOT coalesce(TRY_CAST(verified_at AS DATE) >= DATE '{cutoff}', FALSE)"
        ),
    }


DUPLICATES_SQL = (
    f"SELECT id_number AS k FROM persons WHERE {present('id_number')} GROUP BY id_number HAVING count(*) > 1"
)


def load_duckdb(con, data: str, spec: dict) -> None:
    """The rows into table ``persons``, the two code lists into ``id_regions`` and ``current_divisions``."""
    con.execute(f"CREATE TABLE persons AS SELECT * FROM read_parquet('{data}')")
    for name in ("id_regions", "current_divisions"):
        con.execute(f"CREATE TABLE {name} AS SELECT unnest(?::VARCHAR[]) AS code", [spec[name]])


def run_duckdb(data: str, spec: dict) -> dict:
    """One hand-written query: every rule's failure count and first failing keys; then the sample rows."""
    import duckdb

    samples = int(spec["samples"])
    con = duckdb.connect()
    start = time.perf_counter()
    load_duckdb(con, data, spec)
    loaded = time.perf_counter()
    rules = fail_conditions(spec)
    flags = ", ".join(f"coalesce({sql}, FALSE) AS f{i}" for i, sql in enumerate(rules.values()))
    aggregates = ", ".join(f"count_if(f{i}), min(person_no, {samples}) FILTER (WHERE f{i})" for i in range(len(rules)))
    sql = (
        f"WITH duplicates AS ({DUPLICATES_SQL}), flags AS (SELECT person_no, {flags} FROM persons) "
        f"SELECT count(*), {aggregates} FROM flags"
    )
    row = con.execute(sql).fetchone()
    failed, keys = {}, {}
    for i, code in enumerate(rules):
        failed[code] = row[1 + 2 * i]
        keys[code] = row[2 + 2 * i] or []
    wanted = sorted({k for found in keys.values() for k in found})
    sample_rows = {}
    if wanted:
        for found in con.execute("SELECT * FROM persons WHERE person_no IN (SELECT unnest(?))", [wanted]).fetchall():
            sample_rows[found[0]] = found
    end = time.perf_counter()
    return {
        "tool": "duckdb",
        "version": f"DuckDB {duckdb.__version__}",
        "rows": row[0],
        "load_seconds": loaded - start,
        "check_seconds": end - loaded,
        "failed": failed,
        "samples": {code: [k for k in found if k in sample_rows] for code, found in keys.items()},
    }


# --- Soda Core ---------------------------------------------------------------------------------------------


def sodacl(spec: dict) -> str:
    """The 12 rules as SodaCL: built-in metrics where SodaCL has them, failed-rows checks with conditions otherwise."""
    samples = int(spec["samples"])
    conditions = fail_conditions(spec)
    regex = "^(?:" + spec["phone_pattern"] + ")$"
    lines = [
        "checks for persons:",
        "  - missing_count(name) = 0:",
        "      name: name.required",
        f"      samples limit: {samples}",
        "  - invalid_count(name) = 0:",
        "      name: name.length",
        "      valid min length: 2",
        "      valid max length: 50",
        f"      samples limit: {samples}",
        "  - invalid_count(sex) = 0:",
        "      name: sex.code",
        "      valid values: ['1', '2']",
        f"      samples limit: {samples}",
        "  - invalid_count(phone) = 0:",
        "      name: phone.format",
        f"      valid regex: {json.dumps(regex)}",
        f"      samples limit: {samples}",
        "  - failed rows:",
        "      name: id_number.unique",
        f"      samples limit: {samples}",
        "      fail query: |",
        f"        SELECT * FROM persons WHERE id_number IN ({DUPLICATES_SQL})",
    ]
    for code in (
        "id_number.checksum",
        "sex.id_number",
        "birth_date.id_number",
        "birth_date.range",
        "division.valid",
        "division.id_region",
        "verified_at.fresh",
    ):
        lines += [
            "  - failed rows:",
            f"      name: {code}",
            f"      samples limit: {samples}",
            f"      fail condition: {json.dumps(conditions[code])}",
        ]
    return "\n".join(lines) + "\n"


def run_soda(data: str, spec: dict) -> dict:
    """A Soda Core scan of the SodaCL checks over the rows in an in-memory DuckDB database."""
    import logging

    import duckdb
    from soda.sampler.sample_ref import SampleRef
    from soda.sampler.sampler import Sampler
    from soda.scan import Scan

    logging.disable(logging.WARNING)
    captured: dict[str, list] = {}
    limit = int(spec["samples"])

    class Capture(Sampler):
        """Keeps the key of the first failing rows of each check (what a sampler sends to Soda Cloud)."""

        def store_sample(self, sample_context) -> SampleRef:
            rows = sample_context.sample.get_rows()
            names = [column.name for column in sample_context.sample.get_schema().columns]
            position = names.index("person_no") if "person_no" in names else 0
            captured[sample_context.check_name] = [row[position] for row in rows[:limit]]
            total = sample_context.sample.get_rows_count()
            return SampleRef(
                name=sample_context.sample_name,
                schema=sample_context.sample.get_schema(),
                total_row_count=total,
                stored_row_count=min(total, limit),
                type=SampleRef.TYPE_NOT_PERSISTED,
            )

    con = duckdb.connect()
    start = time.perf_counter()
    load_duckdb(con, data, spec)
    con.execute(f"CREATE VIEW duplicates AS {DUPLICATES_SQL}")
    loaded = time.perf_counter()
    scan = Scan()
    scan.set_data_source_name("bench")
    scan.add_duckdb_connection(duckdb_connection=con, data_source_name="bench")
    scan.add_sodacl_yaml_str(sodacl(spec))
    scan.sampler = Capture()
    scan.execute()
    end = time.perf_counter()
    results = scan.get_scan_results()
    failed = {}
    for check in results["checks"]:
        value = check.get("diagnostics", {}).get("value")
        failed[check["name"]] = int(value) if value is not None else None
    if scan.has_error_logs():
        print(scan.get_error_logs_text(), file=sys.stderr)
    from importlib.metadata import version

    return {
        "tool": "soda",
        "version": f"soda-core {version('soda-core')}, soda-core-duckdb {version('soda-core-duckdb')}, "
        f"DuckDB {duckdb.__version__}",
        "rows": con.execute("SELECT count(*) FROM persons").fetchone()[0],
        "load_seconds": loaded - start,
        "check_seconds": end - loaded,
        "failed": failed,
        "samples": captured,
    }


# --- Great Expectations ------------------------------------------------------------------------------------


def gx_expectations(spec: dict):
    """Custom expectations for the rules GX has no built-in for (vectorized pandas/numpy), and the suite's list."""
    import numpy as np
    import pandas as pd
    from great_expectations import expectations as gxe
    from great_expectations.execution_engine import PandasExecutionEngine
    from great_expectations.expectations.expectation import ColumnMapExpectation, ColumnPairMapExpectation
    from great_expectations.expectations.metrics.map_metric_provider import (
        ColumnMapMetricProvider,
        ColumnPairMapMetricProvider,
        column_condition_partial,
        column_pair_condition_partial,
    )

    today = pd.Timestamp(spec["today"])
    cutoff = pd.Timestamp(spec["fresh_cutoff"])
    regions = frozenset(spec["id_regions"])
    current = frozenset(spec["current_divisions"])
    weights = np.array(ID_WEIGHTS, dtype=np.int64)
    check_chars = np.frombuffer(ID_CHECK.encode(), dtype=np.uint8)
    low = pd.Timestamp("1900-01-01")

    def shape(s: pd.Series) -> pd.Series:
        return s.str.fullmatch(r"[0-9]{17}[0-9X]").fillna(False).astype(bool)

    def dates(s: pd.Series, fmt: str) -> pd.Series:
        return pd.to_datetime(s, format=fmt, errors="coerce")

    def id_ok(s: pd.Series) -> pd.Series:
        ok = pd.Series(False, index=s.index)
        shaped = shape(s)
        v = s[shaped]
        if len(v):
            raw = np.frombuffer("".join(v.tolist()).encode("ascii"), dtype=np.uint8).reshape(-1, 18)
            total = (raw[:, :17].astype(np.int64) - 48) @ weights
            good = check_chars[total % 11] == raw[:, 17]
            born = dates(v.str.slice(6, 14), "%Y%m%d")
            good &= v.str.slice(0, 6).isin(regions).to_numpy(dtype=bool)
            good &= ((born >= low) & (born <= today)).to_numpy(dtype=bool)
            ok[shaped] = good
        return ok

    class ColumnValuesResidentIdValid(ColumnMapMetricProvider):
        condition_metric_name = "column_values.bench_resident_id_valid"

        @column_condition_partial(engine=PandasExecutionEngine)
        def _pandas(cls, column, **kwargs):
            return id_ok(column)

    class ColumnValuesDivisionValid(ColumnMapMetricProvider):
        condition_metric_name = "column_values.bench_division_valid"

        @column_condition_partial(engine=PandasExecutionEngine)
        def _pandas(cls, column, **kwargs):
            s = column
            length = s.str.len()
            return (
                s.str.fullmatch(r"[0-9]{6}(?:[0-9]{3}){0,2}").fillna(False).astype(bool)
                & (s.str.slice(0, 6) != "000000")
                & ~((length >= 9) & (s.str.slice(6, 9) == "000"))
                & ~((length == 12) & (s.str.slice(9, 12) == "000"))
                & s.str.slice(0, 6).isin(current)
            )

    class ColumnValuesDateInRange(ColumnMapMetricProvider):
        condition_metric_name = "column_values.bench_birth_date_in_range"

        @column_condition_partial(engine=PandasExecutionEngine)
        def _pandas(cls, column, **kwargs):
            d = dates(column, "%Y-%m-%d")
            return (d >= low) & (d <= today)

    class ColumnValuesFresh(ColumnMapMetricProvider):
        condition_metric_name = "column_values.bench_verified_recently"

        @column_condition_partial(engine=PandasExecutionEngine)
        def _pandas(cls, column, **kwargs):
            return dates(column, "%Y-%m-%d") >= cutoff

    class ColumnPairSexMatchesId(ColumnPairMapMetricProvider):
        condition_metric_name = "column_pair_values.bench_sex_matches_id"

        @column_pair_condition_partial(engine=PandasExecutionEngine)
        def _pandas(cls, column_A, column_B, **kwargs):
            shaped = shape(column_A)
            odd = pd.to_numeric(column_A.str.slice(16, 17), errors="coerce") % 2 == 1
            sex = column_B.str.strip()
            return ~shaped | ((odd & (sex == "1")) | (~odd & (sex == "2")))

    class ColumnPairBirthDateMatchesId(ColumnPairMapMetricProvider):
        condition_metric_name = "column_pair_values.bench_birth_date_matches_id"

        @column_pair_condition_partial(engine=PandasExecutionEngine)
        def _pandas(cls, column_A, column_B, **kwargs):
            encoded = dates(column_A.str.slice(6, 14), "%Y%m%d")
            given = dates(column_B, "%Y-%m-%d")
            return ~shape(column_A) | (encoded == given) | (encoded.isna() & given.isna())

    class ColumnPairSameProvince(ColumnPairMapMetricProvider):
        condition_metric_name = "column_pair_values.bench_same_province"

        @column_pair_condition_partial(engine=PandasExecutionEngine)
        def _pandas(cls, column_A, column_B, **kwargs):
            return ~shape(column_A) | (column_A.str.slice(0, 2) == column_B.str.slice(0, 2))

    class ExpectColumnValuesToBeValidResidentIds(ColumnMapExpectation):
        """GB 11643 resident ID numbers: shape, check character, address code, birth date."""

        map_metric = "column_values.bench_resident_id_valid"

    class ExpectColumnValuesToBeDivisionCodesInForce(ColumnMapExpectation):
        """GB/T 2260 division codes in force (6/9/12 digits)."""

        map_metric = "column_values.bench_division_valid"

    class ExpectColumnValuesToBeBirthDatesInRange(ColumnMapExpectation):
        """ISO dates between 1900-01-01 and today."""

        map_metric = "column_values.bench_birth_date_in_range"

    class ExpectColumnValuesToBeVerifiedRecently(ColumnMapExpectation):
        """ISO dates not before the freshness cut-off."""

        map_metric = "column_values.bench_verified_recently"

    class PairExpectation(ColumnPairMapExpectation):
        """A column pair expectation that skips rows where either value is missing (as dgov's rules do)."""

        ignore_row_if: Literal["both_values_are_missing", "either_value_is_missing", "neither"] = (
            "either_value_is_missing"
        )
        success_keys = ("column_A", "column_B", "ignore_row_if", "mostly")

    class ExpectColumnPairSexToMatchResidentId(PairExpectation):
        """The sex code agrees with the ID number's 17th digit."""

        map_metric = "column_pair_values.bench_sex_matches_id"

    class ExpectColumnPairBirthDateToMatchResidentId(PairExpectation):
        """The birth date equals the one in the ID number."""

        map_metric = "column_pair_values.bench_birth_date_matches_id"

    class ExpectColumnPairDivisionInResidentIdProvince(PairExpectation):
        """The division lies in the ID number's province."""

        map_metric = "column_pair_values.bench_same_province"

    pair = {"ignore_row_if": "either_value_is_missing"}
    regex = "^(?:" + spec["phone_pattern"] + ")$"
    return {
        "id_number.checksum": ExpectColumnValuesToBeValidResidentIds(column="id_number"),
        "id_number.unique": gxe.ExpectColumnValuesToBeUnique(column="id_number"),
        "name.required": gxe.ExpectColumnValuesToNotBeNull(column="name"),
        "name.length": gxe.ExpectColumnValueLengthsToBeBetween(column="name", min_value=2, max_value=50),
        "sex.code": gxe.ExpectColumnValuesToBeInSet(column="sex", value_set=["1", "2"]),
        "sex.id_number": ExpectColumnPairSexToMatchResidentId(column_A="id_number", column_B="sex", **pair),
        "birth_date.id_number": ExpectColumnPairBirthDateToMatchResidentId(
            column_A="id_number", column_B="birth_date", **pair
        ),
        "birth_date.range": ExpectColumnValuesToBeBirthDatesInRange(column="birth_date"),
        "division.valid": ExpectColumnValuesToBeDivisionCodesInForce(column="division_code"),
        "division.id_region": ExpectColumnPairDivisionInResidentIdProvince(
            column_A="id_number", column_B="division_code", **pair
        ),
        "phone.format": gxe.ExpectColumnValuesToMatchRegex(column="phone", regex=regex),
        "verified_at.fresh": ExpectColumnValuesToBeVerifiedRecently(column="verified_at"),
    }


def run_gx(data: str, spec: dict) -> dict:
    """A GX validation of the 12 expectations over the rows as a pandas DataFrame (SUMMARY results, 20 rows each)."""
    import logging

    import great_expectations as gx
    import pandas as pd

    logging.disable(logging.WARNING)
    start = time.perf_counter()
    frame = pd.read_parquet(data)
    loaded = time.perf_counter()
    context = gx.get_context(mode="ephemeral")
    batch = (
        context.data_sources.add_pandas("bench")
        .add_dataframe_asset("persons")
        .add_batch_definition_whole_dataframe("all")
    )
    expectations = gx_expectations(spec)
    suite = context.suites.add(gx.ExpectationSuite(name="persons"))
    codes = {}
    for code, expectation in expectations.items():
        added = suite.add_expectation(expectation)
        codes[added.id] = code
    validation = context.validation_definitions.add(gx.ValidationDefinition(name="persons", data=batch, suite=suite))
    result_format = {
        "result_format": "SUMMARY",
        "partial_unexpected_count": int(spec["samples"]),
        "unexpected_index_column_names": ["person_no"],
    }
    checking = time.perf_counter()
    outcome = validation.run(batch_parameters={"dataframe": frame}, result_format=result_format)
    end = time.perf_counter()
    failed, samples, errors = {}, {}, []
    for result in outcome.results:
        code = codes[result.expectation_config.id]
        if result.exception_info and result.exception_info.get("raised_exception"):
            errors.append(f"{code}: {result.exception_info.get('exception_message')}")
        failed[code] = result.result.get("unexpected_count")
        samples[code] = [
            item["person_no"] if isinstance(item, dict) else item
            for item in result.result.get("partial_unexpected_index_list") or []
        ]
    if errors:
        print("\n".join(errors), file=sys.stderr)
    return {
        "tool": "gx",
        "version": f"great_expectations {gx.__version__}, pandas {pd.__version__}",
        "rows": len(frame),
        "load_seconds": loaded - start,
        "check_seconds": end - checking,
        "setup_seconds": checking - loaded,
        "failed": failed,
        "samples": samples,
    }


def main() -> int:
    """Run one tool and print its JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tool", choices=("duckdb", "soda", "gx"))
    parser.add_argument("--data", required=True)
    parser.add_argument("--spec", required=True)
    args = parser.parse_args()
    with open(args.spec, encoding="utf-8") as handle:
        spec = json.load(handle)
    runner = {"duckdb": run_duckdb, "soda": run_soda, "gx": run_gx}[args.tool]
    print(json.dumps(runner(args.data, spec), default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
