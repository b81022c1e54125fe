"""Bulk import and export of registry records (dgov.registry.io) and `dgov registry import/export`."""

import csv
import datetime as dt
import io
import json

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command
from openpyxl import Workbook, load_workbook

from dgov.kernel.models import AuditRecord, Organization
from dgov.kernel.validators import make_resident_id
from dgov.registry import io as registry_io
from dgov.registry import services
from dgov.registry.models import AccessLog, Record

pytestmark = pytest.mark.django_db

FIELDS = [
    {"name": "id_number", "label": "公民身份号码", "label_en": "ID number", "type": "resident_id",
     "sensitivity": "personal", "authority": "GA"},
    {"name": "name", "label": "姓名", "label_en": "Name", "type": "string", "required": True, "max_length": 50,
     "sensitivity": "internal", "authority": "GA"},
    {"name": "sex", "label": "性别", "type": "enum", "required": True, "choices": ["1", "2"], "authority": "GA"},
    {"name": "birth_date", "label": "出生日期", "type": "date", "required": True, "authority": "GA"},
    {"name": "phone", "label": "联系电话", "type": "phone", "sensitivity": "personal", "authority": "GA"},
    {"name": "address", "label": "户籍地址", "type": "string", "sensitivity": "personal", "authority": "GA",
     "mask": "address"},
    {"name": "division_code", "label": "户籍地区划", "type": "division_code", "required": True, "authority": "GA"},
    {"name": "children", "label": "子女数", "type": "integer", "min": 0, "authority": "GA"},
    {"name": "status", "label": "人员状态", "type": "enum", "choices": ["normal", "deceased"], "authority": "GA|WJ"},
]
HEADER = ["id_number", "name", "sex", "birth_date", "phone", "address", "division_code", "children", "status"]
LABELS = ["公民身份号码", "姓名", "性别", "出生日期", "联系电话", "户籍地址", "户籍地区划", "子女数", "人员状态"]


def pid(seq, born=dt.date(1990, 1, 1), region="370102"):
    """A valid resident ID number."""
    return make_resident_id(region, born, seq)


def person_row(seq, **changes):
    """A good row (dict by field name) for person ``seq``."""
    row = {
        "id_number": pid(seq),
        "name": f"张{'三四五六七八九十'[seq % 8]}",
        "sex": "1" if seq % 2 else "2",
        "birth_date": "1990-01-01",
        "phone": f"138{seq:08d}",
        "address": f"山东省济南市历下区泉城路{seq}号",
        "division_code": "370102",
        "children": str(seq % 3),
        "status": "normal",
    }
    row.update(changes)
    return row


