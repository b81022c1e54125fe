"""One data, one source (一数一源): who may write and read which fields and records."""

import datetime
import json
from types import SimpleNamespace

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone
from engine_fixtures import *  # noqa: F403
from engine_fixtures import pid

from dgov.kernel.models import AuditRecord
from dgov.registry import services
from dgov.registry.models import CorrectionRequest, Delegation, Observation, Record, RecordChange


def denials(action):
    """Denied audit records of an action, newest last."""
    return list(AuditRecord.objects.filter(action=action, outcome="denied").order_by("seq"))


# --- department_of ------------------------------------------------------------------------------------


def test_department_of(officials, orgs, admin_user, citizen_user):
    assert services.department_of(officials["ga"]) == orgs["ga"]
    assert services.department_of(SimpleNamespace(organization=orgs["wj"], client_id="c1")) == orgs["wj"]
    assert services.department_of(admin_user) is None
    assert services.department_of(citizen_user) is None
    assert services.department_of(None) is None and services.department_of("system:x") is None


# --- field authority ----------------------------------------------------------------------------------


def test_field_authority_by_kind_code_and_alternatives(person_registry, orgs):
    assert services.can_write(person_registry, "name", orgs["ga"], division_code="370102")
    assert not services.can_write(person_registry, "name", orgs["mz"], division_code="370102")
    assert services.can_write(person_registry, "marital_status", orgs["mz"], division_code="370102")
    assert services.can_write(person_registry, "phone", orgs["wj"], division_code="370102")  # "GA|WJ"
    assert not services.can_write(person_registry, "nope", orgs["ga"], division_code="370102")
    assert not services.can_write(person_registry, "name", None)


def test_authority_by_exact_department_code(orgs, officials):
    registry = services.create_registry(
        code="test.coded",
        name="编码授权",
        owner=orgs["tj"],
        library_code="macro",
        identifier_field="code",
        fields=[
            {"name": "code", "label": "编码", "authority": "370000-TJ"},
            {"name": "value", "label": "值", "type": "integer"},  # no authority: the owner's kind
        ],
        actor="system:test",
    )
    assert services.can_write(registry, "code", orgs["tj"])
    assert not services.can_write(registry, "code", orgs["ga"])
    assert services.can_write(registry, "value", orgs["tj"])
    assert services.writable_fields(registry, orgs["tj"]) == ["code", "value"]
    assert services.writable_fields(registry, orgs["ga"]) == []


def test_non_authoritative_update_is_refused_and_the_denial_audited(person, officials):
    with pytest.raises(services.NotAuthoritative) as excinfo:
        services.update_record(person, {"name": "李四", "sex": "女"}, actor=officials["mz"])
    exc = excinfo.value
    assert exc.fields == ["name", "sex"] and exc.department.code == "370000-MZ"
    assert "山东省民政厅" in str(exc) and "姓名" in str(exc) and "GA" in str(exc)
    person.refresh_from_db()
    assert person.version == 1 and services.record_values(person)["name"] == "张三"
    assert not RecordChange.objects.exists()
    (entry,) = denials("registry.record.update")
    detail = json.loads(entry.detail_json)
    assert detail["fields"] == ["name", "sex"] and detail["department"] == "370000-MZ"
    assert "李四" not in entry.detail_json
    assert entry.actor_label.startswith("off-mz")


def test_denied_create_is_audited(person_registry, officials):
    values = {"id_number": pid(40), "name": "甲", "division": "370102", "marital_status": "已婚"}
    with pytest.raises(services.NotAuthoritative) as excinfo:
        services.create_record(person_registry, values, actor=officials["ga"])
    assert excinfo.value.fields == ["marital_status"]
    assert not Record.objects.exists()
    assert len(denials("registry.record.create")) == 1


def test_denial_audit_survives_inside_an_enclosing_transaction(person, officials):
    from django.db import transaction

    with transaction.atomic():
        with pytest.raises(services.NotAuthoritative):
            services.update_record(person, {"sex": "女"}, actor=officials["wj"])
        # The failed write's savepoint is gone, the denial stays in the enclosing transaction.
        assert len(denials("registry.record.update")) == 1
        services.update_record(person, {"height": 172}, actor=officials["wj"])
    assert services.record_values(person)["height"] == 172


def test_users_without_a_department_cannot_write(person, person_registry, admin_user, citizen_user):
    for actor in (admin_user, citizen_user, "system:script"):
        with pytest.raises(services.NotAuthoritative, match="部门"):
            services.update_record(person, {"sex": "女"}, actor=actor)
    with pytest.raises(services.NotAuthoritative):
        services.create_record(person_registry, {"id_number": pid(41), "division": "370102"}, actor=admin_user)
    assert len(denials("registry.record.update")) == 3


def test_an_explicit_source_is_used_instead_of_the_actors_department(person, orgs, admin_user):
    services.update_record(person, {"sex": "女"}, actor=admin_user, source=orgs["ga"])
    assert RecordChange.objects.get().source == orgs["ga"]


