"""Record history (who, which source, when, previous value) and reads as of a past moment."""

import datetime
import json

import pytest
from django.utils import timezone
from engine_fixtures import *  # noqa: F403
from engine_fixtures import pid

from dgov.registry import services
from dgov.registry.models import RecordChange


def at(record, **delta):
    """A moment relative to the record's creation."""
    return record.created_at + datetime.timedelta(**delta)


@pytest.fixture
def timeline(person, officials):
    """Three writes to ``person`` spread over three days (timestamps moved back into the past)."""
    services.update_record(person, {"phone": "13900000001", "sex": "女"}, actor=officials["ga"], reason="更正")
    services.update_record(person, {"marital_status": "已婚"}, actor=officials["mz"])
    services.update_record(person, {"phone": "13900000002", "height": 170}, actor=officials["wj"])
    changes = list(RecordChange.objects.filter(record=person).order_by("id"))
    for days, change in enumerate(changes, start=1):
        RecordChange.objects.filter(pk=change.pk).update(at=at(person, days=days))
    return person


def test_as_of_rebuilds_past_values(timeline):
    person = timeline
    assert services.record_values(person, as_of=at(person, seconds=-1)) is None
    created = services.record_values(person, as_of=at(person, hours=1))
    assert created["phone"] == "13812345678" and created["sex"] == "男"
    assert "marital_status" not in created and "height" not in created
    day1 = services.record_values(person, as_of=at(person, days=1, hours=1))
    assert day1["phone"] == "13900000001" and day1["sex"] == "女" and "marital_status" not in day1
    day2 = services.record_values(person, as_of=at(person, days=2))  # a change at exactly t counts
    assert day2["marital_status"] == "已婚" and day2["phone"] == "13900000001"
    assert services.record_values(person, as_of=at(person, days=5)) == services.record_values(person)
    assert services.record_values(person)["phone"] == "13900000002"


def test_as_of_accepts_dates_and_iso_text(timeline):
    person = timeline
    day1 = timezone.localtime(at(person, days=1)).date()
    values = services.record_values(person, as_of=day1)
    assert values["sex"] == "女"
    assert services.record_values(person, as_of=at(person, days=3).isoformat())["height"] == 170
    with pytest.raises(services.ValidationError):
        services.record_values(person, as_of="not a date")


def test_deletion_and_restoration_in_the_timeline(timeline, officials):
    person = timeline
    services.delete_record(person, actor=officials["ga"], reason="注销")
    RecordChange.objects.filter(kind=RecordChange.Kind.DELETE).update(at=at(person, days=10))
    assert services.record_values(person, as_of=at(person, days=9))["height"] == 170
    assert services.record_values(person, as_of=at(person, days=11)) is None
    services.restore_record(person, actor=officials["ga"], reason="误删")
    RecordChange.objects.filter(kind=RecordChange.Kind.RESTORE).update(at=at(person, days=12))
    assert services.record_values(person, as_of=at(person, days=11)) is None
    assert services.record_values(person, as_of=at(person, days=13))["height"] == 170


def test_read_record_as_of(timeline, officials):
    person = timeline
    out = services.read_record(person, actor=officials["ga"], as_of=at(person, hours=1), unmask=True)
    assert out["values"]["phone"] == "13812345678"
    with pytest.raises(services.RecordNotFound):
        services.read_record(person, actor=officials["ga"], as_of=at(person, days=-1))


def test_history_lists_creation_and_every_change_with_sources(timeline):
    entries = services.history(timeline)
    assert [e["kind"] for e in entries] == ["create", "update", "update", "update"]
    create = entries[0]
    assert create["source_code"] == "370102-GA" and create["actor"] == "off-ga_lixia"
    assert create["changes"]["sex"] == [None, "男"]
    assert create["changes"]["phone"] == [None, "138****5678"]  # masked by default
    assert create["changes"]["name"] == [None, "张*"]
    first = entries[1]
    assert first["source"] == "山东省公安厅" and first["reason"] == "更正"
    assert first["changes"] == {"sex": ["男", "女"], "phone": ["138****5678", "139****0001"]}
    assert entries[2]["changes"] == {"marital_status": [None, "已婚"]}
    assert entries[3]["source_code"] == "370000-WJ"
    assert [e["at"] for e in entries] == sorted(e["at"] for e in entries)


def test_history_unmasked(timeline):
    entries = services.history(timeline, mask=False)
    assert entries[0]["changes"]["id_number"] == [None, pid(11)]
    assert entries[1]["changes"]["phone"] == ["13812345678", "13900000001"]


def test_personal_previous_values_are_sealed_in_the_change(timeline):
    change = RecordChange.objects.filter(record=timeline).order_by("id").first()
    assert "phone" not in change.changes
    assert json.loads(change.sealed) == {"phone": ["13812345678", "13900000001"]}