def write_csv(path, rows, header=HEADER, encoding="utf-8", keys=HEADER):
    """Write rows (dicts by field name) under ``header``."""
    with open(path, "w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            writer.writerow([row.get(key, "") for key in keys])
    return path


@pytest.fixture
def orgs(province):
    """Departments: public security (authority of every field), health (status only), big data bureau."""
    make = Organization.objects.create
    return {
        "GA": make(name="山东省公安厅", code="370000-GA", uscc="11370000004312345X", level=1, division=province,
                   kind="GA"),
        "WJ": make(name="山东省卫生健康委员会", code="370000-WJ", uscc="11370000004312346X", level=1,
                   division=province, kind="WJ"),
        "DSJ": make(name="山东省大数据局", code="370000-DSJ", uscc="11370000004312347X", level=1,
                    division=province, kind="DSJ"),
    }


@pytest.fixture
def ga_official(orgs, django_user_model):
    """An official of the public security department."""
    return django_user_model.objects.create_user(
        username="ga1", password="x-Pass-12345", kind="official", display_name="王警官", department=orgs["GA"]
    )


def make_registry(orgs, code="test.person"):
    """A person registry owned by public security."""
    return services.create_registry(
        code=code, name="测试人口", owner=orgs["GA"], library_code="population", identifier_field="id_number",
        fields=FIELDS, actor="system:test", scope_field="division_code",
    )


@pytest.fixture
def registry(orgs):
    """The test person registry."""
    return make_registry(orgs)


def values_by_id(registry):
    """Current values of every live record, by ID number."""
    out = {}
    for record in Record.objects.filter(registry=registry, deleted_at__isnull=True):
        values = services.record_values(record)
        out[values["id_number"]] = values
    return out


def test_good_csv_imports_every_row(registry, ga_official, tmp_path):
    rows = [person_row(i) for i in range(1, 6)]
    rows[0]["children"] = ""  # optional and empty: left out
    path = write_csv(tmp_path / "persons.csv", rows)
    seen = []

    report = registry_io.import_file(registry, path, mapping=None, actor=ga_official,
                                     progress=lambda done, total: seen.append((done, total)))

    assert report.ok and report.status == "imported", report.to_text()
    assert (report.rows, report.imported, report.bad_rows) == (5, 5, 0)
    assert report.format == "csv" and report.encoding == "utf-8"
    assert report.columns == {h: h for h in HEADER}
    assert seen[-1] == (5, 5)
    stored = values_by_id(registry)
    assert set(stored) == {row["id_number"] for row in rows}
    second = stored[rows[1]["id_number"]]
    assert second["name"] == rows[1]["name"] and second["children"] == 2 and second["birth_date"] == "1990-01-01"
    assert "children" not in stored[rows[0]["id_number"]] or stored[rows[0]["id_number"]]["children"] is None
    found = services.find_record(registry, "id_number", rows[3]["id_number"])
    assert found is not None and services.record_values(found)["phone"] == rows[3]["phone"]
    assert all(r.created_by_org_id == ga_official.department_id for r in Record.objects.filter(registry=registry))
    assert report.rows_per_second > 0 and "导入成功" in report.to_text()


def test_bad_rows_import_nothing_and_each_is_reported(registry, ga_official, tmp_path):
    existing = person_row(90)
    services.create_record(registry, {k: v for k, v in existing.items() if v}, actor=ga_official)
    good_id = pid(1)
    bad_checksum = good_id[:17] + ("0" if good_id[17] != "0" else "1")
    rows = [
        person_row(1),                                        # line 2: good
        person_row(2, id_number=bad_checksum),                # line 3: wrong check digit
        person_row(3, birth_date="1990-02-30"),               # line 4: no such date
        person_row(4, name=""),                               # line 5: required name missing
        person_row(5, id_number=good_id),                     # line 6: duplicate of line 2
        person_row(6, id_number=existing["id_number"]),       # line 7: duplicate of a stored record
        person_row(7, sex="3"),                               # line 8: not a choice
        person_row(8, children="-1", phone="12345"),          # line 9: two bad fields
        person_row(9),                                        # line 10: good
    ]
    path = write_csv(tmp_path / "bad.csv", rows)
    before = Record.objects.count()

    report = registry_io.import_file(registry, path, mapping=None, actor=ga_official)

    assert not report.ok and report.status == "rejected"
    assert Record.objects.count() == before
    assert report.imported == 0 and report.rows == 9 and report.bad_rows == 7
    where = {(e.line, e.field) for e in report.errors}
    assert where == {
        (3, "id_number"), (4, "birth_date"), (5, "name"), (6, "id_number"), (7, "id_number"), (8, "sex"),
        (9, "children"), (9, "phone"),
    }
    messages = {(e.line, e.field): e for e in report.errors}
    assert "校验码" in messages[3, "id_number"].message
    assert "日期" in messages[4, "birth_date"].message
    assert "必填" in messages[5, "name"].message
    assert "第 2 行" in messages[6, "id_number"].message
    assert "已存在" in messages[7, "id_number"].message
    assert "可选值" in messages[8, "sex"].message
    # personal values are masked in the report, other values are shown
    assert messages[3, "id_number"].value == bad_checksum[:6] + "********" + bad_checksum[-4:]
    assert messages[8, "sex"].value == "3"
    assert [e.line for e in report.errors] == sorted(e.line for e in report.errors)
    text = report.to_text()
    assert "第 3 行" in text and bad_checksum not in text and bad_checksum not in report.to_json()
    data = json.loads(report.to_json())
    assert data["status"] == "rejected" and len(data["errors"]) == 8 and data["errors"][0]["line"] == 3
    failed = AuditRecord.objects.filter(action="registry.import").order_by("-seq").first()
    assert failed is not None and failed.outcome == "failed"


def test_errors_after_a_written_batch_roll_everything_back(registry, ga_official, tmp_path):
    rows = [person_row(i) for i in range(1, 8)] + [person_row(8, sex="x")]
    path = write_csv(tmp_path / "late.csv", rows)
    report = registry_io.import_file(registry, path, mapping=None, actor=ga_official, batch_size=3)
    assert [(e.line, e.field) for e in report.errors] == [(9, "sex")]
    assert not Record.objects.filter(registry=registry).exists()


def test_gbk_csv_with_chinese_headers(registry, ga_official, tmp_path):
    rows = [person_row(i, address=f"山东省济南市历下区解放路{i}号") for i in range(1, 4)]
    path = write_csv(tmp_path / "gbk.csv", rows, header=LABELS, encoding="gbk")
    with pytest.raises(UnicodeDecodeError):
        path.read_text(encoding="utf-8")

    report = registry_io.import_file(registry, path, mapping=None, actor=ga_official)

    assert report.ok, report.to_text()
    assert report.encoding == "gb18030" and report.imported == 3
    assert report.columns["姓名"] == "name" and report.columns["公民身份号码"] == "id_number"
    stored = values_by_id(registry)
    assert stored[rows[2]["id_number"]]["address"] == "山东省济南市历下区解放路3号"


def test_utf8_bom_semicolons_quoted_newlines_and_blank_lines(registry, ga_official, tmp_path):
    text = (
        "\ufeff身份证号;姓名;性别;出生日期;户籍地区划;户籍地址\r\n"
        f"{pid(1)};李一;1;1990/1/1;370102;\"山东省济南市\n历下区1号\"\r\n"
        "\r\n"
        f"{pid(2)};;2;19900101;370102;\r\n"
    )
    path = tmp_path / "bom.csv"
    path.write_bytes(text.encode("utf-8"))
    report = registry_io.import_file(registry, path, mapping=None, actor=ga_official, dry_run=True)
    assert report.encoding == "utf-8-sig" and report.columns["身份证号"] == "id_number"
    # header 1, first row spans lines 2-3, blank line 4, second row on line 5 (name missing)
    assert [(e.line, e.field) for e in report.errors] == [(5, "name")]
    assert report.rows == 2 and report.dry_run and not Record.objects.filter(registry=registry).exists()


def test_xlsx_import(registry, ga_official, tmp_path):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["身份证号", "姓名", "性别", "出生日期", "手机号", "户籍地区划", "子女数"])
    sheet.append([pid(1), "赵一", "1", dt.datetime(1990, 1, 1), 13800000001, "370102", 2])
    sheet.append([pid(2), "赵二", 2, dt.date(1990, 1, 1), "13800000002", 370102, None])
    sheet.append([None] * 7)
    sheet.append([pid(3), "赵三", "2", "1990-13-01", None, "370102", None])
    path = tmp_path / "persons.xlsx"
    workbook.save(path)

    report = registry_io.import_file(registry, path, mapping=None, actor=ga_official)
    assert [(e.line, e.field) for e in report.errors] == [(5, "birth_date")]
    assert report.format == "xlsx" and not Record.objects.filter(registry=registry).exists()

    sheet.delete_rows(5)
    workbook.save(path)
    report = registry_io.import_file(registry, path, mapping=None, actor=ga_official)
    assert report.ok, report.to_text()
    stored = values_by_id(registry)
    assert stored[pid(1)]["birth_date"] == "1990-01-01" and stored[pid(1)]["phone"] == "13800000001"
    assert stored[pid(1)]["children"] == 2 and stored[pid(2)]["sex"] == "2"


