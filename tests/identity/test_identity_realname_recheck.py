"""Real-name levels follow the population library: death, deletion and a changed ID number lower them.

The registry announces its writes as outbox events; the identity subscriber re-checks the accounts
verified against the record when the worker delivers them (``worker --once`` here).
"""

import datetime
import time

import pytest
from django.core.management import call_command
from django.test import Client
from realname_fixtures import *  # noqa: F403
from realname_fixtures import COMPANY_USCC, OTHER_ID, PERSON_ID

from dgov.identity import realname
from dgov.kernel.fields import blind_index
from dgov.kernel.models import AuditRecord, OutboxEvent
from dgov.kernel.validators import make_resident_id
from dgov.registry import services as registry


def _drain():
    call_command("worker", "--once", "--no-tasks", verbosity=0)


@pytest.fixture
def people(base_people, citizen, official, django_user_model):
    """王实名's personal account at level 3, an enterprise account of his at level 2, 钱别人's account at level 2."""
    realname.verify_person(citizen, "王实名", PERSON_ID, actor=citizen)
    realname.record_in_person_verification(citizen, actor=official)
    agent = django_user_model.objects.create_user(username="agent1", password="x-Pass-12345", kind="enterprise")
    realname.verify_person(agent, "王实名", PERSON_ID, actor=agent)
    realname.verify_enterprise(agent, COMPANY_USCC, actor=agent)
    qian = django_user_model.objects.create_user(username="qian", password="x-Pass-12345", kind="person")
    realname.verify_person(qian, "钱别人", OTHER_ID, actor=qian)
    return {"citizen": citizen, "agent": agent, "qian_user": qian, **base_people}


def _levels(people):
    for key in ("citizen", "agent", "qian_user"):
        people[key].refresh_from_db()
    return tuple(people[key].real_name_level for key in ("citizen", "agent", "qian_user"))


def test_a_death_lowers_the_accounts_of_that_person_only(people, official):
    registry.update_record(people["wang"], {"status": "deceased"}, actor=official, reason="死亡医学证明")
    assert _levels(people) == (3, 2, 2)  # nothing happens before the worker delivers the event
    _drain()
    assert _levels(people) == (1, 1, 2)
    citizen = people["citizen"]
    assert citizen.real_name_verified_at is None
    # still bound to the same person: the blind index and the verified name stay
    assert citizen.id_number_digest == blind_index(PERSON_ID, purpose="resident_id")
    assert citizen.display_name == "王实名"
    rows = AuditRecord.objects.filter(action="identity.realname.lower").order_by("seq")
    assert [(r.target_id, r.detail["from"], r.detail["reason"]) for r in rows] == [
        (str(citizen.pk), 3, "deceased"),
        (str(people["agent"].pk), 2, "deceased"),
    ]
    assert {r.actor_kind for r in rows} == {"system"}
    assert rows[0].detail["record"] == str(people["wang"].uid)
    assert PERSON_ID not in " ".join(str(r.detail) for r in rows)
    lowered = OutboxEvent.objects.filter(event_type=realname.LEVEL_LOWERED_EVENT)
    assert sorted(e.payload["user"] for e in lowered) == sorted([citizen.pk, people["agent"].pk])
    # delivered again (at-least-once) or re-run: nothing more happens
    assert realname.recheck_person_record(people["wang"].uid, changed={"status"}) == []
    assert AuditRecord.objects.filter(action="identity.realname.lower").count() == 2


def test_deleting_the_record_lowers_its_accounts(people, official):
    registry.delete_record(people["wang"], actor=official, reason="重复登记")
    _drain()
    assert _levels(people) == (1, 1, 2)
    reasons = {r.detail["reason"] for r in AuditRecord.objects.filter(action="identity.realname.lower")}
    assert reasons == {"deleted"}


def test_moving_away_and_other_changes_keep_the_level(people, official):
    registry.update_record(people["wang"], {"status": "migrated"}, actor=official, reason="迁出")
    registry.update_record(people["qian"], {"name": "钱改名"}, actor=official, reason="更名")
    _drain()
    assert _levels(people) == (3, 2, 2)
    assert not AuditRecord.objects.filter(action="identity.realname.lower").exists()


def test_a_changed_id_number_lowers_the_accounts_of_the_old_number(people, official):
    new_number = make_resident_id("370102", datetime.date(1990, 3, 4), 790)
    registry.update_record(people["qian"], {"id_number": new_number}, actor=official, reason="号码更正")
    _drain()
    assert _levels(people) == (3, 2, 1)
    row = AuditRecord.objects.get(action="identity.realname.lower")
    assert row.detail["reason"] == "id_number_changed" and row.target_id == str(people["qian_user"].pk)
    assert OTHER_ID not in str(row.detail) and new_number not in str(row.detail)


def test_the_same_person_verifies_again_after_a_correction(people, official, user_password):
    wang = people["wang"]
    registry.update_record(wang, {"status": "deceased"}, actor=official, reason="误登记")
    _drain()
    citizen, agent = people["citizen"], people["agent"]
    with pytest.raises(realname.RealNameError) as exc:
        realname.verify_person(citizen, "王实名", PERSON_ID, actor=citizen)
    assert exc.value.code == "deceased"
    # the enterprise cannot be re-verified through a deceased legal representative either
    with pytest.raises(realname.RealNameError) as exc:
        realname.verify_enterprise(agent, COMPANY_USCC, actor=agent)
    assert exc.value.code == "representative_status"
    registry.update_record(wang, {"status": "normal"}, actor=official, reason="更正误登记")
    _drain()
    assert _levels(people) == (1, 1, 2)  # a correction does not raise levels by itself
    # the account page offers the forms again to the account dropped to level 1
    http = Client()
    http.force_login(citizen)
    from dgov.identity.authentication import SESSION_REAUTH

    session = http.session
    session[SESSION_REAUTH] = time.time()
    session.save()
    page = http.get("/account/realname/").content.decode()
    assert 'data-testid="realname-person-form"' in page
    assert (
        http.post("/account/realname/", {"action": "person", "name": "王实名", "id_number": PERSON_ID}).status_code
        == 302
    )
    realname.verify_enterprise(agent, COMPANY_USCC, actor=agent)
    assert _levels(people) == (2, 2, 2)


def test_other_registries_and_fields_are_ignored(people, official):
    enterprise = registry.find_record(registry.get_registry("legal_entity.enterprise"), "uscc", COMPANY_USCC)
    from dgov.kernel.models import Organization

    scjg = Organization.objects.get(code="370000-SCJG")
    registry.update_record(enterprise, {"status": "revoked"}, actor="system:test", source=scjg)
    _drain()
    assert _levels(people) == (3, 2, 2)
    assert OutboxEvent.objects.filter(status="dead").count() == 0
