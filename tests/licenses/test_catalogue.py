"""The licence-type catalogue: validation, versions, permissions, loading all or nothing, the demo catalogue."""

import pytest
from django.core.exceptions import PermissionDenied

from dgov.kernel.models import AuditRecord
from dgov.licenses import catalogue, services
from dgov.licenses.models import LicenceType

from .conftest import person_id

pytestmark = pytest.mark.django_db

PERMIT = {
    "serial": "010",
    "department": "MZ",
    "issuer_kind": "MZ",
    "name": "收养登记证",
    "holder_kind": "person",
    "sharing_type": "conditional",
    "validity": {},
    "items": [
        {"name": "child_name", "label": "被收养人姓名", "type": "string", "required": True, "sensitivity": "personal"},
        {"name": "registered_on", "label": "登记日期", "type": "date", "required": True},
    ],
}


def test_demo_catalogue_loads_with_codes_from_the_departments(demo_types, orgs):
    assert set(demo_types) == {"营业执照", "食品经营许可证", "结婚证", "出生医学证明", "机动车驾驶证", "社会保障卡"}
    licence = demo_types["营业执照"]
    assert licence.code == orgs["scjg"].uscc + "001" and licence.department == orgs["scjg"]
    assert demo_types["食品经营许可证"].code == orgs["scjg"].uscc + "002"
    assert demo_types["结婚证"].department == orgs["mz"] and demo_types["结婚证"].holder_kind == "person"
    assert demo_types["机动车驾驶证"].validity == {"years": 6}
    assert all(t.version == 1 for t in demo_types.values())
    layout = catalogue.effective_layout(demo_types["出生医学证明"])  # declares none: the renderer's defaults
    assert layout["size"] == "A4" and layout["title"] == "出生医学证明" and layout["seal_mm"] and layout["qr_mm"]
    assert [item["name"] for item in layout["items"]][:2] == ["born_at", "sex"]
    # Loading again changes nothing.
    report = catalogue.load_types(catalogue.read_type_file(catalogue.DEMO_TYPES), actor="system:test")
    assert report.ok and len(report.unchanged) == 6 and not report.created and not report.updated


def test_every_problem_of_a_definition_is_reported(orgs):
    bad = {
        "serial": "1",
        "department": "NOPE",
        "name": "",
        "holder_kind": "robot",
        "sharing_type": "sometimes",
        "validity": {"years": -1, "weeks": 2},
        "items": [
            {"name": "Bad Name", "label": "x", "type": "colour"},
            {"name": "dup", "label": "重复", "type": "enum"},
            {"name": "dup", "label": "", "sensitivity": "secret", "max_length": 5, "type": "date"},
            {"name": "holder_id", "label": "保留"},
        ],
        "layout": {"size": "A3", "items": ["nowhere"], "seal_mm": 500, "logo": 1},
    }
    with pytest.raises(catalogue.CatalogueError) as caught:
        catalogue.create_type(bad, actor="system:test")
    errors = caught.value.message_dict
    assert set(errors) >= {"department", "name", "holder_kind", "sharing_type", "validity", "items", "serial"}
    items = "\n".join(errors["items"])
    for fragment in (
        "items[0](Bad Name).name",
        "colour",
        "items[1](dup).choices",
        "名称 dup 重复",
        "sensitivity",
        "max_length",
        "保留名称",
    ):
        assert fragment in items, fragment
    assert not LicenceType.objects.exists()
    # A layout naming unknown items or leaving the page is refused with every reason.
    with pytest.raises(catalogue.CatalogueError) as caught:
        catalogue.create_type({**PERMIT, "layout": bad["layout"]}, actor="system:test")
    layout = "\n".join(caught.value.message_dict["layout"])
    assert "A4" in layout and "nowhere" in layout and "seal_mm" in layout and "logo" in layout


