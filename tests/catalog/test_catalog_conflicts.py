"""一数一源: two departments declaring the same information item as their own are flagged."""

import pytest
from django.core.exceptions import ValidationError

from dgov.catalog import services
from dgov.catalog.models import ReviewRecord

pytestmark = pytest.mark.django_db

ID_ITEM = [{"registry": "t.person", "registry_field": "id_number", "sharing_type": "conditional"}]
GA_DATA = {"sharing_type": "conditional", "sharing_conditions": "身份核验"}


def test_same_registry_field_claimed_by_two_departments(users, make_entry):
    ga = make_entry(users["ga"], name="人口基本信息", cls="101001", items=ID_ITEM, publish_by=users["dsj"], **GA_DATA)
    assert services.conflicts_for(ga) == []
    mz = make_entry(users["mz"], name="婚姻登记信息", cls="101003", items=ID_ITEM, **GA_DATA)
    kinds = sorted(c.kind for c in services.conflicts_for(mz))
    assert kinds == ["authority", "registry_field"]
    clash = next(c for c in services.conflicts_for(mz) if c.kind == "registry_field")
    assert clash.other_code == ga.code and clash.other_provider == "山东省公安厅" and clash.item_code == "id_number"
    # Symmetric once MZ's entry is submitted: GA's entry shows the clash too.
    assert services.conflicts_for(ga) == []  # MZ's draft does not count
    services.submit(mz, actor=users["mz"])
    assert [c.other_code for c in services.conflicts_for(ga)] == [mz.code]
    assert ReviewRecord.objects.get(resource=mz, action="submit").conflicts[0]["kind"] in (
        "registry_field",
        "authority",
    )
    # Approving needs a note on the conflict.
    with pytest.raises(ValidationError):
        services.review(mz, actor=users["dsj"], approve=True, reason="")
    services.review(mz, actor=users["dsj"], approve=True, reason="已协调：民政厅改为引用公安厅数据")
    assert ReviewRecord.objects.get(resource=mz, action="approve").conflicts


def test_referenced_items_and_same_department_do_not_conflict(users, make_entry):
    make_entry(users["ga"], name="人口基本信息", cls="101001", items=ID_ITEM, publish_by=users["dsj"], **GA_DATA)
    referenced = [{**ID_ITEM[0], "is_own": False}]
    mz = make_entry(users["mz"], name="婚姻登记信息", cls="101003", items=referenced, **GA_DATA)
    assert services.conflicts_for(mz) == []
    again = make_entry(users["ga2"], name="人口基本信息（副本）", cls="101001", items=ID_ITEM, **GA_DATA)
    assert services.conflicts_for(again) == []  # one department may describe its own data twice


def test_same_data_element_and_normalized_name(users, make_entry):
    item = {"code": "licence_no", "name": "食品经营许可证编号", "data_type": "C", "data_element": "de01234"}
    make_entry(users["scjg"], name="食品经营许可信息", cls="207", items=[item], publish_by=users["dsj"])
    same = {**item, "name": "食品经营许可证编号（新版）", "data_element": "DE01234"}
    other_element = {**item, "code": "other", "data_element": "DE09999"}
    no_element = {**item, "code": "plain", "data_element": ""}
    mz = make_entry(users["mz"], name="许可信息", cls="206", items=[same, other_element, no_element])
    conflicts = services.conflicts_for(mz)
    assert [(c.kind, c.item_code, c.detail) for c in conflicts] == [("data_element", "licence_no", "DE01234")]


def test_retired_entries_no_longer_conflict(users, make_entry):
    ga = make_entry(users["ga"], name="人口基本信息", cls="101001", items=ID_ITEM, publish_by=users["dsj"], **GA_DATA)
    wj = make_entry(users["mz"], name="婚姻登记信息", cls="101003", items=[{**ID_ITEM[0], "is_own": True}], **GA_DATA)
    assert any(c.kind == "registry_field" for c in services.conflicts_for(wj))
    services.retire(ga, actor=users["ga"], reason="合并")
    assert not any(c.kind == "registry_field" for c in services.conflicts_for(wj))
