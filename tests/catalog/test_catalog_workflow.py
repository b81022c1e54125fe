"""The catalogue workflow: create, edit, submit, review, publish versions, retire — with permissions and audit."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from dgov.catalog import services
from dgov.catalog.models import InformationResource, ResourceVersion, ReviewRecord
from dgov.kernel.models import AuditRecord, OutboxEvent

pytestmark = pytest.mark.django_db
S = InformationResource.Status


def test_create_allocates_code_and_derives_items_from_registry(users, make_entry, orgs):
    first = make_entry(users["scjg"])
    second = make_entry(users["scjg"], name="企业成立信息")
    assert first.code == "102001000/000001"
    assert second.code == "102001000/000002"
    assert first.status == S.DRAFT and first.provider == orgs["scjg"]
    assert first.provider_code == orgs["scjg"].uscc
    items = list(first.items.order_by("position"))
    assert [(i.code, i.name, i.data_type, i.length) for i in items] == [
        ("uscc", "统一社会信用代码", "C", 18),
        ("name", "名称", "C", 200),
    ]
    assert items[0].source_key == "t.enterprise#uscc"
    assert AuditRecord.objects.filter(action="catalog.resource.create", target_id=str(first.pk)).exists()


def test_full_workflow_publishes_versions(users, make_entry):
    resource = make_entry(users["scjg"])
    record = services.submit(resource, actor=users["scjg"])
    assert resource.status == S.SUBMITTED and record.due_on is not None
    services.review(resource, actor=users["dsj"], approve=True, reason="")
    assert resource.status == S.PUBLISHED and resource.version == 1 and resource.published_on is not None
    v1 = resource.published_version
    assert v1.snapshot["name"] == "企业营业执照信息" and [i["code"] for i in v1.snapshot["items"]] == ["uscc", "name"]

    # A revision: the working copy becomes a draft; the published version stays live until approved.
    services.update_resource(
        resource,
        actor=users["scjg2"],
        classification=resource.classification,
        data={**_data(resource), "summary": "修订后的摘要"},
        items=[{"registry": "t.enterprise", "registry_field": "uscc"}],
    )
    assert resource.status == S.DRAFT and resource.published_version_id == v1.pk
    services.submit(resource, actor=users["scjg2"])
    services.review(resource, actor=users["dsj"], approve=True)
    assert resource.version == 2
    assert list(resource.versions.order_by("number").values_list("number", flat=True)) == [1, 2]
    assert resource.published_version.snapshot["summary"] == "修订后的摘要"
    assert ResourceVersion.objects.get(resource=resource, number=1).snapshot["summary"] != "修订后的摘要"
    actions = list(ReviewRecord.objects.filter(resource=resource).values_list("action", flat=True))
    assert actions == ["submit", "approve", "submit", "approve"]
    assert OutboxEvent.objects.filter(event_type="catalog.resource.published").count() == 2

    services.retire(resource, actor=users["scjg"], reason="业务已停止")
    assert resource.status == S.RETIRED
    with pytest.raises(services.InvalidTransition):
        services.retire(resource, actor=users["scjg"], reason="再次停用")
    assert AuditRecord.objects.filter(action="catalog.resource.retire", outcome="success").count() == 1


def _data(resource):
    return {name: getattr(resource, name) for name in services.RESOURCE_FIELDS}


def test_reject_needs_reason_and_returns_to_department(users, make_entry):
    resource = make_entry(users["scjg"])
    services.submit(resource, actor=users["scjg"])
    with pytest.raises(ValidationError):
        services.review(resource, actor=users["dsj"], approve=False, reason=" ")
    services.review(resource, actor=users["dsj"], approve=False, reason="摘要过于简单")
    assert resource.status == S.REJECTED and resource.version == 0
    assert ReviewRecord.objects.get(resource=resource, action="reject").note == "摘要过于简单"
    services.submit(resource, actor=users["scjg"])  # a rejected entry can be submitted again
    services.withdraw(resource, actor=users["scjg2"])
    assert resource.status == S.DRAFT


def test_other_department_cannot_edit_submit_or_retire(users, make_entry):
    resource = make_entry(users["scjg"])
    with pytest.raises(PermissionDenied):
        services.update_resource(
            resource, actor=users["ga"], classification=resource.classification, data=_data(resource), items=[]
        )
    with pytest.raises(PermissionDenied):
        services.submit(resource, actor=users["ga"])
    assert AuditRecord.objects.filter(action="catalog.resource.update", outcome="denied").exists()
    services.submit(resource, actor=users["scjg"])
    services.review(resource, actor=users["dsj"], approve=True)
    with pytest.raises(PermissionDenied):
        services.retire(resource, actor=users["ga"], reason="x")
    resource.refresh_from_db()
    assert resource.status == S.PUBLISHED


def test_only_covering_data_admins_review_and_never_their_own_submission(users, make_entry, orgs):
    resource = make_entry(users["scjg"])
    services.submit(resource, actor=users["scjg"])
    for outsider in ("scjg2", "ga", "admin", "dsj_city"):  # the city bureau does not cover a provincial department
        with pytest.raises(PermissionDenied):
            services.review(resource, actor=users[outsider], approve=True)
    assert services.review_inbox(users["dsj_city"]) == []
    assert services.review_inbox(users["dsj"]) == [resource]
    # A DSJ entry submitted by a DSJ official may not be approved by that same official.
    own = make_entry(
        users["dsj"],
        name="电子证照目录索引",
        cls="105",
        items=[{"code": "licence_id", "name": "证照标识", "data_type": "C"}],
    )
    services.submit(own, actor=users["dsj"])
    with pytest.raises(PermissionDenied):
        services.review(own, actor=users["dsj"], approve=True)
    services.review(own, actor=users["dsj2"], approve=True)
    assert own.status == S.PUBLISHED


def test_city_data_admin_covers_county_departments(users, make_entry, classes, orgs):
    resource = make_entry(
        users["ga_lixia"],
        name="历下区流动人口信息",
        cls="101001",
        items=[{"code": "flow_no", "name": "登记编号", "data_type": "C", "length": 20}],
    )
    services.submit(resource, actor=users["ga_lixia"])
    assert services.review_inbox(users["dsj_city"]) == [resource]
    services.review(resource, actor=users["dsj_city"], approve=True)
    assert resource.status == S.PUBLISHED


def test_bad_input_is_reported_per_field(users, classes, registries):
    with pytest.raises(ValidationError) as caught:
        services.create_resource(
            actor=users["ga"],
            classification=classes["1"],  # a 类 is too coarse
            data={
                "name": "",
                "summary": "",
                "format": "floppy",
                "sharing_type": "conditional",
                "update_cycle": "daily",
            },
            items=[
                {"registry": "t.person", "registry_field": "id_number", "sharing_type": "unconditional"},
                {"registry": "t.person", "registry_field": "nope"},
                {"code": "Bad Code", "name": "x", "data_type": "C"},
                {"code": "dup", "name": "a", "data_type": "C"},
                {"code": "dup", "name": "b", "data_type": "Q"},
            ],
        )
    errors = caught.value.message_dict
    for key in (
        "name",
        "summary",
        "format",
        "classification",
        "sharing_conditions",
        "sharing_mode",
        "items.1.sharing_type",
        "items.2.registry_field",
        "items.3.code",
        "items.5.code",
        "items.5.data_type",
    ):
        assert key in errors, key
    assert not InformationResource.objects.exists()


def test_item_cannot_be_more_open_than_resource(users, classes, registries, resource_data):
    with pytest.raises(ValidationError) as caught:
        services.create_resource(
            actor=users["scjg"],
            classification=classes["102001"],
            data=resource_data(sharing_type="conditional", sharing_conditions="用于市场监管执法"),
            items=[{"registry": "t.enterprise", "registry_field": "uscc", "sharing_type": "unconditional"}],
        )
    assert "更宽松" in caught.value.message_dict["items.1.sharing_type"][0]
    with pytest.raises(ValidationError) as caught:
        services.create_resource(
            actor=users["ga"],
            classification=classes["101001"],
            data=resource_data(name="人口基本信息"),
            items=[{"registry": "t.person", "registry_field": "id_number"}],  # inherits 无条件共享
        )
    assert "个人敏感字段" in caught.value.message_dict["items.1.sharing_type"][0]


def test_department_class_only_for_its_department(users, classes, registries, orgs, resource_data):
    node = services.department_class(orgs["ga"], actor="system:test")
    assert node.code == "301" and services.department_class(orgs["ga"], actor="system:test") == node
    with pytest.raises(ValidationError) as caught:
        services.create_resource(
            actor=users["scjg"],
            classification=node,
            data=resource_data(),
            items=[{"registry": "t.enterprise", "registry_field": "uscc"}],
        )
    assert "classification" in caught.value.message_dict


def test_published_classification_is_fixed(users, make_entry, classes):
    resource = make_entry(users["scjg"], publish_by=users["dsj"])
    with pytest.raises(ValidationError) as caught:
        services.update_resource(
            resource,
            actor=users["scjg"],
            classification=classes["207"],
            data=_data(resource),
            items=[{"registry": "t.enterprise", "registry_field": "uscc"}],
        )
    assert "classification" in caught.value.message_dict
    draft = make_entry(users["scjg"], name="草稿")
    services.update_resource(
        draft,
        actor=users["scjg"],
        classification=classes["207"],
        data=_data(draft),
        items=[{"registry": "t.enterprise", "registry_field": "uscc"}],
    )
    assert draft.code == "207000000/000001"


def test_quality_score_slot(users, make_entry):
    resource = make_entry(users["scjg"])
    assert resource.quality_score is None
    services.set_quality_score(resource, "87.5", actor="system:quality")
    assert str(resource.quality_score) == "87.50"
    with pytest.raises(ValidationError):
        services.set_quality_score(resource, 101, actor="system:quality")