def test_api_client_writes_for_its_organization(person, orgs):
    client = SimpleNamespace(organization=orgs["mz"], client_id="mz-marriage")
    services.update_record(person, {"marital_status": "已婚"}, actor=client)
    change = RecordChange.objects.get()
    assert change.source == orgs["mz"] and change.actor == "client:mz-marriage"
    entry = AuditRecord.objects.get(action="registry.record.update")
    assert entry.actor_label == "client:mz-marriage"


def test_data_administrators_read_but_do_not_write(person, officials):
    assert services.read_record(person, actor=officials["dsj"])["values"]["sex"] == "男"
    with pytest.raises(services.NotAuthoritative):
        services.update_record(person, {"sex": "女"}, actor=officials["dsj"])


# --- division scope -----------------------------------------------------------------------------------


def test_another_countys_department_cannot_write_or_read(person, officials):
    with pytest.raises(services.NotAuthoritative, match="管辖区划"):
        services.update_record(person, {"sex": "女"}, actor=officials["ga_shizhong"])
    assert len(denials("registry.record.update")) == 1
    with pytest.raises(PermissionDenied):
        services.read_record(person, actor=officials["ga_shizhong"])
    assert len(denials("registry.record.read")) == 1
    # Its own county's department and the provincial one can.
    services.update_record(person, {"sex": "女"}, actor=officials["ga_lixia"])
    services.update_record(person, {"address": "山东省济南市历下区经十路1号"}, actor=officials["ga"])
    assert services.read_record(person, actor=officials["ga_lixia"])["values"]["sex"] == "女"


def test_county_department_cannot_create_or_move_records_outside_its_county(person, person_registry, officials):
    with pytest.raises(services.NotAuthoritative):
        services.create_record(
            person_registry, {"id_number": pid(42), "division": "370103"}, actor=officials["ga_lixia"]
        )
    with pytest.raises(services.NotAuthoritative):
        services.update_record(person, {"division": "370103"}, actor=officials["ga_lixia"])
    with pytest.raises(services.NotAuthoritative):
        services.bulk_create_records(
            person_registry,
            [{"id_number": pid(43), "division": "370102"}, {"id_number": pid(44), "division": "370103"}],
            actor=officials["ga_lixia"],
            source=None,
        )
    assert Record.objects.count() == 1
    assert len(denials("registry.record.bulk_create")) == 1
    services.update_record(person, {"division": "370103"}, actor=officials["ga"])
    person.refresh_from_db()
    assert person.division_code == "370103"


def test_reader_scope_and_can_read(person_registry, officials, orgs, admin_user, citizen_user):
    assert services.reader_scope(person_registry, officials["ga_lixia"]) == "370102"
    assert services.reader_scope(person_registry, officials["ga"]) == ""
    assert services.reader_scope(person_registry, officials["dsj"]) == ""
    assert services.reader_scope(person_registry, admin_user) == ""
    assert services.reader_scope(person_registry, citizen_user) is None
    assert services.reader_scope(person_registry, officials["scjg"]) is None
    assert services.can_read(person_registry, orgs["wj_lixia"], division_code="370102")
    assert not services.can_read(person_registry, orgs["wj_lixia"], division_code="370103")
    assert not services.can_read(person_registry, orgs["scjg"])


def test_unrelated_department_and_citizens_cannot_read(person, officials, citizen_user, admin_user):
    for actor in (officials["scjg"], citizen_user):
        with pytest.raises(PermissionDenied):
            services.read_record(person, actor=actor)
    assert services.read_record(person, actor=admin_user)["values"]["name"] == "张*"


# --- delegation ---------------------------------------------------------------------------------------


def test_delegation_grants_writing_until_revoked_or_expired(person, person_registry, officials, orgs):
    assert not services.can_write(person_registry, "marital_status", orgs["ga"], division_code="370102")
    with pytest.raises(services.NotAuthoritative):
        services.delegate_field(person_registry, "marital_status", orgs["ga"], actor=officials["wj"])
    assert len(denials("registry.delegation.create")) == 1
    delegation = services.delegate_field(person_registry, "marital_status", orgs["ga"], actor=officials["mz"])
    assert delegation.authority == "MZ"
    services.update_record(person, {"marital_status": "已婚"}, actor=officials["ga"])
    # A delegation from MZ does not reach fields of other authorities.
    assert not services.can_write(person_registry, "height", orgs["mz"])
    services.revoke_delegation(delegation, actor=officials["mz"])
    assert not services.can_write(person_registry, "marital_status", orgs["ga"], division_code="370102")
    expired = services.delegate_field(
        person_registry,
        "*",
        orgs["ga"],
        actor=officials["mz"],
        valid_until=timezone.now() + datetime.timedelta(days=1),
    )
    assert services.can_write(person_registry, "marital_status", orgs["ga"], division_code="370102")
    Delegation.objects.filter(pk=expired.pk).update(valid_until=timezone.now() - datetime.timedelta(seconds=1))
    assert not services.can_write(person_registry, "marital_status", orgs["ga"], division_code="370102")


