"""The rule library and the DuckDB engine on plain DuckDB tables (as a benchmark would call it)."""

import datetime

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dgov.kernel.validators import (
    USCC_ALPHABET,
    is_valid_resident_id,
    is_valid_uscc,
    make_resident_id,
    make_uscc,
    uscc_check_digit,
    validate_division_code,
)
from dgov.quality import rules as rule_lib
from dgov.quality.engine import EngineError, evaluate
from dgov.quality.rules import Context, RuleError, RuleSpec, compile_rule

pytestmark = pytest.mark.django_db


def _table(rows: list[dict], columns: dict[str, str]):
    """A DuckDB connection with table ``t`` holding ``rows``."""
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t ({', '.join(f'{name} {kind}' for name, kind in columns.items())})")
    for row in rows:
        names = list(row)
        con.execute(
            f"INSERT INTO t ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
            [row[name] for name in names],
        )
    return con


def _valid_in_sql(expr_sql: str, values: list[str], ctes: tuple = ()) -> list[bool]:
    """Evaluate a validity SQL expression over text values (one query)."""
    con = duckdb.connect()
    con.execute("CREATE TABLE v (i INTEGER, x VARCHAR)")
    con.executemany("INSERT INTO v VALUES (?, ?)", list(enumerate(values)))
    prefix = ("WITH " + ", ".join(f"{name} AS ({sql})" for name, sql in ctes) + " ") if ctes else ""
    rows = con.execute(f"{prefix}SELECT i, coalesce({expr_sql}, FALSE) FROM v ORDER BY i").fetchall()
    return [bool(ok) for _i, ok in rows]


def test_one_query_counts_failures_and_keeps_samples():
    good = make_resident_id("370102", datetime.date(1990, 1, 1), 11)
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    con = _table(
        [
            {"k": "a", "id": good, "sex": "1", "age": 30, "name": "张三"},
            {"k": "b", "id": bad, "sex": "2", "age": 300, "name": None},
            {"k": "c", "id": None, "sex": "9", "age": None, "name": " "},
        ],
        {"k": "VARCHAR", "id": "VARCHAR", "sex": "VARCHAR", "age": "BIGINT", "name": "VARCHAR"},
    )
    result = evaluate(
        con.table("t"),
        [
            RuleSpec("nn", "not_null", ("name",)),
            RuleSpec("id", "id_number", ("id",)),
            RuleSpec("sex", "in_set", ("sex",), {"values": ["1", "2"]}),
            RuleSpec("age", "range", ("age",), {"min": 0, "max": 150}),
            RuleSpec("both", "id_sex", ("id", "sex")),
        ],
        key="k",
        samples=5,
    )
    assert result.rows == 3
    outcomes = result.outcomes
    assert (outcomes["nn"].checked, outcomes["nn"].failed) == (3, 2)  # NULL and blank
    assert [s["key"] for s in outcomes["nn"].samples] == ["b", "c"]
    assert (outcomes["id"].checked, outcomes["id"].failed) == (2, 1)  # NULL is not checked
    assert outcomes["id"].samples == [{"key": "b", "values": {"id": bad}}]
    assert (outcomes["sex"].checked, outcomes["sex"].failed) == (3, 1)
    assert (outcomes["age"].checked, outcomes["age"].failed) == (2, 1)
    assert outcomes["age"].samples[0]["values"] == {"age": "300"}
    assert (outcomes["both"].checked, outcomes["both"].failed) == (2, 1)  # b: odd sequence, female code
    assert outcomes["nn"].pass_rate == pytest.approx(100 / 3)
    assert "_dq_flags" in result.sql and result.sql.count("FROM _dq_flags") == 1


def test_samples_are_limited_and_ordered():
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT range AS n, 'k' || lpad(range::VARCHAR, 3, '0') AS k FROM range(100)")
    result = evaluate(con.table("t"), [RuleSpec("even", "range", ("n",), {"max": -1})], key="k", samples=3)
    assert result.outcomes["even"].failed == 100
    assert [s["key"] for s in result.outcomes["even"].samples] == ["k000", "k001", "k002"]
    none = evaluate(con.table("t"), [RuleSpec("even", "range", ("n",), {"max": -1})], key="k", samples=0)
    assert none.outcomes["even"].samples == []