def test_column_mapping_explicit_ignore_unknown_and_missing(registry, ga_official, tmp_path):
    header = ["序号", "证件号码", "名字", "性别", "出生日期", "户籍地区划", "备注"]
    keys = ["n", "id_number", "name", "sex", "birth_date", "division_code", "note"]
    rows = [dict(person_row(1), n="1", note="x"), dict(person_row(2), n="2", note="")]
    path = write_csv(tmp_path / "mapped.csv", rows, header=header, keys=keys)

    report = registry_io.import_file(registry, path, mapping=None, actor=ga_official)
    assert not report.ok and report.rows == 0
    assert set(report.unknown_columns) == {"序号", "证件号码", "名字", "备注"}
    assert {"公民身份号码", "姓名"} <= set(report.missing_columns)

    mapping = {"证件号码": "id_number", "名字": "name", "序号": "", "备注": ""}
    report = registry_io.import_file(registry, path, mapping=mapping, actor=ga_official)
    assert report.ok, report.to_text()
    assert report.ignored_columns == ["序号", "备注"] and report.imported == 2

    report = registry_io.import_file(registry, path, mapping={"证件号码": "no_such_field", "名称": "name"},
                                     actor=ga_official, dry_run=True)
    problems = {(e.column, e.field) for e in report.errors if e.line == 0}
    assert ("证件号码", "no_such_field") in problems and ("名称", "") in problems


