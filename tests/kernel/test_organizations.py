"""Organizations: audited create/update/deactivate, the rules, scope, tree and the demo set."""

import json

import pytest
from django.core.exceptions import ValidationError

from dgov.kernel.models import AuditRecord, Division, Organization, OutboxEvent
from dgov.kernel.services import divisions, organizations
from dgov.kernel.validators import is_valid_uscc, make_uscc

pytestmark = pytest.mark.django_db

ACTOR = "system:test"


@pytest.fixture(autouse=True)
def _fresh_cache():
    divisions.invalidate_division_cache()
    yield
    divisions.invalidate_division_cache()


@pytest.fixture
def loaded():
    """Shandong's divisions."""
    divisions.load_divisions(provinces=["37"])


def _uscc(region: str, serial: int) -> str:
    return make_uscc("1", "1", region, serial=serial)


@pytest.fixture
def province_gov(loaded):
    return organizations.create_organization(
        "山东省人民政府", "T-370000-GOV", _uscc("370000", 1), "370000", actor=ACTOR, kind="GOV"
    )


@pytest.fixture
def jinan_gov(province_gov):
    return organizations.create_organization(
        "济南市人民政府", "T-370100-GOV", _uscc("370100", 1), "370100", actor=ACTOR, parent=province_gov
    )


def _audit(action: str) -> list[AuditRecord]:
    return list(AuditRecord.objects.filter(action=action).order_by("seq"))


def test_create_is_audited_and_announced(province_gov):
    police = organizations.create_organization(
        "山东省公安厅",
        "T-370000-GAT",
        _uscc("370000", 2).lower(),
        Division.objects.get(code="370000"),
        actor=ACTOR,
        parent=province_gov,
        kind="GA",
        duties="负责全省公安工作。",
    )
    assert police.level == Organization.Level.PROVINCE
    assert police.uscc == police.uscc.upper()  # normalized by the validator
    records = _audit("kernel.organization.create")
    assert [r.target_id for r in records] == [str(province_gov.pk), str(police.pk)]
    detail = json.loads(records[-1].detail_json)
    assert detail["division"] == "370000" and detail["parent"] == "T-370000-GOV"
    assert OutboxEvent.objects.filter(
        event_type="kernel.organization.created", aggregate_id=str(police.pk)
    ).exists()


def _field_codes(exc: ValidationError) -> dict[str, set[str]]:
    return {field: {e.code for e in errors} for field, errors in exc.error_dict.items()}


def test_rules(jinan_gov, province_gov):
    with pytest.raises(ValidationError) as info:
        organizations.create_organization("坏代码局", "X1", "11370000000000000A", "370000", actor=ACTOR)
    assert "uscc" in _field_codes(info.value)
    with pytest.raises(ValidationError) as info:
        organizations.create_organization("错级局", "X2", _uscc("370000", 9), "370000", actor=ACTOR, level=3)
    assert _field_codes(info.value) == {"level": {"organization_level"}}
    with pytest.raises(ValidationError) as info:
        organizations.create_organization("汇总局", "X3", _uscc("370101", 1), "370101", actor=ACTOR)
    assert _field_codes(info.value) == {"division": {"organization_division"}}
    with pytest.raises(ValidationError) as info:
        organizations.create_organization("无区划局", "X4", _uscc("370000", 8), "379999", actor=ACTOR)
    assert "division" in _field_codes(info.value)
    # A provincial department cannot hang under a city government …
    with pytest.raises(ValidationError) as info:
        organizations.create_organization(
            "省某局", "X5", _uscc("370000", 7), "370000", actor=ACTOR, parent=jinan_gov
        )
    assert _field_codes(info.value) == {"parent": {"organization_parent_level"}}
    # … and a Qingdao bureau not under Jinan's government.
    with pytest.raises(ValidationError) as info:
        organizations.create_organization(
            "青岛某局", "X6", _uscc("370200", 1), "370200", actor=ACTOR, parent=jinan_gov
        )
    assert _field_codes(info.value) == {"parent": {"organization_parent_division"}}
    with pytest.raises(ValidationError) as info:
        organizations.create_organization("重复局", "T-370100-GOV", jinan_gov.uscc, "370100", actor=ACTOR)
    assert _field_codes(info.value) == {"code": {"organization_code_taken"}, "uscc": {"uscc_taken"}}
    assert Organization.objects.count() == 2
    assert len(_audit("kernel.organization.create")) == 2  # refusals leave no record


