"""Registry engine services: registries, records, keys, search, bulk creation, reads and their log."""

import json
import uuid

import pytest
from django.db import connection
from engine_fixtures import *  # noqa: F403
from engine_fixtures import PERSON_FIELDS, pid

from dgov.kernel.fields import blind_index
from dgov.kernel.models import AuditRecord, OutboxEvent
from dgov.registry import services
from dgov.registry.models import AccessLog, Record, RecordChange, RecordKey, RegistrySchema
from dgov.registry.schema import RecordValidationError, SchemaError


def person_values(seq, **extra):
    """Minimal valid person values of 历下区."""
    return {"id_number": pid(seq), "name": "王五", "division": "370102", **extra}


# --- registries and schema versions ---------------------------------------------------------------------


def test_create_registry_publishes_version_one(person_registry):
    schema = person_registry.current_schema
    assert schema.version == 1 and schema.status == RegistrySchema.Status.PUBLISHED
    fields = services.registry_fields(person_registry)
    assert [field.name for field in fields] == [d["name"] for d in PERSON_FIELDS]
    identifier = fields[0]
    assert identifier.required and identifier.unique and identifier.lookup
    assert AuditRecord.objects.filter(action="registry.registry.create", target_id=str(person_registry.pk)).exists()
    assert services.get_registry("test.person") == person_registry
    with pytest.raises(services.RegistryNotFound):
        services.get_registry("nope")


def test_create_registry_refuses_bad_definitions(orgs, officials):
    base = {"name": "x", "owner": orgs["ga"], "library_code": "t", "actor": "system:test"}
    with pytest.raises(SchemaError, match="标识字段"):
        services.create_registry(code="t.a", identifier_field="missing", fields=[{"name": "a", "label": "a"}], **base)
    with pytest.raises(SchemaError, match="区划字段"):
        services.create_registry(
            code="t.b", identifier_field="a", scope_field="a", fields=[{"name": "a", "label": "a"}], **base
        )
    with pytest.raises(SchemaError, match="编码"):
        services.create_registry(code="bad code", identifier_field="a", fields=[{"name": "a", "label": "a"}], **base)
    with pytest.raises(services.PermissionDenied):
        services.create_registry(
            code="t.c", identifier_field="a", fields=[{"name": "a", "label": "a"}], **{**base, "actor": officials["mz"]}
        )


def test_duplicate_registry_code_is_refused(person_registry, orgs):
    with pytest.raises(SchemaError, match="已存在"):
        services.create_registry(
            code="test.person",
            name="x",
            owner=orgs["ga"],
            library_code="t",
            identifier_field="id_number",
            fields=PERSON_FIELDS,
            actor="system:test",
        )


def test_new_version_adds_fields_records_keep_theirs(person, person_registry, officials):
    fields = [*PERSON_FIELDS, {"name": "nickname", "label": "曾用名", "authority": "GA", "sensitivity": "personal"}]
    schema = services.publish_schema_version(person_registry, fields, actor="system:test", note="曾用名")
    assert schema.version == 2
    person_registry.refresh_from_db()
    assert person_registry.current_schema_id == schema.pk
    assert RegistrySchema.objects.get(registry=person_registry, version=1).status == RegistrySchema.Status.RETIRED
    assert person.schema_version == 1
    # An update of old fields keeps the record's version; setting the new field moves it to v2.
    services.update_record(person, {"address": "山东省济南市历下区经十路2号"}, actor=officials["ga"])
    person.refresh_from_db()
    assert person.schema_version == 1
    services.update_record(person, {"nickname": "张小三"}, actor=officials["ga"])
    person.refresh_from_db()
    assert person.schema_version == 2
    assert services.record_values(person)["nickname"] == "张小三"


