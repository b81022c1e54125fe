"""Bulk issuance: issue_many all or nothing, CSV files with a report of every bad row, few queries, audit."""

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dgov.kernel.models import AuditRecord
from dgov.licenses import bulk, keys, services
from dgov.licenses.models import Credential, Licence, LicenceEvent
from dgov.oidc import jose

from .conftest import enterprise_id, person_id

pytestmark = pytest.mark.django_db


def driving_rows(n: int, start: int = 1) -> list[dict]:
    """``n`` good rows of 机动车驾驶证."""
    return [
        {
            "holder_name": f"驾驶员{seq}",
            "holder_id": person_id(seq),
            "data": {"vehicle_class": "C1", "first_issued_on": "2020-05-06"},
        }
        for seq in range(start, start + n)
    ]


def test_issue_many_signs_and_stores_everything(demo_types, orgs):
    licence_type = demo_types["机动车驾驶证"]
    issued = services.issue_many(licence_type, driving_rows(30), issuer=orgs["ga"], actor="system:test", source="test")
    assert len(issued) == 30 == Licence.objects.count() == Credential.objects.count() == LicenceEvent.objects.count()
    numbers = sorted(licence.number for licence in issued)
    assert numbers[0].endswith("0000001") and numbers[-1].endswith("0000030")
    assert len({licence.identifier for licence in issued}) == 30
    credential = Credential.objects.select_related("licence").first()
    _header, vc = jose.verify(credential.jws, keys.public_key)
    assert vc["credentialSubject"]["licence"]["identifier"] == credential.licence.identifier
    assert len({(c.revocation_list_id, c.revocation_index) for c in Credential.objects.all()}) == 30
    licence = issued[0]
    assert licence.valid_until is not None and licence.source == "test"
    assert services.find_by_holder("person", person_id(1))[0].identifier == issued[0].identifier
    record = AuditRecord.objects.get(action="licenses.licence.issue_many")
    assert record.detail["count"] == 30 and len(record.detail["identifiers"]) == 30
    # Numbers continue across batches and single issues.
    more = services.issue_many(licence_type, driving_rows(2, 100), issuer=orgs["ga"], actor="system:test", source="t")
    assert sorted(licence.number[-7:] for licence in more) == ["0000031", "0000032"]
    single = services.issue(licence_type, issuer=orgs["ga"], actor="system:test", **{**driving_rows(1, 200)[0]})
    assert single.number.endswith("0000033")


def test_bulk_queries_do_not_grow_with_rows(demo_types, orgs):
    licence_type = demo_types["机动车驾驶证"]
    services.issue_many(licence_type, driving_rows(2), issuer=orgs["ga"], actor="system:test", source="warm")
    with CaptureQueriesContext(connection) as small:
        services.issue_many(licence_type, driving_rows(5, 10), issuer=orgs["ga"], actor="system:test", source="t")
    with CaptureQueriesContext(connection) as large:
        services.issue_many(licence_type, driving_rows(200, 100), issuer=orgs["ga"], actor="system:test", source="t")
    # 40 times the rows: a few more statements (the database's batch size limits), never one per row.
    assert len(large.captured_queries) <= len(small.captured_queries) + 12


def test_one_bad_row_stops_the_batch_and_every_problem_is_listed(demo_types, orgs):
    licence_type = demo_types["机动车驾驶证"]
    rows = driving_rows(3)
    rows[1] = {"holder_name": "", "holder_id": "370102199001011238", "data": {"vehicle_class": "Z9"}}
    rows.append({**driving_rows(1, 50)[0], "number": "N1", "valid_from": "2026-02-30"})
    rows.append({**driving_rows(1, 51)[0], "number": "N1", "colour": "red"})
    with pytest.raises(services.BulkIssueError) as caught:
        services.issue_many(licence_type, rows, issuer=orgs["ga"], actor="system:test", source="t")
    problems = {(row, column) for row, column, _reason in caught.value.problems}
    assert problems == {
        (2, "holder_name"),
        (2, "holder_id"),
        (2, "vehicle_class"),
        (2, "first_issued_on"),
        (4, "valid_from"),
        (5, "colour"),
    }
    assert not Licence.objects.exists() and not Credential.objects.exists()
    # Numbers: duplicates within the batch and numbers already used are reported too.
    services.issue(licence_type, issuer=orgs["ga"], actor="system:test", number="USED1", **driving_rows(1, 60)[0])
    rows = [
        {**driving_rows(1, 61)[0], "number": "N2"},
        {**driving_rows(1, 62)[0], "number": "N2"},
        {**driving_rows(1, 63)[0], "number": "USED1"},
    ]
    with pytest.raises(services.BulkIssueError) as caught:
        services.issue_many(licence_type, rows, issuer=orgs["ga"], actor="system:test", source="t")
    assert {(row, column) for row, column, _r in caught.value.problems} == {(2, "number"), (3, "number")}
    assert Licence.objects.count() == 1


