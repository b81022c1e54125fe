"""``dgov link``: generate the benchmark, run a config end to end, bad configs (dgov.linkage CLI and services)."""

import csv
import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from dgov.linkage import services


def _run(*args) -> str:
    out = io.StringIO()
    call_command("link", *args, stdout=out)
    return out.getvalue()


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """A 900 × 700 benchmark written by ``dgov link --generate`` (CSV files, truth, link.yaml)."""
    directory = tmp_path_factory.mktemp("link")
    output = _run("--generate", str(directory), "--size", "900x700", "--seed", "5")
    assert "link.yaml" in output
    return directory


def test_generate_writes_tables_truth_and_config(generated):
    police, civil, truth = (_rows(generated / f) for f in ("police.csv", "civil.csv", "truth.csv"))
    assert (len(police), len(civil)) == (900, 700)
    assert len(truth) == 525  # 75 % of the second department
    assert set(police[0]) >= {"记录号", "姓名", "公民身份号码"} and set(civil[0]) >= {"id", "xm", "sfzh"}
    assert "mode: link" in (generated / "link.yaml").read_text(encoding="utf-8")


def test_link_end_to_end(generated):
    output = _run(
        "--config", str(generated / "link.yaml"), "--truth", str(generated / "truth.csv"),
        "--summary", str(generated / "out" / "summary.json"),
    )  # fmt: skip
    assert "实体识别完成" in output and "F1" in output
    summary = json.loads((generated / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["scores"]["f1"] >= 0.97
    assert summary["counts"]["records"] == 1600

    pairs = _rows(generated / "out" / "pairs.csv")
    assert list(pairs[0])[:8] == [
        "left_table", "left_id", "right_table", "right_id", "match_probability", "match_weight", "method", "accepted",
    ]  # fmt: skip
    assert {p["left_table"] for p in pairs} == {"police"} and {p["right_table"] for p in pairs} == {"civil"}
    assert {p["method"] for p in pairs} == {"deterministic", "probabilistic"}
    assert all(p["accepted"] == "true" and float(p["match_probability"]) >= 0.9 for p in pairs)
    assert {"given_name", "birth_date", "contact"} <= set(pairs[0])  # agreement level per comparison

    clusters = _rows(generated / "out" / "clusters.csv")
    assert len(clusters) == 1600  # every record, singletons included
    sizes = {}
    for row in clusters:
        sizes.setdefault(row["cluster_id"], set()).add((row["table"], row["row_id"]))
    assert all(int(row["cluster_size"]) == len(sizes[row["cluster_id"]]) for row in clusters)

    golden = _rows(generated / "out" / "golden.csv")
    assert len(golden) == len(sizes)
    with_police = [g for g in golden if g["full_name_source"]]
    assert with_police and all(g["full_name_source"].startswith("police:") for g in with_police)
    assert all(g["phone_source"].startswith("civil:") for g in golden if g["phone_source"])
    conflicts = _rows(generated / "out" / "conflicts.csv")
    assert conflicts and {c["dimension"] for c in conflicts} <= {"准确性", "完整性"}


def test_pairs_below_threshold_on_request(generated, tmp_path):
    config = (generated / "link.yaml").read_text(encoding="utf-8")
    config = config.replace("pairs: out/pairs.csv", "pairs: out/all.csv\n  pairs_min_probability: 0.01")
    path = generated / "all.yaml"
    path.write_text(config, encoding="utf-8")
    _run("--config", str(path))
    pairs = _rows(generated / "out" / "all.csv")
    assert {p["accepted"] for p in pairs} == {"true", "false"}
    assert all(float(p["match_probability"]) >= 0.01 for p in pairs)


def test_progress_is_reported(generated):
    steps = []
    report = services.run_job(
        generated / "link.yaml", progress=lambda description, done, total: steps.append((description, done, total))
    )
    assert report.counts["accepted_pairs"] > 0
    done = [d for _description, d, _total in steps]
    assert done == sorted(set(done)) and done[0] == 0
    assert steps[-1][1] == steps[-1][2]  # complete at the end


def test_dedupe_end_to_end(tmp_path):
    _run("--generate", str(tmp_path), "--dedupe", "800", "--seed", "3")
    output = _run("--config", str(tmp_path / "link.yaml"), "--truth", str(tmp_path / "truth.csv"))
    assert "实体识别完成" in output
    f1 = float(output.rsplit("F1", 1)[1].split()[0])
    assert f1 >= 0.95
    clusters = _rows(tmp_path / "out" / "clusters.csv")
    assert {c["table"] for c in clusters} == {"persons"} and len(clusters) == 800


# --- bad configs ---------------------------------------------------------------------------------


def _config(tmp_path, text: str) -> str:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


GOOD_TABLE = """
  - name: a
    path: a.csv
    columns: {姓名: full_name, 出生日期: birth_date}
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tables: [", "不是有效的 YAML"),
        ("- just a list", "应为键值映射"),
        ("tables: []\noutput: {pairs: p.csv}", "tables：应为非空列表"),
        ("mode: dedupe\ntables:" + GOOD_TABLE + "output: {pairs: p.csv}\nthreshhold: 0.5", "未知的键 threshhold"),
        ("mode: dedupe\ntables:" + GOOD_TABLE.replace("full_name", "fullname") + "output: {pairs: p.csv}", "fullname"),
        ("mode: dedupe\ntables:" + GOOD_TABLE + "output: {}", "至少要给出 pairs 或 clusters"),
        ("mode: dedupe\ntables:" + GOOD_TABLE + "output: {pairs: p.csv}\nthreshold: high", "threshold：应为数字"),
        ("mode: dedupe\ntables:" + GOOD_TABLE + "output: {pairs: p.csv}\nblocking: [[phone]]", "phone"),
        ("mode: link\ntables:" + GOOD_TABLE + "output: {pairs: p.csv}", "至少需要 2 张表"),
        (
            "mode: dedupe\ntables:"
            + GOOD_TABLE
            + "output: {pairs: p.csv}\ngolden: {authority: {phone: a}, records: g.csv}",
            "没有映射角色“phone”",
        ),
        (
            "mode: dedupe\ntables:"
            + GOOD_TABLE
            + "output: {pairs: p.csv}\ngolden: {authority: {full_name: b}, records: g.csv}",
            "不是 tables 中的表",
        ),
    ],
)
def test_bad_config_gives_a_clear_error(tmp_path, text, message):
    with pytest.raises(CommandError, match=message):
        _run("--config", _config(tmp_path, text))


def test_missing_config_file_and_table_file(tmp_path):
    with pytest.raises(CommandError, match="不存在"):
        _run("--config", str(tmp_path / "nope.yaml"))
    with pytest.raises(CommandError, match="a.csv"):
        _run("--config", _config(tmp_path, "mode: dedupe\ntables:" + GOOD_TABLE + "output: {pairs: p.csv}"))


def test_failed_run_leaves_earlier_results_intact(generated):
    _run("--config", str(generated / "link.yaml"))
    before = (generated / "out" / "pairs.csv").read_bytes()
    broken = (generated / "link.yaml").read_text(encoding="utf-8").replace("xm: full_name", "姓名xm: full_name")
    path = generated / "broken.yaml"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(CommandError, match="找不到列 姓名xm"):
        _run("--config", str(path))
    assert (generated / "out" / "pairs.csv").read_bytes() == before
    assert not list((generated / "out").glob(".*.tmp"))


def test_generate_refuses_bad_sizes(tmp_path):
    with pytest.raises(CommandError, match="--size"):
        _run("--generate", str(tmp_path), "--size", "lots")
