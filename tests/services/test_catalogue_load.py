"""Service-item catalogue: loading all or nothing, 三级四同 drift, permissions, CLI and demo seed."""

import copy
import json

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.core.management.base import CommandError

from dgov.kernel.models import AuditRecord
from dgov.services import catalogue
from dgov.services.models import Bundle, GuideMaterial, ItemDrift, ItemImplementation, ServiceItem

from .catalogue_fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db

ITEM = {
    "code": "000199001000",
    "name": "测试事项",
    "type": "行政许可",
    "department": "SCJG",
    "levels": ["province", "city", "county"],
    "holder_kinds": ["enterprise"],
    "online_depth": 4,
    "legal_limit_days": 20,
    "promised_limit_days": 5,
    "legal_basis": "《测试条例》第一条",
    "materials": [
        {"name": "营业执照", "kind": "licence", "licence": "SCJG:001"},
        {"name": "企业信息", "kind": "data", "registry": "legal_entity.enterprise", "fields": ["uscc"]},
    ],
}


def _demo_document():
    return catalogue.read_catalogue_file(catalogue.DEMO_ITEMS)


def test_demo_catalogue_is_big_enough_and_valid(seeded):
    assert "新增" in seeded
    assert ServiceItem.objects.count() >= 20
    assert len(set(ServiceItem.objects.values_list("department_kind", flat=True))) >= 6
    assert set(Bundle.objects.values_list("code", flat=True)) == {"newborn", "business-opening", "marriage"}
    newborn = Bundle.objects.get(code="newborn")
    assert {i.name for i in newborn.items.all()} == {
        "出生医学证明签发",
        "出生登记",
        "城乡居民基本医疗保险参保登记",
        "社会保障卡申领",
    }
    assert GuideMaterial.objects.filter(kind="licence", licence_type__isnull=False).count() >= 5
    assert GuideMaterial.objects.filter(kind="data").count() >= 10
    # Implementations at every level, with the county fallback to the 行政审批服务局.
    birth = ServiceItem.objects.get(basic_code="000114001000")  # WJ at city and county; no county WJ
    assert set(birth.implementations.values_list("level", flat=True)) == {2, 3}
    assert birth.implementations.filter(level=3, organization__kind="XZSP").exists()
    assert ServiceItem.objects.get(basic_code="000117001000").produces_licence_type.name == "营业执照"


def test_demo_seed_is_idempotent_and_shows_one_drift(seeded):
    from dgov.services import demo

    counts = (ServiceItem.objects.count(), ItemImplementation.objects.count(), ItemDrift.objects.count())
    again = demo.seed(province_code="370000")
    assert "未变" in again
    assert (ServiceItem.objects.count(), ItemImplementation.objects.count(), ItemDrift.objects.count()) == counts
    drift = ItemDrift.objects.get()
    assert drift.field == "name" and drift.found == demo.DRIFT_NAME and drift.status == "open"


def test_load_is_all_or_nothing_with_every_bad_entry_reported(licence_types):
    bad_type = {**ITEM, "code": "000199002000", "type": "行政许可证"}
    bad_limits = {**ITEM, "code": "000199003000", "promised_limit_days": 30}
    bad_licence = copy.deepcopy(ITEM) | {"code": "000199004000"}
    bad_licence["materials"][0]["licence"] = "SCJG:999"
    duplicate = dict(ITEM)
    bad_bundle = {"code": "b1", "name": "坏的一件事", "items": ["000199001000", "999999999999"]}
    document = {"items": [ITEM, bad_type, bad_limits, bad_licence, duplicate], "bundles": [bad_bundle]}
    report = catalogue.load_catalogue(document, actor="system:test", province_code="370000")
    assert not report.ok
    assert [e[0] for e in report.errors] == [2, 3, 4, 5, 6]
    text = report.to_text()
    assert "未做任何修改" in text and "事项类型" in text and "承诺时限" in text and "SCJG:999" in text
    assert "重复" in text and "999999999999" in text
    assert not ServiceItem.objects.exists() and not Bundle.objects.exists()


def test_load_creates_updates_versions_and_audits(licence_types):
    report = catalogue.load_catalogue({"items": [ITEM]}, actor="system:test", province_code="370000")
    assert report.ok and report.created == ["000199001000"]
    item = ServiceItem.objects.get()
    assert item.version == 1 and item.type == "licensing" and item.materials.count() == 2
    assert item.materials.get(kind="licence").licence_type.name == "营业执照"
    again = catalogue.load_catalogue({"items": [ITEM]}, actor="system:test", province_code="370000")
    assert again.unchanged == ["000199001000"]
    changed = {**ITEM, "promised_limit_days": 3}
    third = catalogue.load_catalogue({"items": [changed]}, actor="system:test", province_code="370000")
    assert third.updated == ["000199001000"]
    item.refresh_from_db()
    assert item.version == 2 and item.promised_limit_days == 3 and item.materials.count() == 2
    assert AuditRecord.objects.filter(action="services.item.update").count() == 1


def test_form_schema_subset_is_checked(licence_types):
    schema = {
        "type": "object",
        "properties": {
            "x": {"type": "array", "title": "X"},
            "y": {"type": "string"},
            "z": {"type": "string", "title": "Z", "pattern": "("},
        },
        "required": ["w"],
    }
    report = catalogue.load_catalogue({"items": [{**ITEM, "form_schema": schema}]}, actor="system:test")
    messages = " ".join(report.errors[0][2])
    assert "type 应为" in messages and "title" in messages and "pattern" in messages and "required" in messages


