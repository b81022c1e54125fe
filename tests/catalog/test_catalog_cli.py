"""`dgov catalog`: CSV/xlsx import (all or nothing, every bad row reported), export, publish, demo."""

import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command

from dgov.catalog.io import COLUMNS
from dgov.catalog.models import InformationResource

pytestmark = pytest.mark.django_db


def write_csv(path, rows):
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow(row)


def entry(number, name, **extra):
    base = {
        "entry": str(number),
        "classification": "102001",
        "name": name,
        "summary": f"{name}的摘要",
        "format": "数据库",
        "sharing_type": "无条件共享",
        "sharing_mode": "接口服务",
        "update_cycle": "每日",
    }
    base.update(extra)
    return base


def test_good_file_is_imported_as_drafts(tmp_path, users, classes, registries):
    path = tmp_path / "entries.csv"
    write_csv(
        path,
        [
            entry(1, "企业登记信息", registry="t.enterprise", registry_field="uscc"),
            entry(1, "企业登记信息", registry="t.enterprise", registry_field="name"),
            entry(
                2, "企业成立信息", item_code="founded", item_name="成立日期", data_type="d", length="10", is_own="否"
            ),
        ],
    )
    out = io.StringIO()
    call_command("catalog", "import", str(path), "--as", users["scjg"].username, stdout=out)
    assert "导入成功" in out.getvalue()
    first, second = InformationResource.objects.order_by("code")
    assert first.name == "企业登记信息" and first.items.count() == 2 and first.status == "draft"
    assert first.sharing_type == "unconditional" and first.update_cycle == "daily"
    item = second.items.get()
    assert item.data_type == "D" and item.is_own is False


def test_bad_rows_are_all_reported_and_nothing_is_written(tmp_path, users, classes, registries):
    path = tmp_path / "entries.csv"
    write_csv(
        path,
        [
            entry(1, "好的资源", registry="t.enterprise", registry_field="uscc"),
            entry(2, "", registry="t.enterprise", registry_field="uscc"),  # line 3: no name
            entry(3, "分类错误", classification="999", item_code="a", item_name="甲", data_type="C"),  # line 4
            entry(4, "信息项错误", item_code="Bad", item_name="乙", data_type="C"),  # line 5
            entry(4, "信息项错误", registry="t.enterprise", registry_field="nope"),  # line 6
        ],
    )
    report = tmp_path / "report.txt"
    with pytest.raises(CommandError) as caught:
        call_command(
            "catalog", "import", str(path), "--source", "370000-SCJG", "--report", str(report), stdout=io.StringIO()
        )
    assert caught.value.returncode == 1
    text = report.read_text(encoding="utf-8")
    assert "导入失败" in text
    for expected in ("第 3 行 name", "第 4 行 classification", "第 5 行 code", "第 6 行 registry_field"):
        assert expected in text, expected
    assert not InformationResource.objects.exists()


def test_export_roundtrip_publish_and_dcat(tmp_path, users, make_entry):
    made = make_entry(users["scjg"])
    path = tmp_path / "out.xlsx"
    call_command("catalog", "export", str(path), stdout=io.StringIO())
    call_command("catalog", "import", str(path), "--as", users["scjg2"].username, stdout=io.StringIO())
    assert InformationResource.objects.filter(name=made.name).count() == 2
    with pytest.raises(CommandError):  # only data administrators publish
        call_command(
            "catalog", "publish", made.code, "--as", users["scjg"].username, stdout=io.StringIO(), stderr=io.StringIO()
        )
    call_command("catalog", "publish", "--all-drafts", "--as", users["dsj"].username, stdout=io.StringIO())
    assert set(InformationResource.objects.values_list("status", flat=True)) == {"published"}
    target = tmp_path / "catalog.jsonld"
    call_command("catalog", "export", str(target), stdout=io.StringIO())
    assert len(json.loads(target.read_text(encoding="utf-8"))["dcat:dataset"]) == 2
