"""Golden records under "one data, one source", and conflicts (dgov.linkage.golden via services)."""

import csv

from dgov.linkage import golden, services
from dgov.linkage.config import LinkSettings, TableSpec
from dgov.linkage.golden import SourceRef, build_golden_records

AUTHORITY = {"full_name": "police", "birth_date": "police", "phone": "civil", "address": "civil"}

RECORDS = {
    # cluster 1: police and civil agree up to formatting; civil has a homophone in the name
    SourceRef("police", "P1"): {"full_name": "张晓明", "birth_date": "1985-06-21", "phone": "13912345678",
                                "address": "山东省济南市历下区文化东路88号"},
    SourceRef("civil", "C1"): {"full_name": "张 小鸣", "birth_date": "1985年6月21日", "phone": "+86 139-1234-5678",
                               "address": "济南市历下区文化东路88号"},
    SourceRef("health", "H1"): {"full_name": "张晓明", "birth_date": "19850621", "phone": "13900000000",
                                "address": None},
    # cluster 2: two police records that disagree (a duplicate in the authority), civil has no phone
    SourceRef("police", "P2"): {"full_name": "李四", "birth_date": "1990-01-02", "phone": "", "address": ""},
    SourceRef("police", "P3"): {"full_name": "李泗", "birth_date": "1990-01-02", "phone": "", "address": ""},
    SourceRef("police", "P4"): {"full_name": "李四", "birth_date": "1990-01-02", "phone": "", "address": ""},
    SourceRef("civil", "C2"): {"full_name": "李四", "birth_date": "1990-01-02", "phone": "", "address": "文化路1号"},
    SourceRef("health", "H2"): {"full_name": "李四", "birth_date": "1990-01-02", "phone": "13800000000",
                                "address": ""},
    # cluster 3: only the health department knows this person
    SourceRef("health", "H3"): {"full_name": "王五", "birth_date": "1970-07-07", "phone": "13700000000",
                                "address": "x路1号"},
}  # fmt: skip
CLUSTERS = {
    1: [SourceRef("police", "P1"), SourceRef("civil", "C1"), SourceRef("health", "H1")],
    2: [SourceRef("police", "P2"), SourceRef("police", "P3"), SourceRef("police", "P4"), SourceRef("civil", "C2"),
        SourceRef("health", "H2")],
    3: [SourceRef("health", "H3")],
}  # fmt: skip


def _conflicts(result, cluster_id):
    return {(c.role, c.kind, str(c.source)) for c in result.conflicts if c.cluster_id == cluster_id}


def test_every_value_comes_from_its_authority_with_lineage():
    result = build_golden_records(CLUSTERS, RECORDS, AUTHORITY)
    first = next(r for r in result.records if r.cluster_id == 1)
    assert first.values["full_name"] == golden.GoldenValue("张晓明", SourceRef("police", "P1"))
    assert first.values["birth_date"].source == SourceRef("police", "P1")
    assert first.values["phone"] == golden.GoldenValue("+86 139-1234-5678", SourceRef("civil", "C1"))
    assert first.values["address"].source == SourceRef("civil", "C1")
    assert len(first.members) == 3


def test_formatting_is_not_a_conflict_but_a_homophone_is():
    result = build_golden_records(CLUSTERS, RECORDS, AUTHORITY)
    assert _conflicts(result, 1) == {
        ("full_name", "differs", "civil:C1"),  # 小鸣 is not 晓明
        ("phone", "differs", "health:H1"),
    }
    conflict = next(c for c in result.conflicts if c.source == SourceRef("civil", "C1"))
    assert conflict.reference_source == SourceRef("police", "P1") and conflict.reference_value == "张晓明"
    finding = conflict.as_finding()
    assert finding["dimension"] == "准确性" and finding["table"] == "civil" and finding["row_id"] == "C1"


def test_duplicates_in_the_authority_and_missing_values():
    result = build_golden_records(CLUSTERS, RECORDS, AUTHORITY)
    second = next(r for r in result.records if r.cluster_id == 2)
    # 李四 twice against 李泗 once: the majority wins, the odd one out is reported.
    assert second.values["full_name"] == golden.GoldenValue("李四", SourceRef("police", "P2"))
    # The civil record (the phone's authority) has no phone: the health department's is not copied.
    assert second.values["phone"] == golden.GoldenValue(None, None)
    assert _conflicts(result, 2) == {
        ("full_name", "authority_inconsistent", "police:P3"),
        ("phone", "missing_in_authority", "civil:C2"),
    }
    missing = next(c for c in result.conflicts if c.kind == "missing_in_authority")
    assert missing.dimension == "完整性"
    assert missing.reference_source == SourceRef("health", "H2") and missing.reference_value == "13800000000"


def test_entities_unknown_to_the_authority_get_no_value_and_no_conflict():
    result = build_golden_records(CLUSTERS, RECORDS, AUTHORITY)
    third = next(r for r in result.records if r.cluster_id == 3)
    assert all(value == golden.GoldenValue(None, None) for value in third.values.values())
    assert _conflicts(result, 3) == set()


def test_tuples_are_accepted_and_csv_is_written(tmp_path):
    clusters = {7: [("police", "P1"), ("civil", "C1")]}
    records = {(ref.table, ref.row_id): values for ref, values in RECORDS.items()}
    result = build_golden_records(clusters, records, {"full_name": "police"})
    assert golden.write_golden_records(tmp_path / "g.csv", result) == 1
    assert golden.write_conflicts(tmp_path / "c.csv", result.conflicts) == 1
    with (tmp_path / "g.csv").open(encoding="utf-8") as handle:
        row = next(csv.DictReader(handle))
    assert row == {"cluster_id": "7", "members": "2", "full_name": "张晓明", "full_name_source": "police:P1"}
    with (tmp_path / "c.csv").open(encoding="utf-8") as handle:
        conflict = next(csv.DictReader(handle))
    assert conflict["kind"] == "differs" and conflict["value"] == "张 小鸣" and conflict["reference_row_id"] == "P1"


def test_golden_records_from_a_linkage_result(link_benchmark):
    tables = [
        TableSpec(name="police", rows=link_benchmark.left_rows, id_column=link_benchmark.left_id,
                  columns=link_benchmark.left_columns),
        TableSpec(name="civil", rows=link_benchmark.right_rows, id_column=link_benchmark.right_id,
                  columns=link_benchmark.right_columns),
    ]  # fmt: skip
    with services.link(LinkSettings(tables=tables)) as result:
        clusters = result.clusters()
        built = services.golden_records(result, {"full_name": "police", "phone": "civil"})
    assert len(built.records) == len(clusters)
    police_rows = {r["记录号"]: r for r in link_benchmark.left_rows}
    for record in built.records:
        name = record.values["full_name"]
        if any(m.table == "police" for m in record.members):
            assert name.source.table == "police" and name.value == police_rows[name.source.row_id]["姓名"]
        else:
            assert name == golden.GoldenValue(None, None)
        assert record.values["phone"].source is None or record.values["phone"].source.table == "civil"
    kinds = {c.kind for c in built.conflicts}
    assert "differs" in kinds and kinds <= set(golden.CONFLICT_DIMENSIONS)
