"""The linkage engine on the labelled synthetic benchmark (dgov.linkage.engine via dgov.linkage.services)."""

import datetime
import json
import random

import numpy as np
import pytest

from dgov.kernel import validators
from dgov.linkage import config as linkage_config
from dgov.linkage import engine, normalize, services, synth
from dgov.linkage.config import LinkageConfigError, LinkSettings, TableSpec
from dgov.linkage.engine import LinkageInputError

# Measured on these benchmarks (seed 7) when the engine was written: F1 0.997 (3,000 × 2,400 link)
# and 0.994 (3,000-row dedupe, cluster pairs). The floors leave room for changes that move a few pairs.
MIN_LINK_F1 = 0.985
MIN_DEDUPE_F1 = 0.975


def _tables(benchmark, left_rows=None, right_rows=None):
    return [
        TableSpec(
            name="police",
            rows=left_rows or benchmark.left_rows,
            id_column=benchmark.left_id,
            columns=benchmark.left_columns,
        ),
        TableSpec(
            name="civil",
            rows=right_rows or benchmark.right_rows,
            id_column=benchmark.right_id,
            columns=benchmark.right_columns,
        ),
    ]


@pytest.fixture(scope="module")
def linked(link_benchmark):
    """The benchmark linked with the default settings."""
    result = services.link(LinkSettings(tables=_tables(link_benchmark)))
    yield result
    result.close()


def test_link_benchmark_f1(linked, link_benchmark):
    scores = synth.evaluate(linked.pair_ids(), link_benchmark.truth)
    assert scores.f1 >= MIN_LINK_F1, scores
    assert scores.precision >= 0.975 and scores.recall >= 0.985, scores


def test_equal_valid_ids_are_deterministic_matches(linked, link_benchmark):
    left = {r["记录号"]: r["公民身份号码"] for r in link_benchmark.left_rows}
    right = {r["id"]: r["sfzh"] for r in link_benchmark.right_rows}
    pairs = linked.pairs()
    deterministic = {(a[1], b[1]) for a, b, _p, det in pairs if det}
    expected = {
        (a, b)
        for a, b in link_benchmark.truth
        if right[b] == left[a]  # same number, written the same way and therefore valid
    }
    assert expected <= deterministic
    # Full-width digits and first-generation 15-digit numbers are the same number once normalized.
    assert all(normalize.identifier(right[b]).value == left[a] for a, b in deterministic)
    assert all(p == 1.0 for _a, _b, p, det in pairs if det)
    assert linked.counts["deterministic_pairs"] == len(deterministic)


def test_model_summary(linked):
    summary = linked.summary()
    json.dumps(summary)  # serializable
    model = summary["model"]
    assert 0 < model["lambda"] < 1e-3
    assert set(model["comparisons"]) == {"family_name", "given_name", "birth_date", "identifier", "sex", "contact"}
    given = {level["level"]: level for level in model["comparisons"]["given_name"]}
    # Homophones and look-alikes are evidence for a match, a different name strong evidence against.
    assert given["homophone"]["weight"] > 3 and given["lookalike"]["weight"] > 3
    assert given["different"]["weight"] < -3
    identifier = {level["level"]: level for level in model["comparisons"]["identifier"]}
    assert identifier["different_valid"]["weight"] < -8  # different valid numbers: different persons
    assert identifier["transposed_or_typo"]["weight"] > 8
    assert summary["counts"]["candidate_pairs"] >= summary["counts"]["accepted_pairs"]


def test_chinese_errors_link_and_relatives_do_not(link_benchmark):
    """Hand-made rows added to the benchmark: one person with typical errors, and her sister."""
    born = datetime.date(1985, 6, 21)
    person_id = validators.make_resident_id("370102", born, 124)
    sister_id = validators.make_resident_id("370102", datetime.date(1988, 2, 9), 126)
    address = "山东省济南市历下区文化东路88号"
    left = [
        *link_benchmark.left_rows,
        {"记录号": "T1", "姓名": "张晓明", "性别": "女", "出生日期": born.isoformat(), "公民身份号码": person_id,
         "户籍地址": address, "联系电话": "13912345678"},
        {"记录号": "T2", "姓名": "张丽华", "性别": "女", "出生日期": "1988-02-09", "公民身份号码": sister_id,
         "户籍地址": address, "联系电话": "13912345678"},
    ]  # fmt: skip
    right = [
        *link_benchmark.right_rows,
        # homophone 晓明 → 小鸣, transposed day, no ID, full-width phone, address without the province
        {"id": "U1", "xm": "张 小鸣", "xb": "2", "csrq": "1985年6月12日", "sfzh": "",
         "jzdz": "济南市历下区文化东路88号", "yzbm": "", "lxdh": "１３９１２３４５６７８"},
    ]  # fmt: skip
    with services.link(LinkSettings(tables=_tables(link_benchmark, left, right))) as result:
        pairs = {(a[1], b[1]): p for a, b, p, _det in result.pairs()}
    assert ("T1", "U1") in pairs
    assert ("T2", "U1") not in pairs