def test_publishing_refuses_removal_retyping_and_no_change(person_registry):
    with pytest.raises(SchemaError, match="删除"):
        services.publish_schema_version(person_registry, PERSON_FIELDS[:-1], actor="system:test")
    retyped = [dict(d) for d in PERSON_FIELDS]
    retyped[3] = {**retyped[3], "type": "string"}
    with pytest.raises(SchemaError, match="类型"):
        services.publish_schema_version(person_registry, retyped, actor="system:test")
    with pytest.raises(SchemaError, match="相同"):
        services.publish_schema_version(person_registry, PERSON_FIELDS, actor="system:test")
    assert person_registry.schemas.count() == 1


def test_only_admins_or_the_owner_publish_versions(person_registry, officials, admin_user):
    fields = [*PERSON_FIELDS, {"name": "x1", "label": "x1"}]
    with pytest.raises(services.PermissionDenied):
        services.publish_schema_version(person_registry, fields, actor=officials["mz"])
    services.publish_schema_version(person_registry, fields, actor=officials["ga"])
    services.publish_schema_version(person_registry, [*fields, {"name": "x2", "label": "x2"}], actor=admin_user)
    assert person_registry.current_schema.version == 3


# --- creating, storing, keys ----------------------------------------------------------------------------


def test_personal_values_are_sealed_not_stored_in_clear(person, person_registry):
    assert set(person.data) == {"sex", "birth_date", "division"}
    with connection.cursor() as cursor:
        cursor.execute("SELECT data, sealed FROM registry_record WHERE id = %s", [person.pk])
        data, sealed = cursor.fetchone()
    assert "张三" not in str(data) and "张三" not in sealed
    assert "13812345678" not in sealed and sealed.startswith("v1:")
    values = services.record_values(Record.objects.get(pk=person.pk))
    assert values["name"] == "张三" and values["phone"] == "13812345678"
    assert person.division_code == "370102"
    assert person.created_by_org.code == "370102-GA"


def test_keys_are_blind_indexes_shared_across_registries(person, orgs):
    keys = {key.field: key for key in RecordKey.objects.filter(record=person)}
    assert set(keys) == {"id_number", "phone"}
    assert keys["id_number"].digest == blind_index(pid(11), purpose="resident_id")
    assert keys["id_number"].is_unique and not keys["phone"].is_unique
    assert keys["phone"].digest == blind_index("13812345678", purpose="phone")


def test_create_writes_audit_and_event_without_personal_values(person):
    entry = AuditRecord.objects.get(action="registry.record.create", target_id=str(person.pk))
    assert "张三" not in entry.detail_json and pid(11) not in entry.detail_json
    assert "name" in json.loads(entry.detail_json)["fields"]
    event = OutboxEvent.objects.get(event_type="registry.record.created", aggregate_id=str(person.uid))
    assert event.payload["registry"] == "test.person" and event.aggregate == "registry:test.person"
    assert "name" in event.payload["fields"]


def test_unique_identifier_is_enforced(person, person_registry, officials):
    with pytest.raises(RecordValidationError) as excinfo:
        services.create_record(person_registry, person_values(11), actor=officials["ga"])
    assert "已存在" in excinfo.value.errors["id_number"][0]


def test_invalid_values_are_refused_per_field(person_registry, officials):
    with pytest.raises(RecordValidationError) as excinfo:
        services.create_record(
            person_registry, {"id_number": "123", "sex": "?", "division": "370102"}, actor=officials["ga"]
        )
    assert set(excinfo.value.errors) == {"id_number", "sex"}


def test_references_must_name_a_live_record(person_registry, household_registry, officials):
    household = services.create_record(
        household_registry, {"household_no": "H1", "division": "370102"}, actor=officials["ga"]
    )
    record = services.create_record(
        person_registry, person_values(12, household=str(household.uid)), actor=officials["ga"]
    )
    assert services.record_values(record)["household"] == str(household.uid)
    with pytest.raises(RecordValidationError) as excinfo:
        services.create_record(person_registry, person_values(13, household=str(uuid.uuid4())), actor=officials["ga"])
    assert "test.household" in excinfo.value.errors["household"][0]