def test_delegates_can_read_and_only_grantors_revoke(person_registry, officials, orgs):
    delegation = services.delegate_field(person_registry, "marital_status", orgs["scjg"], actor=officials["mz"])
    assert services.can_read(person_registry, orgs["scjg"])
    with pytest.raises(PermissionDenied):
        services.revoke_delegation(delegation, actor=officials["ga"])
    with pytest.raises(services.ValidationError):
        services.delegate_field(
            person_registry, "marital_status", orgs["scjg"], actor=officials["mz"], valid_until=timezone.now()
        )


# --- observations and corrections ---------------------------------------------------------------------


def test_observe_mode_applies_authoritative_fields_and_keeps_the_rest(person, officials):
    services.update_record(
        person, {"height": 175, "address": "别处"}, actor=officials["wj"], non_authoritative="observe"
    )
    values = services.record_values(person)
    assert values["height"] == 175 and values["address"] == "山东省济南市历下区泉城路1号"
    observation = Observation.objects.get()
    assert observation.field == "address" and json.loads(observation.value) == "别处"
    assert observation.source.code == "370000-WJ" and observation.status == Observation.Status.OPEN
    assert RecordChange.objects.get().changes == {"height": [None, 175]}


def test_add_observation(person, officials):
    observation = services.add_observation(person, "sex", "女", actor=officials["wj"])
    assert json.loads(observation.value) == "女"
    with pytest.raises(services.RecordValidationError):
        services.add_observation(person, "sex", "?", actor=officials["wj"])
    with pytest.raises(services.NotAuthoritative):
        services.add_observation(person, "sex", "女", actor="system:x")


def test_correct_mode_files_requests_for_the_authority(person, officials, orgs):
    services.update_record(
        person, {"marital_status": "已婚"}, actor=officials["wj"], reason="体检发现", non_authoritative="correct"
    )
    request = CorrectionRequest.objects.get()
    assert request.field == "marital_status" and request.status == CorrectionRequest.Status.PENDING
    assert request.submitted_by_org == orgs["wj"] and request.due_on > timezone.localdate()
    assert "marital_status" not in services.record_values(person)


def test_citizen_correction_accepted_by_the_authority(person, officials, citizen_user):
    request = services.submit_correction(
        person, "address", "山东省济南市历下区经十路9号", actor=citizen_user, reason="已搬家"
    )
    assert request.submitted_by_org is None and request.submitted_by == "citizen9"
    assert (request.due_on - timezone.localdate()).days >= 5
    with pytest.raises(services.NotAuthoritative):
        services.decide_correction(request, accept=True, actor=officials["mz"])
    assert len(denials("registry.correction.decide")) == 1
    services.decide_correction(request, accept=True, actor=officials["ga_lixia"], note="核实")
    assert request.status == CorrectionRequest.Status.ACCEPTED
    assert request.decided_by_org.code == "370102-GA"
    change = RecordChange.objects.get()
    assert change.kind == RecordChange.Kind.CORRECTION and "已搬家" in change.reason
    assert services.record_values(person)["address"] == "山东省济南市历下区经十路9号"
    with pytest.raises(services.ValidationError, match="已处理"):
        services.decide_correction(request, accept=False, actor=officials["ga"])
    assert AuditRecord.objects.filter(action="registry.correction.accept").count() == 1


def test_rejected_correction_changes_nothing(person, officials):
    request = services.submit_correction(person, "sex", "女", actor=officials["wj"], reason="疑似录入错误")
    services.decide_correction(request, accept=False, actor=officials["ga"], note="核实无误")
    assert request.status == CorrectionRequest.Status.REJECTED and request.decision_note == "核实无误"
    assert services.record_values(person)["sex"] == "男"
    assert not RecordChange.objects.exists()


def test_correction_needs_a_reason_and_a_valid_value(person, officials):
    with pytest.raises(services.ValidationError):
        services.submit_correction(person, "sex", "女", actor=officials["wj"], reason=" ")
    with pytest.raises(services.RecordValidationError):
        services.submit_correction(person, "sex", "?", actor=officials["wj"], reason="x")


# --- deleting -----------------------------------------------------------------------------------------


def test_only_the_owner_or_identifier_authority_deletes(person, officials):
    with pytest.raises(services.NotAuthoritative):
        services.delete_record(person, actor=officials["mz"], reason="x")
    with pytest.raises(services.NotAuthoritative):
        services.delete_record(person, actor=officials["ga_shizhong"], reason="x")
    assert len(denials("registry.record.delete")) == 2
    services.delete_record(person, actor=officials["ga_lixia"], reason="注销")
    assert person.deleted_at is not None