def test_lookalike_surname_and_transposed_id(link_benchmark):
    born = datetime.date(1979, 11, 3)
    number = validators.make_resident_id("370203", born, 311)
    i = next(i for i in range(14, 6, -1) if number[i] != number[i + 1])
    swapped = number[:i] + number[i + 1] + number[i] + number[i + 2 :]
    left = [
        *link_benchmark.left_rows,
        {"记录号": "T3", "姓名": "侯建国", "性别": "男", "出生日期": "1979-11-03", "公民身份号码": number,
         "户籍地址": "山东省青岛市市北区辽宁路5号", "联系电话": "13700000001"},
    ]  # fmt: skip
    right = [
        *link_benchmark.right_rows,
        # 侯 → 候 (look-alike), two ID digits swapped (invalid now), moved, new phone
        {"id": "U3", "xm": "候建国", "xb": "男", "csrq": "19791103", "sfzh": swapped,
         "jzdz": "山东省烟台市芝罘区南大街9号", "yzbm": "", "lxdh": "13800000002"},
    ]  # fmt: skip
    assert not validators.is_valid_resident_id(swapped)
    with services.link(LinkSettings(tables=_tables(link_benchmark, left, right))) as result:
        assert ("T3", "U3") in set(result.pair_ids())


def test_dedupe_benchmark_f1(dedupe_benchmark):
    settings = LinkSettings(
        mode="dedupe",
        tables=[
            TableSpec(
                name="persons",
                rows=dedupe_benchmark.rows,
                id_column=dedupe_benchmark.id_column,
                columns=dedupe_benchmark.columns,
            )
        ],
    )
    with services.link(settings) as result:
        clusters = result.clusters()
        predicted = synth.pairs_from_clusters([[row for _t, row in members] for members in clusters.values()])
        assert sum(len(m) for m in clusters.values()) == len(dedupe_benchmark.rows)
        assert result.counts["clusters"] == len(clusters)
    scores = synth.evaluate(predicted, dedupe_benchmark.truth, ordered=False)
    assert scores.f1 >= MIN_DEDUPE_F1, scores


def test_one_to_one(link_benchmark):
    with services.link(LinkSettings(tables=_tables(link_benchmark), one_to_one=True)) as result:
        ids = result.pair_ids()
        assert len({a for a, _b in ids}) == len(ids) == len({b for _a, b in ids})
        assert synth.evaluate(ids, link_benchmark.truth).f1 >= MIN_LINK_F1


def test_configured_blocking_and_budget(link_benchmark, monkeypatch):
    settings = LinkSettings(tables=_tables(link_benchmark), blocking=[["phone"]])
    with services.link(settings) as result:
        # The identifier rule always runs first: it is the deterministic pass.
        assert result.rules == [("identifier",), ("phone",)]
    monkeypatch.setattr(engine, "OPTIONAL_PAIR_BUDGET", 0)
    with services.link(LinkSettings(tables=_tables(link_benchmark))) as result:
        assert ("name_pinyin",) not in result.rules
        assert result.summary()["blocking_skipped"] == [["name_pinyin"]]


def test_threshold_trades_recall_for_precision(link_benchmark):
    scores = {}
    for threshold in (0.5, 0.999):
        with services.link(LinkSettings(tables=_tables(link_benchmark), threshold=threshold)) as result:
            scores[threshold] = synth.evaluate(result.pair_ids(), link_benchmark.truth)
    assert scores[0.999].precision >= scores[0.5].precision
    assert scores[0.999].recall <= scores[0.5].recall