def test_uids_are_time_ordered():
    first, second = services.new_uid(), services.new_uid()
    assert first.version == 7 and first.variant == uuid.RFC_4122
    assert first.int >> 80 <= second.int >> 80


# --- updating -------------------------------------------------------------------------------------------


def test_update_records_change_bumps_version_and_keeps_keys_in_sync(person, person_registry, officials):
    services.update_record(person, {"phone": "13900000000", "sex": "女"}, actor=officials["ga"], reason="更正")
    assert person.version == 2
    change = RecordChange.objects.get(record=person)
    assert change.changes == {"sex": ["男", "女"]}
    assert json.loads(change.sealed) == {"phone": ["13812345678", "13900000000"]}
    assert change.source.code == "370000-GA" and change.reason == "更正"
    assert services.find_record(person_registry, "phone", "13900000000") == person
    assert services.find_record(person_registry, "phone", "13812345678") is None
    assert RecordKey.objects.filter(record=person, field="phone").count() == 1
    event = OutboxEvent.objects.get(event_type="registry.record.updated")
    assert sorted(event.payload["fields"]) == ["phone", "sex"]


def test_update_with_no_change_writes_nothing(person, officials):
    services.update_record(person, {"sex": "男"}, actor=officials["ga"])
    assert person.version == 1 and not RecordChange.objects.exists()


def test_clearing_a_value(person, officials, person_registry):
    services.update_record(person, {"phone": None}, actor=officials["ga"])
    assert "phone" not in services.record_values(person)
    assert services.find_record(person_registry, "phone", "13812345678") is None


def test_expected_version_conflict(person, officials):
    with pytest.raises(services.VersionConflict):
        services.update_record(person, {"sex": "女"}, actor=officials["ga"], expected_version=5)
    services.update_record(person, {"sex": "女"}, actor=officials["ga"], expected_version=1)
    assert person.version == 2


def test_update_cannot_take_another_records_unique_value(person, person_registry, officials):
    other = services.create_record(person_registry, person_values(12), actor=officials["ga"])
    with pytest.raises(RecordValidationError, match="已存在"):
        services.update_record(other, {"id_number": pid(11)}, actor=officials["ga"])


def test_update_or_create(person_registry, officials):
    record, created = services.update_or_create_record(
        person_registry, {"id_number": pid(20)}, {"name": "赵六", "division": "370102"}, actor=officials["ga"]
    )
    assert created
    again, created = services.update_or_create_record(
        person_registry, {"id_number": pid(20)}, {"name": "赵六六"}, actor=officials["ga"]
    )
    assert not created and again.pk == record.pk
    assert services.record_values(again)["name"] == "赵六六"
    with pytest.raises(RecordValidationError):
        services.update_or_create_record(person_registry, {"sex": "男", "name": "x"}, {}, actor=officials["ga"])


# --- delete and restore ---------------------------------------------------------------------------------


def test_soft_delete_frees_the_unique_value_and_restore_rechecks(person, person_registry, officials):
    with pytest.raises(services.ValidationError):
        services.delete_record(person, actor=officials["ga"], reason="")
    services.delete_record(person, actor=officials["ga"], reason="死亡注销")
    assert person.deleted_at is not None
    assert services.find_record(person_registry, "id_number", pid(11)) is None
    assert RecordChange.objects.get(record=person).kind == RecordChange.Kind.DELETE
    assert OutboxEvent.objects.filter(event_type="registry.record.deleted").exists()
    with pytest.raises(services.RecordDeleted):
        services.update_record(person, {"sex": "女"}, actor=officials["ga"])
    replacement = services.create_record(person_registry, person_values(11), actor=officials["ga"])
    with pytest.raises(RecordValidationError, match="已存在"):
        services.restore_record(person, actor=officials["ga"], reason="误删")
    services.delete_record(replacement, actor=officials["ga"], reason="重复")
    services.restore_record(person, actor=officials["ga"], reason="误删")
    assert person.deleted_at is None
    assert services.find_record(person_registry, "id_number", pid(11)) == person


