"""Conflicts of a stored linkage run become rectification orders (整改工单), cleared when no longer found.

These tests go through :mod:`dgov.quality.rectification` (``raise_finding`` / ``clear_finding``):
the orders are that module's; here we check what the linkage run hands it.
"""

import json

import pytest
from linkage_run_fixtures import *  # noqa: F403

from dgov.linkage import services
from dgov.linkage.models import LinkageRun
from dgov.quality.models import RectificationOrder
from dgov.registry.models import Record

KEY_NAME = "linkage:人口-参保比对:name"
KEY_PHONE = "linkage:人口-参保比对:phone"


def _run(settings_data, actor="system:test"):
    run = services.run_settings_now(settings_data, actor=actor)
    assert run.status == LinkageRun.Status.SUCCEEDED, run.error
    return run


def test_conflicts_open_orders_for_the_department_holding_the_copy(records, settings_data, orgs):
    run = _run(settings_data)
    assert run.metrics["conflicts_by_role"] == {"full_name": {"differs": 1}, "phone": {"differs": 1}}
    orders = {order.finding_key: order for order in RectificationOrder.objects.filter(source="linkage")}
    assert set(orders) == {KEY_NAME, KEY_PHONE}
    name = orders[KEY_NAME]
    assert name.registry.code == "t.insured" and name.department == orgs["rs"]
    assert (name.dimension, name.status, name.failed_now, name.fields) == ("accuracy", "open", 1, ["name"])
    assert "人口-参保比对" in name.title
    (sample,) = name.samples
    enrolment = Record.objects.get(registry=records["insured"], data__enrolment_no="E2")
    person = Record.objects.get(registry=records["person"], data__person_no="P2")
    assert sample["uid"] == str(enrolment.uid) and sample["division"] == "370102"
    assert sample["reference_uid"] == str(person.uid) and sample["kind"] == "differs"
    assert sample["values"] == {"name": "李*", "t.person.name": "李*"}
    text = json.dumps([order.samples for order in orders.values()], ensure_ascii=False)
    assert "李泗" not in text and "13900000003" not in text and "13800000003" not in text
    assert name.detail["kinds"] == {"differs": 1}
    assert name.detail["reference"] == {"registry": "t.person", "field": "name"}
    codes = {f["key"]: f["order"] for f in run.metrics["findings"]}
    assert codes == {KEY_NAME: name.code, KEY_PHONE: orders[KEY_PHONE].code}


def test_a_later_run_updates_what_remains_and_clears_what_was_fixed(records, settings_data, orgs):
    from dgov.registry import services as registry_services

    _run(settings_data)
    enrolment = Record.objects.get(registry=records["insured"], data__enrolment_no="E2")
    registry_services.update_record(enrolment, {"name": "李四"}, actor="system:test", source=orgs["rs"])
    second = _run(settings_data)
    assert second.metrics["cleared"] == [
        {"registry": "t.insured", "field": "name", "department": orgs["rs"].code, "key": KEY_NAME}
    ]
    name = RectificationOrder.objects.get(finding_key=KEY_NAME)
    phone = RectificationOrder.objects.get(finding_key=KEY_PHONE)
    assert name.status == "resolved" and name.failed_now == 0
    assert phone.status == "open" and RectificationOrder.objects.filter(finding_key=KEY_PHONE).count() == 1
    # Another name's runs do not clear this name's orders.
    settings_data["name"] = "别的比对"
    _run(settings_data)
    assert RectificationOrder.objects.get(finding_key=KEY_PHONE).status == "open"


def test_the_authority_itself_is_asked_when_it_lacks_a_value(registries, orgs, settings_data):
    from linkage_run_fixtures import insured_rows, person_rows

    from dgov.registry import services as registry_services

    persons = person_rows()
    persons[0].pop("phone")  # P1 has no phone in the population registry, but RS knows one
    registry_services.bulk_create_records(registries["person"], persons, actor="system:test", source=orgs["ga"])
    registry_services.bulk_create_records(
        registries["insured"], insured_rows({}), actor="system:test", source=orgs["rs"]
    )
    run = _run(settings_data)
    assert run.metrics["conflicts_by_role"] == {"phone": {"missing_in_authority": 1}}
    order = RectificationOrder.objects.get(source="linkage")
    assert order.registry.code == "t.person" and order.department == orgs["ga"]
    assert (order.dimension, order.finding_key) == ("completeness", KEY_PHONE)


@pytest.fixture(autouse=True)
def _no_mail(settings):
    """Notifications go nowhere in these tests."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