def test_refused_issuers_are_audited(demo_types, orgs, people_users):
    with pytest.raises(PermissionDenied):
        services.issue_many(
            demo_types["机动车驾驶证"], driving_rows(2), issuer=orgs["mz"], actor="system:test", source="t"
        )
    with pytest.raises(PermissionDenied):  # an official issuing for another department
        services.issue_many(
            demo_types["机动车驾驶证"], driving_rows(2), issuer=orgs["ga"], actor=people_users["mz"], source="t"
        )
    assert AuditRecord.objects.filter(action="licenses.licence.issue_many", outcome="denied").count() == 2
    assert not Licence.objects.exists()


CSV_GOOD = (
    "持证主体名称,持证主体证件号码,证照编号,法定代表人（负责人）,经营场所,主体业态,经营项目\n"
    "济南甲餐饮有限公司,{a},JY001,张三,济南市历下区1号,catering,热食类食品制售\n"
    "济南乙商贸有限公司,{b},,李四,济南市历下区2号,retail,预包装食品销售\n"
)


def test_csv_issues_all_rows(demo_types, orgs):
    food = demo_types["食品经营许可证"]
    data = CSV_GOOD.format(a=enterprise_id(1), b=enterprise_id(2)).encode("utf-8-sig")
    started = []
    report = bulk.issue_csv(food, data, issuer=orgs["scjg_lixia"], actor="system:test", start=started.append)
    assert report.ok, report.to_text()
    assert started == [2] and len(report.issued) == 2 and report.rows == 2
    first = Licence.objects.get(number="JY001")
    assert services.licence_data(first)["main_business"] == "catering"
    assert first.valid_until is not None  # five years by the type's rule
    # GB 18030 (as spreadsheets save it) is read too.
    data = CSV_GOOD.format(a=enterprise_id(3), b=enterprise_id(4)).replace("JY001", "JY002").encode("gb18030")
    assert bulk.issue_csv(food, data, issuer=orgs["scjg_lixia"], actor="system:test").ok


def test_csv_bad_rows_are_reported_by_line_and_column(demo_types, orgs):
    food = demo_types["食品经营许可证"]
    text = (
        "持证主体名称,持证主体证件号码,法定代表人（负责人）,经营场所,主体业态,经营项目,颜色\n"
        f"济南甲餐饮有限公司,{enterprise_id(1)},张三,济南市历下区1号,catering,热食类,红\n"
    )
    report = bulk.issue_csv(food, text.encode(), issuer=orgs["scjg_lixia"], actor="system:test")
    assert report.problems == [(1, "颜色", report.problems[0][2])]
    text = (
        "持证主体名称,持证主体证件号码,法定代表人（负责人）,经营场所,主体业态,经营项目\n"
        f"济南甲餐饮有限公司,{enterprise_id(1)},张三,济南市历下区1号,catering,热食类\n"
        "\n"
        "济南乙商贸有限公司,91370102MA0000000X,李四,济南市历下区2号,wholesale,预包装食品\n"
        "只有两列,x\n"
    )
    report = bulk.issue_csv(food, text.encode(), issuer=orgs["scjg_lixia"], actor="system:test")
    assert not report.ok
    where = {(line, column) for line, column, _reason in report.problems}
    assert where == {(5, ""), (4, "持证主体证件号码"), (4, "主体业态")}, report.problems
    assert "第 4 行 主体业态" in report.to_text()
    assert not Licence.objects.exists()
    # A header without the holder columns or a required item column.
    report = bulk.issue_csv(food, "经营场所\nx\n".encode(), issuer=orgs["scjg_lixia"], actor="system:test")
    columns = {column for _line, column, _reason in report.problems}
    assert {"持证主体名称", "持证主体证件号码", "法定代表人（负责人）", "主体业态", "经营项目"} <= columns
    assert bulk.parse_csv(food, b"")[2][0][0] == 1
    assert "持证主体名称" in bulk.csv_template(food)