def test_deleted_records_are_not_read(person, officials):
    services.delete_record(person, actor=officials["ga"], reason="注销")
    with pytest.raises(services.RecordNotFound):
        services.read_record(person, actor=officials["ga"])


# --- reading and the access log -------------------------------------------------------------------------


def test_read_masks_personal_values_and_logs_the_read(person, officials):
    out = services.read_record(person, actor=officials["wj"], purpose="就医核验", channel="api")
    assert out["uid"] == str(person.uid) and out["registry"] == "test.person"
    assert out["values"]["name"] == "张*"
    assert out["values"]["id_number"] == pid(11)[:6] + "********" + pid(11)[-4:]
    assert out["values"]["sex"] == "男"
    log = AccessLog.objects.get(record=person)
    assert log.reader_org.code == "370000-WJ" and log.reader == "off-wj"
    assert log.purpose == "就医核验" and log.channel == "api"
    assert log.subject_digest == blind_index(pid(11), purpose="resident_id")
    assert "name" in log.fields


def test_read_unmasked_and_selected_fields(person, officials):
    out = services.read_record(person, actor=officials["ga"], fields=["name", "sex"], unmask=True, purpose="办案")
    assert out["values"] == {"name": "张三", "sex": "男"}
    assert "<unmasked>" in AccessLog.objects.get(record=person).fields
    with pytest.raises(RecordValidationError):
        services.read_record(person, actor=officials["ga"], fields=["nope"])


def test_access_log_for_subject_spans_registries(person, officials, orgs, person_registry):
    other = services.create_registry(
        code="test.insured",
        name="参保人员",
        owner=orgs["wj"],
        library_code="social",
        identifier_field="id_number",
        fields=[{"name": "id_number", "label": "身份证号", "type": "resident_id", "sensitivity": "personal"}],
        actor="system:test",
    )
    insured = services.create_record(other, {"id_number": pid(11)}, actor=officials["wj"])
    services.read_record(person, actor=officials["wj"], purpose="a")
    services.read_record(insured, actor=officials["wj"], purpose="b")
    services.read_record(insured, actor=officials["dsj"], purpose="c")
    logs = list(services.access_log_for_subject(pid(11)))
    assert [log.purpose for log in logs] == ["c", "b", "a"]
    assert {log.registry.code for log in logs} == {"test.person", "test.insured"}
    assert not services.access_log_for_subject(pid(12)).exists()


def test_log_reads_for_lists(person, person_registry, officials):
    page, _total = services.search_records(person_registry)
    assert services.log_reads(page, actor=officials["ga"], purpose="列表") == 1
    assert AccessLog.objects.get().subject_digest == blind_index(pid(11), purpose="resident_id")


# --- find and search ------------------------------------------------------------------------------------


def test_find_record_by_identifier_and_lookup(person, person_registry):
    assert services.find_record(person_registry, "id_number", pid(11)) == person
    assert services.find_record(person_registry, "id_number", pid(11).lower()) == person
    assert services.find_record(person_registry, "phone", "138-1234-5678") == person
    assert services.find_record(person_registry, "id_number", "garbage") is None
    with pytest.raises(RecordValidationError):
        services.find_record(person_registry, "sex", "男")


@pytest.fixture
def people(person_registry, officials):
    """Five persons with heights and incomes, two of them in 市中区."""
    rows = [
        person_values(30, sex="男", height=170, income="1000.5", name="甲"),
        person_values(31, sex="女", height=160, income="99", name="乙"),
        person_values(32, sex="男", height=180, income="20000", name="丙"),
        {**person_values(33, sex="女", height=150, income="5"), "division": "370103"},
        {**person_values(34, sex="男", height=175), "division": "370103", "phone": "13700000000"},
    ]
    services.bulk_create_records(person_registry, rows, actor=officials["ga"], source=None)
    return rows