def test_every_format_the_form_validator_knows_is_accepted_and_no_other(licence_types):
    from dgov.services.form_schema import FORMATS, validate_form

    props = {f"f{i}": {"type": "string", "title": f"字段{i}", "format": fmt} for i, fmt in enumerate(FORMATS)}
    good = catalogue.load_catalogue(
        {"items": [{**ITEM, "form_schema": {"type": "object", "properties": props}}]}, actor="system:test"
    )
    assert good.ok, good.to_text()
    bad_schema = {"type": "object", "properties": {"ip": {"type": "string", "title": "地址", "format": "ipv4"}}}
    bad = catalogue.load_catalogue({"items": [{**ITEM, "form_schema": bad_schema}]}, actor="system:test")
    assert not bad.ok and "format 只支持" in " ".join(bad.errors[0][2])
    # What the catalogue accepts, the form validator checks: a wrong e-mail is refused beside its field.
    _cleaned, errors = validate_form({"type": "object", "properties": {"m": props["f1"]}}, {"m": "not-an-email"})
    assert list(errors) == ["m"]


def test_only_catalogue_managers_may_load(licence_types, people):
    with pytest.raises(PermissionDenied):
        catalogue.load_catalogue({"items": [ITEM]}, actor=people["scjg"])
    assert AuditRecord.objects.filter(action="services.items.load", outcome="denied").exists()
    assert catalogue.load_catalogue({"items": [ITEM]}, actor=people["dsj"]).ok


def test_check_finds_reports_and_resolves_drift(seeded):
    impl = ItemImplementation.objects.filter(item__basic_code="000113001000", level=3).first()
    impl.legal_basis = "《婚姻登记条例》（旧）"
    impl.basic_code = "000113001999"
    impl.save()
    report = catalogue.check_consistency(actor="system:test")
    assert report.opened == 2 and report.still_open == 1
    assert set(impl.drifts.values_list("field", flat=True)) == {"legal_basis", "basic_code"}
    assert AuditRecord.objects.filter(action="services.check").count() == 2
    impl.legal_basis, impl.basic_code = impl.item.legal_basis, impl.item.basic_code
    impl.save()
    fixed = catalogue.check_consistency(actor="system:test")
    assert fixed.resolved == 2 and fixed.opened == 0
    assert impl.drifts.filter(status="resolved").count() == 2


def test_check_refused_for_ordinary_officials(seeded, people):
    with pytest.raises(PermissionDenied):
        catalogue.check_consistency(actor=people["scjg"])


def test_drift_scope(seeded, people):
    assert catalogue.drifts_for(people["dsj"]).count() == 1
    assert catalogue.drifts_for(people["admin"]).count() == 1
    assert catalogue.drifts_for(people["scjg"]).count() == 0
    assert catalogue.drifts_for(people["citizen"]).count() == 0
    drift = ItemDrift.objects.get()
    own = drift.implementation.organization
    people["county_scjg"].department = own
    people["county_scjg"].save()
    assert catalogue.drifts_for(people["county_scjg"]).count() == 1


def test_cli_load_check_and_list(licence_types, tmp_path, capsys):
    good = tmp_path / "items.json"
    good.write_text(json.dumps({"items": [ITEM]}, ensure_ascii=False), encoding="utf-8")
    call_command("services", "items", "load", str(good), "--province", "370000")
    bad = tmp_path / "bad.yaml"
    bad.write_text("items:\n  - {code: x, name: 坏}\n", encoding="utf-8")
    with pytest.raises(CommandError):
        call_command("services", "items", "load", str(bad))
    out = capsys.readouterr().out
    assert "新增 1 个" in out and "第 1 个" in out
    call_command("services", "items", "implement", "--province", "370000")
    call_command("services", "check")
    call_command("services", "items", "list")
    out = capsys.readouterr().out
    assert "000199001000\t测试事项" in out and "新发现差异 0 处" in out
    assert ItemImplementation.objects.filter(item__basic_code="000199001000").count() >= 3


def test_field_order_survives_storage_that_reorders_keys(licence_types):
    """PostgreSQL's jsonb sorts object keys: the order written in the file is kept in ``x-order``."""
    from dgov.services.form_schema import fields_of

    props = {"zname": {"type": "string", "title": "姓名"}, "age": {"type": "integer", "title": "年龄"}}
    report = catalogue.load_catalogue(
        {"items": [{**ITEM, "form_schema": {"type": "object", "properties": props}}]}, actor="system:test"
    )
    assert report.ok, report.to_text()
    stored = ServiceItem.objects.get(basic_code=ITEM["code"]).form_schema
    assert stored["x-order"] == ["zname", "age"]
    reordered = {**stored, "properties": dict(sorted(stored["properties"].items()))}
    assert [name for name, _prop, _req in fields_of(reordered)] == ["zname", "age"]
    bad = {"type": "object", "properties": props, "x-order": ["age"]}
    refused = catalogue.load_catalogue({"items": [{**ITEM, "form_schema": bad}]}, actor="system:test")
    assert not refused.ok and "x-order" in " ".join(refused.errors[0][2])