def test_non_authoritative_department_is_refused(registry, orgs, tmp_path):
    path = write_csv(tmp_path / "wj.csv", [person_row(1)])
    report = registry_io.import_file(registry, path, mapping=None, actor="system:test", source=orgs["WJ"])
    assert not report.ok and not Record.objects.filter(registry=registry).exists()
    assert {e.field for e in report.errors} >= {"id_number", "name"}
    assert AuditRecord.objects.filter(action="registry.import", outcome="denied").exists()


def test_official_cannot_import_for_another_department(registry, ga_official, orgs, tmp_path):
    path = write_csv(tmp_path / "p.csv", [person_row(1)])
    with pytest.raises(PermissionDenied):
        registry_io.import_file(registry, path, mapping=None, actor=ga_official, source="370000-WJ")


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json"])
def test_export_round_trip(registry, orgs, ga_official, tmp_path, fmt):
    rows = [person_row(i) for i in range(1, 6)]
    rows[2]["status"] = ""
    report = registry_io.import_file(registry, write_csv(tmp_path / "in.csv", rows), mapping=None,
                                     actor=ga_official)
    assert report.ok, report.to_text()
    out = tmp_path / f"out.{'jsonl' if fmt == 'json' else fmt}"

    count = registry_io.export_records(registry, out, fmt=fmt, actor=ga_official, unmask=True)

    assert count == 5
    empty = make_registry(orgs, code="test.person2")
    again = registry_io.import_file(empty, out, mapping=None, actor=ga_official)
    assert again.ok and again.imported == 5, again.to_text()
    assert values_by_id(empty) == values_by_id(registry)
    assert AccessLog.objects.filter(registry=registry, channel="export").count() == 5
    audit = AuditRecord.objects.filter(action="registry.export").order_by("-seq").first()
    assert audit.outcome == "success" and '"unmask":true' in audit.detail_json.replace(" ", "")


def test_export_masks_personal_fields_by_default(registry, ga_official, orgs, tmp_path):
    rows = [person_row(i) for i in range(1, 4)]
    registry_io.import_file(registry, write_csv(tmp_path / "in.csv", rows), mapping=None, actor=ga_official)
    buffer = io.BytesIO()
    count = registry_io.export_records(registry, buffer, fmt="csv", actor="system:test", source=orgs["WJ"],
                                       labels=True)
    text = buffer.getvalue().decode("utf-8-sig")
    assert count == 3
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0] == LABELS
    ids = {line[0] for line in lines[1:]}
    assert ids == {r["id_number"][:6] + "********" + r["id_number"][-4:] for r in rows}
    for row in rows:
        assert row["id_number"] not in text and row["phone"] not in text and row["address"] not in text
    assert "张" in text  # internal fields are not masked
    logs = AccessLog.objects.filter(channel="export", registry=registry)
    assert logs.count() == 3 and all("<unmasked>" not in log.fields for log in logs)
    assert {log.reader_org_id for log in logs} == {orgs["WJ"].pk}

    with pytest.raises(PermissionDenied):
        registry_io.export_records(registry, io.BytesIO(), fmt="csv", actor="system:test", source=orgs["WJ"],
                                   unmask=True)
    assert AuditRecord.objects.filter(action="registry.export", outcome="denied").exists()

    wb_buffer = io.BytesIO()
    registry_io.export_records(registry, wb_buffer, fmt="xlsx", actor="system:test", source=orgs["DSJ"],
                               unmask=True)
    sheet = load_workbook(io.BytesIO(wb_buffer.getvalue()), read_only=True).worksheets[0]
    cells = [row for row in sheet.iter_rows(values_only=True)]
    assert cells[0] == tuple(HEADER) and {c[0] for c in cells[1:]} == {r["id_number"] for r in rows}