def test_search_filters_ordering_and_paging(people, person_registry):
    page, total = services.search_records(person_registry, filters={"sex": "男"}, order_by="-height")
    assert total == 3
    assert [services.record_values(r)["height"] for r in page] == [180, 175, 170]
    page, total = services.search_records(person_registry, filters={"height__gte": "170"}, order_by="height", limit=2)
    assert total == 3 and [services.record_values(r)["height"] for r in page] == [170, 175]
    page, total = services.search_records(person_registry, order_by="height", offset=4, limit=10)
    assert total == 5 and [services.record_values(r)["height"] for r in page] == [180]
    # Decimals are compared as numbers, not text ("99" < "1000.5").
    _page, total = services.search_records(person_registry, filters={"income__gt": "100"})
    assert total == 2
    page, _total = services.search_records(person_registry, filters={"income__gte": "0"}, order_by="income")
    assert [services.record_values(r)["income"] for r in page] == ["5", "99", "1000.5", "20000"]
    _page, total = services.search_records(person_registry, filters={"sex__in": ["女"]})
    assert total == 2


def test_search_by_division_text_and_personal_exact(people, person_registry):
    _page, total = services.search_records(person_registry, division_code="370103")
    assert total == 2
    _page, total = services.search_records(person_registry, division_code="370100")
    assert total == 5
    page, total = services.search_records(person_registry, filters={"phone": "13700000000"})
    assert total == 1 and services.record_values(page[0])["id_number"] == pid(34)
    _page, total = services.search_records(person_registry, filters={"id_number__in": [pid(30), pid(31), "bad"]})
    assert total == 2
    _page, total = services.search_records(person_registry, filters={"birth_date__contains": "1990"})
    assert total == 0
    with pytest.raises(RecordValidationError, match="个人信息"):
        services.search_records(person_registry, filters={"name": "甲"})
    with pytest.raises(RecordValidationError, match="个人信息"):
        services.search_records(person_registry, order_by="name")
    with pytest.raises(RecordValidationError):
        services.search_records(person_registry, filters={"height__regex": "1"})
    with pytest.raises(RecordValidationError):
        services.search_records(person_registry, filters={"height": "tall"})


def test_search_text_query_over_public_strings(person_registry, household_registry, officials):
    services.create_record(household_registry, {"household_no": "LX-001", "division": "370102"}, actor=officials["ga"])
    services.create_record(household_registry, {"household_no": "SZ-002", "division": "370103"}, actor=officials["ga"])
    page, total = services.search_records(household_registry, query="lx")
    assert total == 1 and page[0].data["household_no"] == "LX-001"


def test_search_excludes_deleted(people, person_registry, officials):
    record = services.find_record(person_registry, "id_number", pid(30))
    services.delete_record(record, actor=officials["ga"], reason="注销")
    assert services.search_records(person_registry)[1] == 4


# --- bulk creation --------------------------------------------------------------------------------------


def test_bulk_create_writes_records_keys_one_audit_and_one_event(person_registry, officials):
    seen = []
    rows = [person_values(100 + i, phone=f"1380000{i:04d}") for i in range(25)]
    assert (
        services.bulk_create_records(
            person_registry, rows, actor=officials["ga"], source=None, batch_size=10, progress=seen.append
        )
        == 25
    )
    assert seen == [10, 20, 25]
    assert Record.objects.filter(registry=person_registry).count() == 25
    assert RecordKey.objects.filter(registry=person_registry).count() == 50
    record = services.find_record(person_registry, "id_number", pid(117))
    assert services.record_values(record)["phone"] == "13800000017"
    assert record.division_code == "370102" and record.created_by_org.code == "370000-GA"
    assert len({r.uid for r in Record.objects.all()}) == 25
    assert AuditRecord.objects.filter(action="registry.record.bulk_create").count() == 1
    assert not AuditRecord.objects.filter(action="registry.record.create").exists()
    event = OutboxEvent.objects.get(event_type="registry.records.imported")
    assert event.payload["count"] == 25