def test_update_records_changes_and_refuses_cycles(province_gov, jinan_gov):
    updated = organizations.update_organization(
        jinan_gov, actor=ACTOR, name="济南市人民政府（新）", duties="新职能"
    )
    assert updated.name == "济南市人民政府（新）"
    record = _audit("kernel.organization.update")[-1]
    changes = json.loads(record.detail_json)["changes"]
    assert changes["name"] == {"from": "济南市人民政府", "to": "济南市人民政府（新）"}
    assert "duties_length" in changes
    assert OutboxEvent.objects.filter(event_type="kernel.organization.updated").count() == 1
    organizations.update_organization(updated, actor=ACTOR, name="济南市人民政府（新）")  # no change
    assert len(_audit("kernel.organization.update")) == 1
    with pytest.raises(ValidationError) as info:
        organizations.update_organization(province_gov, actor=ACTOR, parent=province_gov)
    assert _field_codes(info.value) == {"parent": {"organization_parent_cycle"}}
    lixia = organizations.create_organization(
        "历下区人民政府", "T-370102-GOV", _uscc("370102", 1), "370102", actor=ACTOR, parent=jinan_gov
    )
    with pytest.raises(ValidationError) as info:
        organizations.update_organization(jinan_gov, actor=ACTOR, parent=lixia)
    assert "parent" in _field_codes(info.value)
    with pytest.raises(TypeError):
        organizations.update_organization(jinan_gov, actor=ACTOR, is_active=False)
    organizations.update_organization(jinan_gov, actor=ACTOR, division="370200", name="青岛市人民政府")
    jinan_gov.refresh_from_db()
    assert jinan_gov.division.code == "370200"


def test_deactivate_requires_no_active_children(province_gov, jinan_gov):
    with pytest.raises(ValidationError) as info:
        organizations.deactivate_organization(province_gov, actor=ACTOR)
    assert info.value.code == "organization_has_children"
    assert "济南市人民政府" in info.value.messages[0]
    organizations.deactivate_organization(jinan_gov, actor=ACTOR, reason="机构改革")
    organizations.deactivate_organization(province_gov, actor=ACTOR)
    assert not Organization.objects.filter(is_active=True).exists()
    detail = json.loads(_audit("kernel.organization.deactivate")[0].detail_json)
    assert detail == {"reason": "机构改革", "officials_still_assigned": 0}
    # A child cannot come back under an inactive parent.
    with pytest.raises(ValidationError):
        organizations.reactivate_organization(jinan_gov, actor=ACTOR)
    organizations.reactivate_organization(province_gov, actor=ACTOR)
    organizations.reactivate_organization(jinan_gov, actor=ACTOR)
    assert Organization.objects.filter(is_active=True).count() == 2


@pytest.fixture
def demo(loaded):
    return organizations.generate_demo_organizations("370000", 11, actor=ACTOR)


def test_demo_set(demo):
    by_code = {o.code: o for o in demo}
    assert len(demo) == Organization.objects.count() > 600
    assert all(is_valid_uscc(o.uscc) and o.uscc.startswith("11") for o in demo)
    assert len({o.uscc for o in demo}) == len(demo)
    assert all(o.duties for o in demo)
    police = by_code["370000-GAT"]
    assert police.name == "山东省公安厅" and police.parent.code == "370000-GOV" and police.kind == "GA"
    tax = by_code["370000-SWJ"]
    assert tax.is_vertical and tax.parent is None and tax.name == "国家税务总局山东省税务局"
    assert by_code["370102-GAJ"].name == "济南市公安局历下分局"
    assert by_code["370124-GAJ"].name == "平阴县公安局"
    assert by_code["370102-XZSP"].parent.code == "370102-GOV"
    assert by_code["370102-GOV"].parent.code == "370100-GOV"
    assert by_code["370100-DSJ"].level == Organization.Level.CITY
    assert not any(o.division.placeholder for o in demo)
    assert "全市" in by_code["370100-SCJG"].duties and "全区" in by_code["370102-SCJG"].duties
    for org in demo[:50]:
        organizations.check_organization(org)  # the generated set obeys the service rules
    records = _audit("kernel.organization.generate_demo")
    assert len(records) == 1 and json.loads(records[0].detail_json)["created"] == len(demo)
    assert not _audit("kernel.organization.create")