def test_cli_import_and_export(registry, ga_official, tmp_path):
    good = write_csv(tmp_path / "good.csv", [person_row(1), person_row(2)])
    bad = write_csv(tmp_path / "bad.csv", [person_row(3), person_row(4, sex="9")])
    out = io.StringIO()

    call_command("registry", "import", "test.person", str(good), "--source", "370000-GA", "--dry-run", stdout=out)
    assert "校验通过" in out.getvalue() and not Record.objects.filter(registry=registry).exists()
    with pytest.raises(CommandError) as excinfo:
        call_command("registry", "import", "test.person", str(bad), "--source", "370000-GA", "--dry-run",
                     stdout=io.StringIO())
    assert excinfo.value.returncode == 1
    with pytest.raises(CommandError) as excinfo:
        call_command("registry", "import", "test.person", str(bad), "--as", "ga1",
                     "--report", str(tmp_path / "r.json"), stdout=out)
    assert excinfo.value.returncode == 1
    assert "第 3 行" in out.getvalue()
    saved = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert saved["status"] == "rejected" and saved["errors"][0]["line"] == 3
    assert not Record.objects.filter(registry=registry).exists()

    out = io.StringIO()
    call_command("registry", "import", "test.person", str(good), "--source", "370000-GA",
                 "--map", "id_number=id_number", stdout=out)
    assert "导入成功" in out.getvalue() and Record.objects.filter(registry=registry).count() == 2

    with pytest.raises(CommandError):
        call_command("registry", "import", "test.person", str(good), stdout=io.StringIO())  # no identity
    with pytest.raises(CommandError):
        call_command("registry", "import", "no.such", str(good), "--source", "370000-GA", stdout=io.StringIO())

    target = tmp_path / "export.jsonl"
    out = io.StringIO()
    call_command("registry", "export", "test.person", str(target), "--as", "ga1", stdout=out)
    lines = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 2 and all("*" in line["id_number"] for line in lines)
    with pytest.raises(CommandError):
        call_command("registry", "export", "test.person", str(target), "--source", "370000-WJ", "--unmask",
                     stdout=io.StringIO())


def test_clash_with_stored_record_found_by_the_engine_while_writing(registry, ga_official, tmp_path):
    stored = person_row(50)
    services.create_record(registry, stored, actor=ga_official)
    rows = [person_row(1), person_row(2, id_number=stored["id_number"]), person_row(3), person_row(4, sex="x")]
    report = registry_io.import_file(registry, write_csv(tmp_path / "clash.csv", rows), mapping=None,
                                     actor=ga_official)
    assert [(e.line, e.field) for e in report.errors] == [(3, "id_number"), (5, "sex")]
    clash = report.errors[0]
    assert "已存在" in clash.message and clash.value == stored["id_number"][:6] + "********" + stored["id_number"][-4:]
    assert Record.objects.filter(registry=registry).count() == 1
    assert not AuditRecord.objects.filter(action="registry.record.bulk_create").exists()


def test_rows_outside_the_departments_division_are_refused(registry, orgs, tmp_path):
    from dgov.kernel.models import Division

    city = Division.objects.get(code="370100")
    lixia = Division.objects.create(code="370102", name="历下区", full_name="山东省济南市历下区",
                                    level=Division.Level.COUNTY, parent=city)
    county_ga = Organization.objects.create(name="济南市公安局历下区分局", code="370102-GA",
                                            uscc="11370102004312348X", level=3, division=lixia, kind="GA")
    rows = [person_row(1), person_row(2, division_code="370103"), person_row(3, division_code="370102")]
    path = write_csv(tmp_path / "scope.csv", rows)
    report = registry_io.import_file(registry, path, mapping=None, actor="system:test", source=county_ga)
    assert [(e.line, e.field) for e in report.errors] == [(3, "division_code")]
    assert "管辖" in report.errors[0].message and not Record.objects.exists()
    ok = write_csv(tmp_path / "scope-ok.csv", [rows[0], rows[2]])
    assert registry_io.import_file(registry, ok, mapping=None, actor="system:test", source=county_ga).imported == 2
    assert set(Record.objects.values_list("division_code", flat=True)) == {"370102"}