def _enterprises(count: int, seed: int):
    """Two registers of enterprises: names, USCCs, addresses; the second with errors."""
    rng = random.Random(seed)
    words = [
        "华信",
        "泰山",
        "齐鲁",
        "海岳",
        "鲁能",
        "金泉",
        "恒通",
        "宏达",
        "永盛",
        "天诚",
        "瑞丰",
        "东方",
        "新兴",
        "明德",
        "汇源",
        "同创",
    ]
    trades = ["科技", "商贸", "建材", "物流", "食品", "机械", "文化", "医药", "餐饮", "电子"]
    left, right, truth = [], [], set()
    for i in range(count):
        name = f"济南{rng.choice(words)}{rng.choice(words)}{rng.choice(trades)}有限公司"
        code = validators.make_uscc("9", "1", "370102", serial=i)
        address = f"山东省济南市历下区{rng.choice(['经十路', '解放路', '山大路'])}{rng.randint(1, 999)}号"
        left.append({"uid": f"E{i}", "企业名称": name, "统一社会信用代码": code, "住所": address})
        if rng.random() < 0.7:
            other = name.replace("有限公司", "有限责任公司") if rng.random() < 0.3 else name
            right.append({"rid": f"F{i}", "name": other, "uscc": code if rng.random() < 0.6 else "", "addr": address})
            truth.add((f"E{i}", f"F{i}"))
    return left, right, truth


def test_organizations():
    left, right, truth = _enterprises(600, seed=3)
    settings = LinkSettings(
        entity="organization",
        identifier_kind="uscc",
        tables=[
            TableSpec(
                name="market",
                rows=left,
                id_column="uid",
                columns={"企业名称": "full_name", "统一社会信用代码": "identifier", "住所": "address"},
            ),
            TableSpec(
                name="tax",
                rows=right,
                id_column="rid",
                columns={"name": "full_name", "uscc": "identifier", "addr": "address"},
            ),
        ],
    )
    with services.link(settings) as result:
        scores = synth.evaluate(result.pair_ids(), truth)
    assert scores.f1 >= 0.95, scores


# --- bad input ----------------------------------------------------------------------------------


def test_missing_column_is_named(link_benchmark):
    tables = _tables(link_benchmark)
    tables[1].columns = {**tables[1].columns, "no_such_column": "city"}
    with pytest.raises(LinkageInputError, match="no_such_column"):
        services.link(LinkSettings(tables=tables))


def test_duplicate_and_blank_ids_are_refused(link_benchmark):
    rows = [dict(r) for r in link_benchmark.right_rows[:50]]
    rows[1]["id"] = rows[0]["id"]
    with pytest.raises(LinkageInputError, match=rows[0]["id"]):
        services.link(LinkSettings(tables=_tables(link_benchmark, right_rows=rows)))
    rows[1]["id"] = " "
    with pytest.raises(LinkageInputError, match="为空"):
        services.link(LinkSettings(tables=_tables(link_benchmark, right_rows=rows)))


def test_missing_file_and_gb18030_file(tmp_path):
    table = TableSpec(name="t", path=tmp_path / "missing.csv", columns={"姓名": "full_name"})
    with pytest.raises(LinkageInputError, match="missing.csv"):
        services.link(LinkSettings(mode="dedupe", tables=[table]))
    path = tmp_path / "gbk.csv"
    path.write_bytes("姓名,出生日期\n张三,1990-01-02\n张三,1990/1/2\n李四,1991-05-06\n".encode("gb18030"))
    table = TableSpec(name="t", path=path, columns={"姓名": "full_name", "出生日期": "birth_date"})
    with services.link(LinkSettings(mode="dedupe", tables=[table])) as result:
        assert result.counts["records"] == 3
        # Decoded correctly; rows are numbered from 1 when no id column is given.
        assert result.record_values(["full_name"])[("t", "3")] == {"full_name": "李四"}


def test_settings_are_validated():
    table = TableSpec(name="t", rows=[], columns={"姓名": "full_name"})
    with pytest.raises(LinkageConfigError, match="mode"):
        LinkSettings(tables=[table], mode="merge").validate()
    with pytest.raises(LinkageConfigError, match="至少需要 2 张表"):
        LinkSettings(tables=[table], mode="link").validate()
    with pytest.raises(LinkageConfigError, match="threshold"):
        LinkSettings(tables=[table], mode="dedupe", threshold=1.5).validate()
    with pytest.raises(LinkageConfigError, match="surname"):
        LinkSettings(tables=[TableSpec(name="t", rows=[], columns={"x": "surname"})], mode="dedupe").validate()
    with pytest.raises(LinkageConfigError, match="phone"):
        LinkSettings(tables=[table], mode="dedupe", blocking=[["phone"]]).validate()
    assert linkage_config.BLOCKING_KEYS  # the documented key list exists


# --- building blocks ----------------------------------------------------------------------------


def test_connected_components_are_transitive():
    labels = engine.connected_components(6, np.array([0, 3, 1]), np.array([1, 4, 2]))
    assert labels.tolist() == [0, 0, 0, 1, 1, 2]


def test_one_to_one_keeps_the_best_pair_per_record():
    keep = engine.one_to_one(np.array([0, 0, 1, 2]), np.array([5, 6, 5, 7]))
    assert keep.tolist() == [True, False, False, True]