def test_unique_pattern_length_and_date_range():
    con = _table(
        [
            {"k": "1", "code": "A1", "d": "2020-01-01"},
            {"k": "2", "code": "A1", "d": "2999-01-01"},
            {"k": "3", "code": "B22", "d": "not a date"},
        ],
        {"k": "VARCHAR", "code": "VARCHAR", "d": "VARCHAR"},
    )
    ctx = Context(
        columns={"k": rule_lib.Column("k"), "code": rule_lib.Column("code"), "d": rule_lib.Column("d", "date")}
    )
    result = evaluate(
        con.table("t"),
        [
            RuleSpec("dup", "unique", ("code",)),
            RuleSpec("shape", "pattern", ("code",), {"pattern": "[A-Z][0-9]"}),
            RuleSpec("len", "length", ("code",), {"max": 2}),
            RuleSpec("when", "range", ("d",), {"min": "2000-01-01", "max": "today"}),
        ],
        key="k",
        context=ctx,
    )
    assert result.outcomes["dup"].failed == 2
    assert result.outcomes["shape"].failed == 1 and result.outcomes["len"].failed == 1
    assert result.outcomes["when"].failed == 2  # in the future, and not a date at all


def test_freshness_table_and_rows():
    now = datetime.datetime(2025, 6, 1, tzinfo=datetime.UTC)
    con = _table(
        [
            {"k": "1", "_updated_at": "2025-05-31T12:00:00+00:00"},
            {"k": "2", "_updated_at": "2025-01-01T00:00:00+00:00"},
        ],
        {"k": "VARCHAR", "_updated_at": "TIMESTAMPTZ"},
    )
    ctx = Context(columns=None, now=now)
    result = evaluate(
        con.table("t"),
        [
            RuleSpec("table", "freshness", (), {"cycle": "daily"}),
            RuleSpec("rows", "freshness", (), {"max_age_days": 30, "per_row": True}),
            RuleSpec("stale", "freshness", (), {"max_age_days": 0.1}),
        ],
        key="k",
        context=ctx,
    )
    assert (result.outcomes["table"].checked, result.outcomes["table"].failed) == (1, 0)
    assert (result.outcomes["rows"].checked, result.outcomes["rows"].failed) == (2, 1)
    stale = result.outcomes["stale"]
    assert (stale.checked, stale.failed) == (1, 1) and stale.samples[0]["values"]["lag_days"] == 0.5


def test_custom_sql_marks_failing_rows_and_cannot_read_files():
    con = _table([{"_uid": "a", "x": "1"}, {"_uid": "b", "x": "2"}], {"_uid": "VARCHAR", "x": "VARCHAR"})
    result = evaluate(con.table("t"), [RuleSpec("sql", "sql", ("x",), sql="SELECT _uid FROM records WHERE x = '2';")])
    assert (result.outcomes["sql"].checked, result.outcomes["sql"].failed) == (2, 1)
    con.execute("SET enable_external_access = false")
    with pytest.raises(EngineError, match="disabled"):
        evaluate(con.table("t"), [RuleSpec("f", "sql", sql="SELECT content AS _uid FROM read_text('/etc/hostname')")])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (RuleSpec("x", "nope", ("a",)), "未知的规则类型"),
        (RuleSpec("x", "pattern", ("missing",), {"pattern": "a"}), "字段“missing”不存在"),
        (RuleSpec("x", "pattern", ("a",), {}), "pattern"),
        (RuleSpec("x", "pattern", ("a",), {"pattern": "("}), "正则"),
        (RuleSpec("x", "range", ("a",), {"min": 5, "max": 1}), "min 大于 max"),
        (RuleSpec("x", "range", ("a",), {"mni": 5}), "未知的参数"),
        (RuleSpec("x", "id_sex", ("a",)), "2 个字段"),
        (RuleSpec("x", "freshness", (), {"cycle": "irregular"}), "不定期"),
        (RuleSpec("x", "sql", sql="DELETE FROM records"), "SELECT"),
        (RuleSpec("x", "sql", sql="SELECT 1; SELECT 2"), "一条语句"),
        (RuleSpec("x", "in_set", ("a",)), "values"),
        (RuleSpec("x", "reference", ("a",), {"registry": "r"}), "field"),
    ],
)
def test_bad_rules_are_refused_with_a_reason(spec, message):
    ctx = Context(columns={"a": rule_lib.Column("a")})
    with pytest.raises(RuleError, match=message):
        compile_rule(spec, ctx)