def test_reference_values_must_name_stored_records(orgs, ga_official, tmp_path):
    households = services.create_registry(
        code="test.household", name="测试户", owner=orgs["GA"], library_code="population",
        identifier_field="household_no", actor="system:test",
        fields=[{"name": "household_no", "label": "户号", "type": "string", "authority": "GA"}],
    )
    members = services.create_registry(
        code="test.member", name="测试成员", owner=orgs["GA"], library_code="population",
        identifier_field="member_no", actor="system:test",
        fields=[{"name": "member_no", "label": "成员编号", "type": "string", "authority": "GA"},
                {"name": "household", "label": "所在户", "type": "reference", "ref": "test.household",
                 "authority": "GA"}],
    )
    home = services.create_record(households, {"household_no": "0001"}, actor=ga_official)
    path = tmp_path / "members.csv"
    path.write_text(f"成员编号,所在户\nM1,{home.uid}\nM2,00000000-0000-4000-8000-000000000000\nM3,\n",
                    encoding="utf-8")
    report = registry_io.import_file(members, path, mapping=None, actor=ga_official)
    assert [(e.line, e.field) for e in report.errors] == [(3, "household")]
    path.write_text(f"成员编号,所在户\nM1,{home.uid}\nM3,\n", encoding="utf-8")
    assert registry_io.import_file(members, path, mapping=None, actor=ga_official).imported == 2


def test_text_stream_and_json_lines_with_bad_line(registry, ga_official):
    good, bad = person_row(1), person_row(2)
    text = json.dumps(good, ensure_ascii=False) + "\n{not json\n\n" + json.dumps(bad, ensure_ascii=False) + "\n"
    stream = io.StringIO(text)
    stream.name = "upload.jsonl"
    report = registry_io.import_file(registry, stream, mapping=None, actor=ga_official)
    assert report.format == "json" and [(e.line, e.field) for e in report.errors] == [(2, "")]
    stream = io.StringIO(text.replace("{not json\n", ""))
    stream.name = "upload.jsonl"
    assert registry_io.import_file(registry, stream, mapping=None, actor=ga_official).imported == 2


@pytest.mark.slow
def test_worker_process_path_gives_the_same_report(registry, ga_official, tmp_path):
    rows = [person_row(i) for i in range(1, 30)]
    rows[15]["sex"] = "9"
    rows[19]["id_number"] = rows[1]["id_number"]
    path = write_csv(tmp_path / "many.csv", rows)
    # batches of 7: two batches go to the engine before line 17 turns the import into checking only
    worker = registry_io.import_file(registry, path, mapping=None, actor=ga_official, parallel=True, batch_size=7)
    inline = registry_io.import_file(registry, path, mapping=None, actor=ga_official, parallel=False, batch_size=7)
    assert [(e.line, e.field, e.message, e.value) for e in worker.errors] == [
        (e.line, e.field, e.message, e.value) for e in inline.errors
    ]
    assert [(e.line, e.field) for e in worker.errors] == [(17, "sex"), (21, "id_number")]
    assert worker.rows == 29 and not Record.objects.filter(registry=registry).exists()


def test_citizens_cannot_borrow_a_departments_authority(registry, citizen, tmp_path):
    path = write_csv(tmp_path / "p.csv", [person_row(1)])
    with pytest.raises(PermissionDenied):
        registry_io.import_file(registry, path, mapping=None, actor=citizen, source="370000-GA")
    with pytest.raises(PermissionDenied):
        registry_io.export_records(registry, io.BytesIO(), actor=citizen, source="370000-GA")
    assert not Record.objects.exists()