def test_bulk_create_reports_every_bad_row_and_writes_nothing(person, person_registry, officials):
    rows = [
        person_values(200),
        person_values(201, sex="?"),
        person_values(200),  # duplicate of row 1
        person_values(11),  # already stored
        {"name": "无证"},
        person_values(202),
    ]
    with pytest.raises(RecordValidationError) as excinfo:
        services.bulk_create_records(person_registry, rows, actor=officials["ga"], source=None, batch_size=2)
    errors = excinfo.value.errors
    assert set(errors) == {"row 2: sex", "row 3: id_number", "row 4: id_number", "row 5: id_number", "row 5: division"}
    assert "第 1 行" in errors["row 3: id_number"][0]
    assert "已存在" in errors["row 4: id_number"][0]
    assert Record.objects.count() == 1 and RecordKey.objects.count() == 2


def test_bulk_create_uses_caller_row_numbers_and_checks_references_per_batch(
    person_registry, household_registry, officials, django_assert_max_num_queries
):
    household = services.create_record(
        household_registry, {"household_no": "H9", "division": "370102"}, actor=officials["ga"]
    )
    missing = str(uuid.uuid4())
    rows = [(i + 2, person_values(300 + i, household=str(household.uid))) for i in range(50)]
    rows[7] = (9, person_values(307, household=missing))
    with pytest.raises(RecordValidationError) as excinfo:
        services.bulk_create_records(person_registry, rows, actor=officials["ga"], source=None)
    assert list(excinfo.value.errors) == ["row 9: household"]
    rows[7] = (9, person_values(307, household=str(household.uid)))
    # One batch: a few queries in all, not one per row.
    with django_assert_max_num_queries(25):
        assert services.bulk_create_records(person_registry, rows, actor=officials["ga"], source=None) == 50


def test_bulk_create_max_errors(person_registry, officials):
    rows = [person_values(400 + i, sex="?") for i in range(10)]
    with pytest.raises(RecordValidationError) as excinfo:
        services.bulk_create_records(person_registry, rows, actor=officials["ga"], source=None, max_errors=3)
    assert len(excinfo.value.errors) == 3


def test_bulk_create_with_given_uids(person_registry, officials):
    uid = uuid.uuid4()
    services.bulk_create_records(
        person_registry, [{**person_values(500), services.UID_KEY: str(uid)}], actor=officials["ga"], source=None
    )
    assert Record.objects.get(uid=uid).data["division"] == "370102"


def test_bulk_create_without_validation_trusts_cleaned_rows(person_registry, officials):
    rows = [{"id_number": pid(600), "name": "甲", "division": "370102", "height": 170}]
    assert services.bulk_create_records(person_registry, rows, actor=officials["ga"], source=None, validate=False) == 1
    assert services.record_values(Record.objects.get())["height"] == 170


def test_bulk_create_refuses_repeated_or_used_uids(person, person_registry, officials):
    uid = uuid.uuid4()
    rows = [
        {**person_values(700), services.UID_KEY: uid},
        {**person_values(701), services.UID_KEY: str(uid)},
        {**person_values(702), services.UID_KEY: str(person.uid)},
        {**person_values(703), services.UID_KEY: "nope"},
    ]
    with pytest.raises(RecordValidationError) as excinfo:
        services.bulk_create_records(person_registry, rows, actor=officials["ga"], source=None, batch_size=1)
    assert set(excinfo.value.errors) == {"row 2: _uid", "row 3: _uid", "row 4: _uid"}
    assert "已被其他记录使用" in excinfo.value.errors["row 3: _uid"][0]
    assert Record.objects.count() == 1