def test_demo_set_is_deterministic_and_idempotent(demo):
    first = {o.code: o.uscc for o in demo}
    again = organizations.generate_demo_organizations("370000", 11, actor=ACTOR)
    assert {o.code: o.uscc for o in again} == first
    assert json.loads(_audit("kernel.organization.generate_demo")[-1].detail_json)["created"] == 0
    Organization.objects.update(parent=None)
    Organization.objects.all().delete()
    rebuilt = organizations.generate_demo_organizations("370000", 11, actor=ACTOR)
    assert {o.code: o.uscc for o in rebuilt} == first


def test_demo_needs_divisions(db):
    Division.objects.create(code="370000", name="山东省", level=1, full_name="山东省")
    with pytest.raises(ValidationError) as info:
        organizations.generate_demo_organizations("370000", 1, actor=ACTOR)
    assert info.value.code == "divisions_missing"


def test_scope_and_tree(demo):
    def codes(division_code):
        return {o.code for o in organizations.organizations_in_scope(division_code)}

    province = codes("370000")
    jinan = codes("370100")
    lixia = codes("370102")
    assert len(province) == len(demo)
    assert "370102-GAJ" in jinan and "370100-GAJ" in jinan
    assert not any(code.startswith(("370000", "3702")) for code in jinan)  # no province, no Qingdao
    assert lixia == {c for c in province if c.startswith("370102-")}
    organizations.deactivate_organization(Organization.objects.get(code="370102-XZSP"), actor=ACTOR)
    assert "370102-XZSP" not in codes("370102")
    assert "370102-XZSP" in {
        o.code for o in organizations.organizations_in_scope("370102", include_inactive=True)
    }
    assert organizations.find_department("370102", "SCJG").code == "370102-SCJG"
    assert organizations.find_department("370102", "DSJ") is None

    tree = organizations.department_tree(Organization.objects.get(code="370100-GOV"))
    walked = list(tree.walk())
    assert walked[0] == (0, tree.org)
    assert len(tree) == len(jinan) - 1  # the inactive XZSP of 历下区 is left out
    depth = {org.code: d for d, org in walked}
    assert depth["370100-GAJ"] == 1 and depth["370102-GOV"] == 1 and depth["370102-GAJ"] == 2


def test_admin_pages(admin_client, demo):
    response = admin_client.get("/admin/kernel/organization/", {"q": "公安"})
    assert response.status_code == 200
    response = admin_client.get("/admin/kernel/division/", {"q": "历下"})
    assert response.status_code == 200
    org = Organization.objects.get(code="370102-SCJG")
    response = admin_client.get(f"/admin/kernel/organization/{org.pk}/change/")
    assert response.status_code == 200
    data = {
        "name": "济南市历下区市场监督管理局",
        "short_name": org.short_name,
        "code": org.code,
        "uscc": org.uscc,
        "level": org.level,
        "division": org.division_id,
        "parent": org.parent_id,
        "kind": org.kind,
        "duties": org.duties,
    }
    response = admin_client.post(f"/admin/kernel/organization/{org.pk}/change/", data)
    assert response.status_code == 302
    org.refresh_from_db()
    assert org.name == "济南市历下区市场监督管理局"
    assert _audit("kernel.organization.update")
    # The service rules show up as form errors.
    response = admin_client.post(f"/admin/kernel/organization/{org.pk}/change/", {**data, "level": 1})
    assert response.status_code == 200
    assert "层级" in response.content.decode()