def test_changes_of_items_validity_or_layout_bump_the_version(orgs):
    permit = catalogue.create_type(PERMIT, actor="system:test")
    assert permit.code == orgs["mz"].uscc + "010" and permit.version == 1
    assert AuditRecord.objects.filter(action="licenses.type.create").count() == 1
    permit = catalogue.update_type(permit, {"description": "说明"}, actor="system:test")
    assert permit.version == 1  # not a versioned change
    licence = services.issue(
        permit,
        issuer=orgs["mz"],
        holder_name="张三",
        holder_id=person_id(11),
        data={"child_name": "张小", "registered_on": "2026-01-02"},
        actor="system:test",
    )
    items = [*PERMIT["items"], {"name": "remark", "label": "备注", "type": "text"}]
    permit = catalogue.update_type(permit, {"items": items, "validity": {"years": 3}}, actor="system:test")
    assert permit.version == 2
    licence.refresh_from_db()
    assert licence.type_version == 1  # licences keep the version they were issued under
    permit = catalogue.update_type(permit, {"layout": {"size": "A5", "items": ["remark"]}}, actor="system:test")
    assert permit.version == 3
    record = AuditRecord.objects.filter(action="licenses.type.update").order_by("-seq").first()
    assert record.detail["changed"] == ["layout"]
    # With licences issued, items cannot be removed or retyped, nor the holder kind changed.
    with pytest.raises(catalogue.CatalogueError) as caught:
        catalogue.update_type(
            permit,
            {"items": [{"name": "child_name", "label": "姓名", "type": "date"}], "holder_kind": "enterprise"},
            actor="system:test",
        )
    errors = caught.value.message_dict
    assert "holder_kind" in errors and any("registered_on" in m for m in errors["items"])
    with pytest.raises(catalogue.CatalogueError):
        catalogue.update_type(permit, {"code": "X"}, actor="system:test")


def test_who_may_change_the_catalogue(orgs, people_users):
    permit = catalogue.create_type(PERMIT, actor=people_users["dsj"])  # provincial data administrators
    # The competent department changes its own types, but not its department.
    catalogue.update_type(permit, {"description": "民政厅维护"}, actor=people_users["mz"])
    with pytest.raises(PermissionDenied):
        catalogue.update_type(permit, {"department": "370000-GA"}, actor=people_users["mz"])
    # Others may not: another department, a city data bureau.
    for key in ("ga", "dsj_city", "mz_city"):
        with pytest.raises(PermissionDenied):
            catalogue.update_type(permit, {"description": key}, actor=people_users[key])
    with pytest.raises(PermissionDenied):
        catalogue.create_type({**PERMIT, "serial": "011"}, actor=people_users["ga"])
    assert AuditRecord.objects.filter(action__startswith="licenses.type.", outcome="denied").count() == 5
    catalogue.create_type({**PERMIT, "serial": "012", "department": "370000-MZ"}, actor=people_users["mz"])
    assert LicenceType.objects.count() == 2


def test_loading_is_all_or_nothing_with_a_report(orgs, people_users, tmp_path):
    good = {**PERMIT}
    entries = [
        good,
        {**PERMIT, "serial": "020", "items": [{"name": "x", "label": "X", "type": "nope"}]},
        {**PERMIT, "department": "370000-MZ", "serial": "010", "name": "重复"},
        "not a type",
    ]
    report = catalogue.load_types(entries, actor="system:test")
    assert not report.ok
    assert [index for index, _code, _messages in report.errors] == [2, 3, 4]
    assert "nope" in report.to_text() and "重复" in report.to_text()
    assert not LicenceType.objects.exists()
    # The competent department loading another department's type: reported and audited.
    report = catalogue.load_types([good, {**PERMIT, "serial": "030", "department": "GA"}], actor=people_users["mz"])
    assert [index for index, _c, _m in report.errors] == [2]
    assert AuditRecord.objects.filter(action="licenses.types.load", outcome="denied").exists()
    assert not LicenceType.objects.exists()
    # A dry run reports without writing; then the real load; then an update by serial.
    path = tmp_path / "types.json"
    import json

    path.write_text(json.dumps({"types": [good]}, ensure_ascii=False), encoding="utf-8")
    report = catalogue.load_types(catalogue.read_type_file(path), actor="system:test", dry_run=True)
    assert report.ok and report.created == [orgs["mz"].uscc + "010"] and not LicenceType.objects.exists()
    assert catalogue.load_types(catalogue.read_type_file(path), actor="system:test").created
    changed = {**good, "validity": {"years": 2}}
    report = catalogue.load_types([changed], actor="system:test")
    assert report.updated == [orgs["mz"].uscc + "010"]
    assert LicenceType.objects.get().version == 2
    with pytest.raises(catalogue.TypeSetError):
        catalogue.parse_type_set("{types: [", fmt="yaml")
    with pytest.raises(catalogue.TypeSetError):
        catalogue.parse_type_set('{"other": []}')