def test_regex_that_duckdb_refuses_is_an_engine_error():
    con = _table([{"_uid": "a", "x": "1"}], {"_uid": "VARCHAR", "x": "VARCHAR"})
    with pytest.raises(EngineError):
        evaluate(con.table("t"), [RuleSpec("lookbehind", "pattern", ("x",), {"pattern": "(?<=a)b"})])


# --- The SQL identifier checks agree with the kernel validators ---------------------------------------

_TODAY = datetime.date.today()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.one_of(
            st.builds(
                make_resident_id,
                st.sampled_from(["370102", "110101", "440305", "370100", "999999", "000000"]),
                st.dates(min_value=datetime.date(1890, 1, 1), max_value=datetime.date(2030, 12, 31)),
                st.integers(0, 999),
            ),
            st.text(alphabet="0123456789X", min_size=17, max_size=19),
            st.text(max_size=20),
        ),
        min_size=1,
        max_size=40,
    ),
    st.data(),
)
def test_id_number_sql_agrees_with_kernel(values, data):
    # Also break check characters of valid numbers now and then.
    values = [
        v[:-1] + data.draw(st.sampled_from("0123456789X")) if len(v) == 18 and data.draw(st.booleans()) else v
        for v in values
    ]
    regions = rule_lib._regions_cte(Context())
    sql = rule_lib.resident_id_sql("x", regions[0], _TODAY)
    got = _valid_in_sql(sql, values, (regions,))
    expected = [is_valid_resident_id(v) and v == v.strip().upper() for v in values]
    assert got == expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.one_of(
            st.builds(
                make_uscc,
                st.sampled_from(["9", "1", "5"]),
                st.sampled_from(["1", "2"]),
                st.sampled_from(["370100", "110000", "100000", "440300"]),
                serial=st.integers(0, 999_999),
            ),
            # Any 17 characters with the right final check character: authority, type, region and
            # the organization code's own check character are then what decides.
            st.text(alphabet=USCC_ALPHABET, min_size=17, max_size=17).map(lambda v: v + uscc_check_digit(v)),
            st.text(alphabet=USCC_ALPHABET + "IOZSV", min_size=17, max_size=19),
        ),
        min_size=1,
        max_size=40,
    ),
    st.data(),
)
def test_uscc_sql_agrees_with_kernel(values, data):
    values = [
        v[:-1] + data.draw(st.sampled_from(USCC_ALPHABET)) if len(v) == 18 and data.draw(st.booleans()) else v
        for v in values
    ]
    sql = rule_lib.uscc_sql("x", rule_lib._loc_codes()[2])
    assert _valid_in_sql(sql, values) == [is_valid_uscc(v) and v == v.strip().upper() for v in values]


def test_division_code_sql_agrees_with_kernel():
    values = [
        "370102",
        "370100",
        "379999",
        "370102001",
        "370102000",
        "370102001002",
        "370102001000",
        "3701",
        "000000",
        "11010",
        "110101",
        "370102x",
        "",
        "330103",
    ]  # 330103 杭州下城区: abolished in 2021

    def kernel_ok(value: str) -> bool:
        try:
            return validate_division_code(value) == value
        except Exception:
            return False

    ctes = (rule_lib._list_cte("cur", rule_lib.default_current_divisions()),)
    assert _valid_in_sql(rule_lib.division_code_sql("x", "cur"), values, ctes) == [kernel_ok(v) for v in values]
