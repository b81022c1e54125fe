"""The e-licence base library: issuance, changes and bulk issuance write ``licence.index`` as the platform."""

import pytest
from django.core.management import call_command

from dgov.kernel.models import AuditRecord
from dgov.licenses import index, services
from dgov.registry import services as registry_services
from dgov.registry.models import Record

from .conftest import enterprise_id, person_id

pytestmark = pytest.mark.django_db


def _values(registry, identifier):
    record = registry_services.find_record(registry, "licence_id", identifier)
    assert record is not None, identifier
    return record, registry_services.record_values_now(record)


def test_issue_and_changes_keep_the_index_up_to_date(demo_types, orgs, index_library):
    licence = services.issue(
        demo_types["结婚证"],
        issuer=orgs["mz_city"],
        holder_name="张三",
        holder_id=person_id(11),
        data={"spouse_name": "李四", "spouse_id_number": person_id(22), "registered_on": "2026-05-20"},
        actor="system:test",
    )
    record, values = _values(index_library, licence.identifier)
    assert values["type_code"] == demo_types["结婚证"].code and values["type_name"] == "结婚证"
    assert values["holder_id_number"] == person_id(11) and values["holder_name"] == "张三"
    assert values["issuer"] == "济南市民政局" and values["issuer_code"] == orgs["mz_city"].uscc
    assert values["status"] == "valid" and values["division_code"] == "370100" and values.get("valid_until") is None
    assert record.created_by_org == orgs["dsj"] and record.created_by == index.ACTOR
    # Found by the holder's ID number like any base-library record.
    assert registry_services.find_record(index_library, "holder_id_number", person_id(11)).pk == record.pk

    services.suspend(licence, actor="system:test", reason="核查")
    assert _values(index_library, licence.identifier)[1]["status"] == "suspended"
    services.resume(licence, actor="system:test")
    services.vary(licence, {"remark": "补领"}, actor="system:test", reason="补领")
    assert _values(index_library, licence.identifier)[1]["status"] == "valid"
    services.revoke(licence, actor="system:test", reason="离婚")
    record, values = _values(index_library, licence.identifier)
    assert values["status"] == "revoked" and record.version >= 3
    assert AuditRecord.objects.filter(action="registry.record.update", target_id=str(record.pk)).exists()


def test_bulk_issuance_fills_the_index_in_bulk(demo_types, orgs, index_library):
    rows = [
        {
            "holder_name": f"济南{n}号有限公司",
            "holder_id": enterprise_id(n),
            "number": f"YY{n:04d}",
            "data": {
                "entity_type": "有限责任公司",
                "legal_representative": "王五",
                "established_on": "2020-01-01",
                "address": "济南市历下区",
                "business_scope": "技术服务",
            },
        }
        for n in range(1, 21)
    ]
    issued = services.issue_many(
        demo_types["营业执照"], rows, issuer=orgs["scjg_lixia"], actor="system:test", source="t"
    )
    assert Record.objects.filter(registry=index_library, deleted_at__isnull=True).count() == 20
    _record, values = _values(index_library, issued[5].identifier)
    assert values["holder_uscc"] == enterprise_id(6) and values["licence_no"] == "YY0006"
    assert values["division_code"] == "370102"
    # One summary audit record for the registry import, not one per licence.
    assert AuditRecord.objects.filter(action="registry.record.create").count() == 0


def test_reindex_writes_licences_issued_before_the_library(demo_types, orgs):
    licence = services.issue(
        demo_types["社会保障卡"],
        issuer=orgs["rs"],
        holder_name="赵六",
        holder_id=person_id(33),
        data={"card_no": "J370102000001", "issued_in": "山东省"},
        actor="system:test",
    )
    assert index.installed() is None
    from dgov.registry import libraries

    definitions = [d for d in libraries.load_definitions() if d["code"] == "licence.index"]
    libraries.install_libraries(actor="system:test", province_code="370000", definitions=definitions)
    call_command("licences", "reindex")
    registry = registry_services.get_registry("licence.index")
    assert _values(registry, licence.identifier)[1]["type_name"] == "社会保障卡"
    call_command("licences", "reindex")  # idempotent
    assert Record.objects.filter(registry=registry).count() == 1
